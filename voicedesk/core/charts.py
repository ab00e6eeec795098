"""Bar charts drawn on the server as inline SVG: no script, nothing fetched, the same numbers as the page's tables.

``bar_chart`` works out the geometry; ``templates/core/_bar_chart.html``
draws it. Each bar carries its series, label and value, so a test (or a
screen reader, through each bar's ``<title>``) reads what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

Number = int | float | Decimal

# Room for the value axis on the left and the category labels below, in SVG units.
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 8, 10, 24
# Share of each category's width left empty between groups of bars.
_GROUP_GAP = 0.2
# Value-axis intervals; the axis tops out at 1, 2 or 5 times a power of ten, so each fifth is a round number.
_INTERVALS = 5


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Bar:
    """One drawn bar: where it is, and which value of which series it shows."""

    x: float
    y: float
    width: float
    height: float
    series: int
    series_name: str
    label: str
    value: float
    text: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class CategoryLabel:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    """A bar chart ready to draw: one bar per category and series, value ticks, and category labels."""

    title: str
    width: int
    height: int
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    axis_max: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    category_labels: tuple[CategoryLabel, ...]

    @property
    def plot_left(self) -> int:
        return _LEFT

    @property
    def plot_right(self) -> int:
        return self.width - _RIGHT

    @property
    def baseline(self) -> int:
        return self.height - _BOTTOM


def axis_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return 10 * power  # pragma: no cover (the loop always returns)


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    value_text: Callable[[float], str] = _plain,
    width: int = 640,
    height: int = 220,
    max_labels: int = 12,
    counts: bool = False,
) -> BarChart:
    """Lay out grouped vertical bars: one group per label, one bar per series in each group.

    Values must not be negative (``ValueError``); each series has one value
    per label. At most ``max_labels`` category labels are written (every
    n-th), so thirty days stay readable. ``counts``: whole numbers, so the
    axis goes up to at least 5 and every tick is a whole number.
    """
    all_series = tuple(Series(name, tuple(float(v) for v in values)) for name, values in series)
    for one in all_series:
        if len(one.values) != len(labels):
            raise ValueError(f"Series {one.name!r} has {len(one.values)} values for {len(labels)} labels.")
        if any(v < 0 for v in one.values):
            raise ValueError(f"Series {one.name!r} has a negative value; bars start at zero.")
    top = axis_ceiling(max((v for one in all_series for v in one.values), default=0.0))
    if counts:
        top = max(top, float(_INTERVALS))
    plot_width = width - _LEFT - _RIGHT
    plot_height = height - _TOP - _BOTTOM
    slot = plot_width / max(1, len(labels))
    bar_width = slot * (1 - _GROUP_GAP) / max(1, len(all_series))
    bars = []
    for index, label in enumerate(labels):
        for number, one in enumerate(all_series):
            value = one.values[index]
            bar_height = value / top * plot_height
            bars.append(
                Bar(
                    x=round(_LEFT + index * slot + slot * _GROUP_GAP / 2 + number * bar_width, 2),
                    y=round(_TOP + plot_height - bar_height, 2),
                    width=round(bar_width, 2),
                    height=round(bar_height, 2),
                    series=number,
                    series_name=one.name,
                    label=label,
                    value=value,
                    text=value_text(value),
                )
            )
    ticks = tuple(
        Tick(round(_TOP + plot_height - plot_height * step / _INTERVALS, 2), value_text(top * step / _INTERVALS))
        for step in range(_INTERVALS + 1)
    )
    every = max(1, math.ceil(len(labels) / max_labels))
    category_labels = tuple(
        CategoryLabel(round(_LEFT + index * slot + slot / 2, 2), label)
        for index, label in enumerate(labels)
        if index % every == 0
    )
    return BarChart(title, width, height, tuple(labels), all_series, top, tuple(bars), ticks, category_labels)
