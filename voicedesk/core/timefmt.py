"""Lengths and offsets of time as the pages show them: one convention for every app.

Clock style (``offset_label``, ``duration_label``): minutes without a leading
zero and two-digit seconds, ``m:ss`` (``0:07``, ``1:23``, ``12:05``); past an
hour ``h:mm:ss`` (``1:02:05``). It is how players and phones show a position
or a length, and it reads the same in a transcript and in the call history.
Fractions of a second are dropped, not rounded, so a transcript line that
starts at 4.9 s shows ``0:04``: the player, sent there, shows the same.

Spoken style (``span_label``): ``45 s``, ``3 min 20 s``, ``5 h 10 min``,
``2 d 4 h``, for averages and medians that can run to days.
"""

from __future__ import annotations

from datetime import timedelta

NONE_LABEL = "—"


def _clock(total: int) -> str:
    hours, rest = divmod(max(total, 0), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def offset_label(seconds: float) -> str:
    """A position in a recording, ``seconds`` from its start: ``m:ss``, ``h:mm:ss`` past an hour; never negative."""
    return _clock(int(seconds))


def duration_label(value: timedelta | float | None) -> str:
    """How long something lasted, as ``offset_label`` writes it; an em dash for ``None`` (a call never answered)."""
    if value is None:
        return NONE_LABEL
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return _clock(int(seconds))


def span_label(seconds: float | None) -> str:
    """A length of time for people: ``45 s``, ``3 min 20 s``, ``5 h 10 min``, ``2 d 4 h``; an em dash for none."""
    if seconds is None:
        return NONE_LABEL
    total = max(round(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
