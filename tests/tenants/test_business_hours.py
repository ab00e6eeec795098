from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from calls.models import default_business_hours
from tenants.business_hours import (
    BusinessHoursError,
    business_hours_between,
    business_hours_open,
    business_hours_validate,
    sla_due_at,
    timezone_validate,
)

WEEKDAYS_9_TO_5 = default_business_hours()
NEW_YORK = ZoneInfo("America/New_York")


def _due(start: datetime, hours: float, business_hours: object = None, zone: str = "UTC") -> datetime:
    return sla_due_at(
        start=start,
        hours=hours,
        business_hours=WEEKDAYS_9_TO_5 if business_hours is None else business_hours,
        timezone_name=zone,
    )


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Monday 25 November 2030, inside business hours.
        (datetime(2030, 11, 25, 10, 0, tzinfo=UTC), 2, datetime(2030, 11, 25, 12, 0, tzinfo=UTC)),
        # Up to closing time exactly: due at close, not at the next opening.
        (datetime(2030, 11, 25, 10, 0, tzinfo=UTC), 7, datetime(2030, 11, 25, 17, 0, tzinfo=UTC)),
        # Across the night: 1 h on Monday, 1 h on Tuesday.
        (datetime(2030, 11, 25, 16, 0, tzinfo=UTC), 2, datetime(2030, 11, 26, 10, 0, tzinfo=UTC)),
        # Before opening: the clock starts at 09:00.
        (datetime(2030, 11, 25, 7, 0, tzinfo=UTC), 1, datetime(2030, 11, 25, 10, 0, tzinfo=UTC)),
        # After closing: the clock starts the next morning.
        (datetime(2030, 11, 25, 19, 0, tzinfo=UTC), 0.5, datetime(2030, 11, 26, 9, 30, tzinfo=UTC)),
        # Friday afternoon over the weekend to Monday.
        (datetime(2030, 11, 29, 16, 0, tzinfo=UTC), 2, datetime(2030, 12, 2, 10, 0, tzinfo=UTC)),
        # Saturday night: Monday morning.
        (datetime(2030, 11, 30, 23, 0, tzinfo=UTC), 0.5, datetime(2030, 12, 2, 9, 30, tzinfo=UTC)),
        # The default normal SLA: three business days.
        (datetime(2030, 11, 25, 10, 0, tzinfo=UTC), 24, datetime(2030, 11, 28, 10, 0, tzinfo=UTC)),
        # A whole business week, ending at Friday's close.
        (datetime(2030, 11, 25, 9, 0, tzinfo=UTC), 40, datetime(2030, 11, 29, 17, 0, tzinfo=UTC)),
        # 41 hours: into the next Monday.
        (datetime(2030, 11, 25, 9, 0, tzinfo=UTC), 41, datetime(2030, 12, 2, 10, 0, tzinfo=UTC)),
    ],
)
def test_due_time_counts_business_hours_only(start: datetime, hours: float, due: datetime) -> None:
    assert _due(start, hours) == due


def test_business_hours_are_local_to_the_tenant_time_zone() -> None:
    # 13:00 UTC is 08:00 in New York (EST, UTC-5): the office opens at 14:00 UTC.
    due = _due(datetime(2030, 11, 25, 13, 0, tzinfo=UTC), 1, zone="America/New_York")

    assert due == datetime(2030, 11, 25, 15, 0, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_new_york_evening_is_still_business_hours_there() -> None:
    # 21:30 UTC Monday is 16:30 in New York: half an hour left today, then Tuesday 09:00-10:30 EST.
    due = _due(datetime(2030, 11, 25, 21, 30, tzinfo=UTC), 2, zone="America/New_York")

    assert due == datetime(2030, 11, 26, 15, 30, tzinfo=UTC)


def test_result_keeps_the_zone_of_the_start() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2030, 11, 25, 11, 0, tzinfo=paris)  # 10:00 UTC

    due = _due(start, 2)

    assert due == datetime(2030, 11, 25, 12, 0, tzinfo=UTC)
    assert (due.tzinfo, due.hour) == (paris, 13)


