from datetime import timedelta

import pytest

from voicedesk.core.timefmt import duration_label, offset_label, span_label


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (0, "0:00"),
        (4.9, "0:04"),  # cut, not rounded: the player, sent to 4.9 s, shows 0:04 too
        (7.9, "0:07"),
        (65.25, "1:05"),
        (83.2, "1:23"),
        (599.99, "9:59"),
        (725, "12:05"),
        (3599.9, "59:59"),
        (3600, "1:00:00"),
        (3725, "1:02:05"),
        (36125, "10:02:05"),
        (-3, "0:00"),
    ],
)
def test_offset_label(seconds: float, label: str) -> None:
    assert offset_label(seconds) == label


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (None, "—"),
        (timedelta(0), "0:00"),
        (timedelta(seconds=95), "1:35"),
        (timedelta(seconds=125, milliseconds=900), "2:05"),
        (timedelta(hours=1, seconds=5), "1:00:05"),
        (timedelta(seconds=-2), "0:00"),
        (3725.0, "1:02:05"),
    ],
)
def test_duration_label(value: timedelta | float | None, label: str) -> None:
    assert duration_label(value) == label


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(None, "—"), (0, "0 s"), (45.4, "45 s"), (200, "3 min 20 s"), (18600, "5 h 10 min"), (187200, "2 d 4 h")],
)
def test_span_label(seconds: float | None, label: str) -> None:
    assert span_label(seconds) == label
