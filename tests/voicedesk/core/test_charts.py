"""Server-drawn bar charts: the geometry of each bar and tick, from the values given."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from voicedesk.core.charts import axis_ceiling, bar_chart


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1.0), (1, 1.0), (3, 5.0), (5, 5.0), (7, 10.0), (12, 20.0), (14900, 20000.0), (0.3, 0.5)]
)
def test_the_value_axis_tops_out_at_one_two_or_five_times_a_power_of_ten(value: float, ceiling: float) -> None:
    assert axis_ceiling(value) == ceiling


def test_grouped_bars_are_placed_and_sized_from_their_values() -> None:
    chart = bar_chart(
        title="Revenue and cost", labels=["Alpha", "Beta"],
        series=[("Revenue", [Decimal(14900), Decimal(0)]), ("Cost", [Decimal("500.5"), Decimal(20000)])],
        width=264, height=134,
    )  # fmt: skip

    # Plot: x from 64 to 256 (192 wide, 96 per business), y from 10 to 110 (100 high); axis up to 20,000.
    assert chart.axis_max == 20000.0
    assert [(b.series_name, b.label, b.value, b.x, b.y, b.width, b.height) for b in chart.bars] == [
        ("Revenue", "Alpha", 14900.0, 73.6, 35.5, 38.4, 74.5),
        ("Cost", "Alpha", 500.5, 112.0, 107.5, 38.4, 2.5),
        ("Revenue", "Beta", 0.0, 169.6, 110.0, 38.4, 0.0),
        ("Cost", "Beta", 20000.0, 208.0, 10.0, 38.4, 100.0),
    ]
    assert [(t.y, t.text) for t in chart.ticks] == [
        (110.0, "0"), (90.0, "4,000"), (70.0, "8,000"), (50.0, "12,000"), (30.0, "16,000"), (10.0, "20,000"),
    ]  # fmt: skip
    assert [(label.x, label.text) for label in chart.category_labels] == [(112.0, "Alpha"), (208.0, "Beta")]


def test_long_series_write_every_nth_label_and_nothing_to_show_still_draws() -> None:
    chart = bar_chart(title="Days", labels=[f"d{i}" for i in range(30)], series=[("Minutes", [0] * 30)])
    assert [label.text for label in chart.category_labels] == [f"d{i}" for i in range(0, 30, 3)]
    assert chart.axis_max == 1.0
    assert {b.height for b in chart.bars} == {0.0}


def test_counts_get_whole_number_ticks() -> None:
    assert [t.text for t in bar_chart(title="n", labels=["a"], series=[("s", [1])], counts=True).ticks] == [
        "0", "1", "2", "3", "4", "5",
    ]  # fmt: skip
    assert bar_chart(title="n", labels=["a"], series=[("s", [12])], counts=True).axis_max == 20.0


def test_bad_series_are_refused() -> None:
    with pytest.raises(ValueError, match="has 1 values for 2 labels"):
        bar_chart(title="x", labels=["a", "b"], series=[("s", [1])])
    with pytest.raises(ValueError, match="negative value"):
        bar_chart(title="x", labels=["a"], series=[("s", [-1])])


def test_the_svg_names_each_bar_and_escapes_labels() -> None:
    chart = bar_chart(title="Minutes <per> month", labels=["Nov & Dec"], series=[("Minutes", [3]), ("Other", [1])])
    html = render_to_string("core/_bar_chart.html", {"chart": chart, "chart_id": "c"})
    assert '<title id="c-title">Minutes &lt;per&gt; month</title>' in html
    bar = 'data-series="Minutes" data-label="Nov &amp; Dec" data-value="3.0">'
    assert f"{bar}<title>Minutes, Nov &amp; Dec: 3</title>" in html
    assert html.count("<rect ") == 4  # two bars and two legend keys
