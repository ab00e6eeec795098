"""Service-level due times, counted in the tenant's business hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursError(ValueError):
    """Business hours or a time zone that cannot be used."""


def business_hours_validate(hours: object) -> dict[str, tuple[time, time]]:
    """Parse ``{"mon": ["09:00", "17:00"], ...}``; raise ``BusinessHoursError`` with the reason."""
    if not isinstance(hours, dict):
        raise BusinessHoursError("Business hours must map weekdays to [open, close].")
    parsed: dict[str, tuple[time, time]] = {}
    for day, span in hours.items():
        if day not in WEEKDAYS:
            raise BusinessHoursError(f"Unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}.")
        if span in (None, [], ""):
            continue
        if not (isinstance(span, list | tuple) and len(span) == 2):
            raise BusinessHoursError(f"{day}: give [open, close], e.g. ['09:00', '17:00'].")
        try:
            opens, closes = (time.fromisoformat(str(value)) for value in span)
        except ValueError as exc:
            raise BusinessHoursError(f"{day}: times must look like 09:00.") from exc
        if closes <= opens:
            raise BusinessHoursError(f"{day}: closing time must be after opening time.")
        parsed[day] = (opens, closes)
    return parsed


def timezone_validate(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BusinessHoursError(f"Unknown time zone {name!r}.") from exc


def sla_due_at(*, start: datetime, hours: float, business_hours: object, timezone_name: str) -> datetime:
    """The moment ``hours`` of business time have passed since ``start``.

    With no business hours at all, the clock runs around the clock. The
    result is timezone-aware, in the same zone as ``start``.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    spans = business_hours_validate(business_hours)
    remaining = timedelta(hours=hours)
    if not spans or remaining <= timedelta(0):
        return start + remaining
    zone = timezone_validate(timezone_name)
    local = start.astimezone(zone)
    day = local.date()
    instant = start.astimezone(UTC)
    # A week always holds at least one business span, so this terminates;
    # the bound guards against absurd SLA values.
    for _ in range(366 * 20):
        span = spans.get(WEEKDAYS[day.weekday()])
        if span is not None:
            # Arithmetic in UTC: within one zone Python subtracts wall-clock
            # times, which is an hour off on the days clocks change.
            opens = datetime.combine(day, span[0], zone).astimezone(UTC)
            closes = datetime.combine(day, span[1], zone).astimezone(UTC)
            begin = max(opens, instant)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
        day += timedelta(days=1)
    raise BusinessHoursError("SLA is too long for the business hours given.")


def business_hours_between(start: datetime, end: datetime, business_hours: object, timezone_name: str) -> float:
    """Hours of business time from ``start`` to ``end``; 0 when ``end`` is not after ``start``.

    The inverse of ``sla_due_at``: ``sla_due_at(start=s, hours=business_hours_between(s, e, ...))``
    is ``e`` when ``e`` falls in business hours. With no business hours at all
    every hour counts.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    spans = business_hours_validate(business_hours)
    if end <= start:
        return 0.0
    if not spans:
        return (end - start).total_seconds() / 3600
    zone = timezone_validate(timezone_name)
    begin, finish = start.astimezone(UTC), end.astimezone(UTC)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = timedelta(0)
    while day <= last:
        span = spans.get(WEEKDAYS[day.weekday()])
        if span is not None:
            # In UTC for the same reason as in sla_due_at: real hours on the days clocks change.
            opens = max(datetime.combine(day, span[0], zone).astimezone(UTC), begin)
            closes = min(datetime.combine(day, span[1], zone).astimezone(UTC), finish)
            if closes > opens:
                total += closes - opens
        day += timedelta(days=1)
    return total.total_seconds() / 3600


def business_hours_open(at: datetime, business_hours: object, timezone_name: str) -> bool:
    """Whether ``at`` falls within the business hours (in the business's zone).

    With no business hours at all the business counts as always open, as the
    SLA clock counts every hour then.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    spans = business_hours_validate(business_hours)
    if not spans:
        return True
    local = at.astimezone(timezone_validate(timezone_name))
    span = spans.get(WEEKDAYS[local.weekday()])
    return span is not None and span[0] <= local.time().replace(tzinfo=None) < span[1]