def test_daylight_saving_day_counts_real_hours() -> None:
    # 9 March 2031: New York clocks jump from 02:00 to 03:00, so 00:00-12:00
    # holds 11 real hours (05:00-16:00 UTC).
    sundays = {"sun": ["00:00", "12:00"]}
    start = datetime(2031, 3, 9, 0, 0, tzinfo=NEW_YORK)

    assert _due(start, 11, sundays, "America/New_York") == datetime(2031, 3, 9, 16, 0, tzinfo=UTC)
    # Half an hour more runs into the next Sunday (EDT, UTC-4).
    assert _due(start, 11.5, sundays, "America/New_York") == datetime(2031, 3, 16, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize("business_hours", [{}, {"sat": None, "sun": []}])
def test_without_business_hours_the_clock_runs_around_the_clock(business_hours: object) -> None:
    start = datetime(2030, 11, 30, 23, 0, tzinfo=UTC)

    assert _due(start, 5, business_hours) == datetime(2030, 12, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("hours", [0, -1])
def test_no_time_left_is_due_at_the_start_or_before(hours: float) -> None:
    start = datetime(2030, 11, 30, 23, 0, tzinfo=UTC)

    assert _due(start, hours) == start + timedelta(hours=hours)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _due(datetime(2030, 11, 25, 10, 0), 2)


def test_a_fixed_offset_start_works() -> None:
    start = datetime(2030, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC

    assert _due(start, 1) == datetime(2030, 11, 25, 11, 0, tzinfo=UTC)


def test_business_hours_validate_parses_spans_and_skips_closed_days() -> None:
    parsed = business_hours_validate({"mon": ["08:30", "12:00"], "tue": ("13:00", "18:15"), "sun": None})

    assert parsed == {"mon": (time(8, 30), time(12, 0)), "tue": (time(13, 0), time(18, 15))}


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (["09:00", "17:00"], "Business hours must map weekdays to [open, close]."),
        ({"monday": ["09:00", "17:00"]}, "Unknown weekday 'monday'; use one of mon, tue, wed, thu, fri, sat, sun."),
        ({"mon": ["09:00"]}, "mon: give [open, close], e.g. ['09:00', '17:00']."),
        ({"mon": "09:00-17:00"}, "mon: give [open, close], e.g. ['09:00', '17:00']."),
        ({"tue": ["9am", "5pm"]}, "tue: times must look like 09:00."),
        ({"wed": ["17:00", "09:00"]}, "wed: closing time must be after opening time."),
        ({"thu": ["09:00", "09:00"]}, "thu: closing time must be after opening time."),
    ],
)
def test_business_hours_validate_explains_what_is_wrong(hours: object, message: str) -> None:
    with pytest.raises(BusinessHoursError) as error:
        business_hours_validate(hours)

    assert str(error.value) == message


def test_sla_due_at_refuses_bad_business_hours() -> None:
    with pytest.raises(BusinessHoursError, match=r"^wed: closing time must be after opening time\.$"):
        _due(datetime(2030, 11, 25, 10, 0, tzinfo=UTC), 2, {"wed": ["17:00", "09:00"]})


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(BusinessHoursError) as error:
        timezone_validate(name)

    assert str(error.value) == f"Unknown time zone {name!r}."


def test_sla_due_at_refuses_an_unknown_time_zone() -> None:
    with pytest.raises(BusinessHoursError, match=r"^Unknown time zone 'Nowhere/City'\.$"):
        _due(datetime(2030, 11, 25, 10, 0, tzinfo=UTC), 2, zone="Nowhere/City")


def test_timezone_validate_returns_the_zone() -> None:
    assert timezone_validate("America/New_York") == NEW_YORK


# --- business_hours_between --------------------------------------------------------------------------------------


def _utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Within one business day.
        (_utc(25, 10), _utc(25, 12, 30), 2.5),
        # Overnight counts nothing: 1 h on Monday, 1 h on Tuesday.
        (_utc(25, 16), _utc(26, 10), 2.0),
        # Both ends outside business hours, across a weekend: nothing.
        (_utc(29, 17, 30), _utc(2, 9, month=12), 0.0),
        # Friday 16:30 to Wednesday 16:00: half an hour, two full days, seven hours.
        (_utc(29, 16, 30), _utc(4, 16, month=12), 23.5),
        # Before opening to after closing: the whole business day.
        (_utc(25, 6), _utc(25, 20), 8.0),
        # A whole business week.
        (_utc(25, 9), _utc(29, 17), 40.0),
        # An empty or backwards interval.
        (_utc(25, 10), _utc(25, 10), 0.0),
        (_utc(25, 12), _utc(25, 10), 0.0),
    ],
)
def test_business_hours_between(start: datetime, end: datetime, hours: float) -> None:
    assert business_hours_between(start, end, WEEKDAYS_9_TO_5, "UTC") == hours


@pytest.mark.parametrize(
    ("start", "hours"),
    [(_utc(25, 10), 2), (_utc(29, 16), 2), (_utc(30, 23), 0.5), (_utc(25, 10), 24), (_utc(25, 9, 17), 41.25)],
)
def test_business_hours_between_undoes_sla_due_at(start: datetime, hours: float) -> None:
    due = _due(start, hours)

    assert business_hours_between(start, due, WEEKDAYS_9_TO_5, "UTC") == hours


def test_business_hours_between_uses_the_tenant_time_zone() -> None:
    # 09:00-17:00 in New York is 14:00-22:00 UTC in November.
    start, end = _utc(25, 13), _utc(25, 23)

    assert business_hours_between(start, end, WEEKDAYS_9_TO_5, "America/New_York") == 8.0
    assert business_hours_between(start, end, WEEKDAYS_9_TO_5, "UTC") == 4.0


def test_business_hours_between_counts_real_hours_on_the_day_clocks_change() -> None:
    # Sunday 9 March 2031, New York springs forward at 02:00: 00:00-06:00 local is 5 real hours.
    always = {day: ["00:00", "06:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    start = datetime(2031, 3, 9, 0, 0, tzinfo=NEW_YORK)
    end = datetime(2031, 3, 9, 12, 0, tzinfo=NEW_YORK)

    assert business_hours_between(start, end, always, "America/New_York") == 5.0


@pytest.mark.parametrize("business_hours", [{}, {"sat": None}])
def test_business_hours_between_without_business_hours_is_wall_clock(business_hours: object) -> None:
    assert business_hours_between(_utc(29, 16), _utc(2, 10, month=12), business_hours, "UTC") == 66.0


def test_business_hours_between_refuses_naive_times_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_hours_between(datetime(2030, 11, 25, 10), _utc(25, 12), WEEKDAYS_9_TO_5, "UTC")
    with pytest.raises(BusinessHoursError, match="Unknown time zone"):
        business_hours_between(_utc(25, 10), _utc(25, 12), WEEKDAYS_9_TO_5, "Mars/Olympus")
    with pytest.raises(BusinessHoursError, match="Unknown weekday"):
        business_hours_between(_utc(25, 10), _utc(25, 12), {"someday": ["09:00", "17:00"]}, "UTC")


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 12, 7, 14, 0, tzinfo=UTC), True),  # Monday 09:00 in New York: opening time counts
        (datetime(2026, 12, 7, 21, 59, tzinfo=UTC), True),  # 16:59
        (datetime(2026, 12, 7, 22, 0, tzinfo=UTC), False),  # 17:00: closed
        (datetime(2026, 12, 7, 13, 59, tzinfo=UTC), False),  # 08:59
        (datetime(2026, 12, 6, 17, 0, tzinfo=UTC), False),  # Sunday noon: a closed day
        (datetime(2026, 12, 8, 2, 0, tzinfo=UTC), False),  # Tuesday 02:00 UTC is Monday 21:00 in New York
    ],
)
def test_business_hours_open_reads_the_hours_in_the_business_zone(at: datetime, expected: bool) -> None:
    assert business_hours_open(at, default_business_hours(), "America/New_York") is expected


def test_business_hours_open_without_hours_is_always_open_and_needs_an_aware_time() -> None:
    assert business_hours_open(datetime(2026, 12, 6, 3, 0, tzinfo=UTC), {}, "UTC") is True
    with pytest.raises(ValueError, match="timezone-aware"):
        business_hours_open(datetime(2026, 12, 6, 3, 0), {}, "UTC")
