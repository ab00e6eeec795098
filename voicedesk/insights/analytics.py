"""Analytics reads: every figure is one SQL aggregate, never a loop over rows in Python.

The period is the last N calendar days in the tenant's time zone, today
included. Test calls placed from the dashboard, and the tickets, callbacks,
questions and latencies they made, are left out unless the period includes
them (``include_test_calls``). The tenant's schema must be active; the tenant
is passed to make that explicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Avg, Count, DurationField, F, FloatField, Max, Min, Q, Sum
from django.db.models.functions import Lower, Trim, TruncDate
from django.utils import timezone

from calls.models import Call, TurnLatency
from calls.selectors import Percentile, local_day_start, schema_check
from tenants.models import Tenant
from tickets.models import Callback, FaqAnswer, Ticket, UnansweredQuestion

PERIOD_DAYS = (7, 30, 90)
DEFAULT_PERIOD_DAYS = 30
# In the order they happen; each is counted from the caller's end of speech.
LATENCY_STAGES: tuple[tuple[str, str], ...] = (
    ("pause_ms", "Pause seen"),
    ("transcript_ms", "Transcript"),
    ("endpoint_ms", "Turn ended"),
    ("decision_ms", "Decision"),
    ("first_audio_ms", "First audio"),
    ("first_frame_ms", "First frame"),
)
UNCATEGORISED = "Uncategorised"


@dataclass(frozen=True)
class Period:
    days: int
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    tz: ZoneInfo
    include_test_calls: bool = False

    def calls(self) -> Q:
        """Which calls count: every call, or only real ones."""
        return Q() if self.include_test_calls else Q(is_test=False)

    def via(self, path: str) -> Q:
        """Rows that count, reached from the call through ``path`` (rows without a call always count)."""
        return Q() if self.include_test_calls else ~Q(**{f"{path}__is_test": True})


def analytics_period(
    *, days: int, tz: ZoneInfo, now: datetime | None = None, include_test_calls: bool = False
) -> Period:
    """The last ``days`` local calendar days up to ``now``, today included; test calls only when asked."""
    if days not in PERIOD_DAYS:
        raise ValueError(f"period must be one of {PERIOD_DAYS}, not {days}")
    now = now or timezone.now()
    last_day = now.astimezone(tz).date()
    first_day = last_day - timedelta(days=days - 1)
    return Period(
        days=days,
        start=local_day_start(first_day, tz),
        end=now,
        first_day=first_day,
        last_day=last_day,
        tz=tz,
        include_test_calls=include_test_calls,
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def analytics_calls_per_day(*, tenant: Tenant, period: Period) -> list[dict[str, Any]]:
    """Per local day of the period: completed and abandoned calls and the average handle time (s).

    Handle time is answered to ended; calls never answered have none. Days
    without calls are listed with zeros, so the chart's axis has no gaps.
    """

    schema_check(tenant=tenant, reader="analytics_calls_per_day")
    handled = Q(answered_at__isnull=False, ended_at__isnull=False)
    rows = (
        Call.objects.filter(period.calls(), started_at__gte=period.start, started_at__lte=period.end)
        .annotate(day=TruncDate("started_at", tzinfo=period.tz))
        .values("day")
        .annotate(
            completed=Count("id", filter=Q(status=Call.Status.COMPLETED)),
            abandoned=Count("id", filter=Q(status=Call.Status.ABANDONED)),
            total=Count("id"),
            handle=Avg(F("ended_at") - F("answered_at"), filter=handled, output_field=DurationField()),
        )
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(period.days):
        day = period.first_day + timedelta(days=offset)
        row = by_day.get(day, {})
        series.append(
            {
                "day": day,
                "completed": row.get("completed", 0),
                "abandoned": row.get("abandoned", 0),
                "total": row.get("total", 0),
                "handle_seconds": _seconds(row.get("handle")),
            }
        )
    return series


def analytics_handle_time(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """Average handle time (answered to ended, seconds) of the period's calls, and how many calls it covers."""

    schema_check(tenant=tenant, reader="analytics_handle_time")
    result = Call.objects.filter(
        period.calls(),
        started_at__gte=period.start,
        started_at__lte=period.end,
        answered_at__isnull=False,
        ended_at__isnull=False,
    ).aggregate(
        average=Avg(F("ended_at") - F("answered_at"), output_field=DurationField()),
        calls=Count("id"),
    )
    return {"average_seconds": _seconds(result["average"]), "calls": result["calls"]}


def analytics_tickets_by_category(*, tenant: Tenant, period: Period) -> list[dict[str, Any]]:
    """Tickets opened in the period per category, most first."""

    schema_check(tenant=tenant, reader="analytics_tickets_by_category")
    rows = (
        Ticket.objects.filter(period.via("call"), created_at__gte=period.start, created_at__lte=period.end)
        .values("category")
        .annotate(count=Count("id"))
        .order_by("-count", "category")
    )
    return [{"label": row["category"] or UNCATEGORISED, "count": row["count"]} for row in rows]


def analytics_tickets_by_priority(*, tenant: Tenant, period: Period) -> list[dict[str, Any]]:
    """Tickets opened in the period per priority, most urgent first, every priority listed."""

    schema_check(tenant=tenant, reader="analytics_tickets_by_priority")
    counts = dict(
        Ticket.objects.filter(period.via("call"), created_at__gte=period.start, created_at__lte=period.end)
        .values("priority")
        .annotate(count=Count("id"))
        .values_list("priority", "count")
    )
    order = [Ticket.Priority.URGENT, Ticket.Priority.HIGH, Ticket.Priority.NORMAL, Ticket.Priority.LOW]
    return [{"value": p.value, "label": p.label, "count": counts.get(p.value, 0)} for p in order]


def analytics_resolution_time(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """Time to resolution (created to resolved, seconds) of the tickets resolved in the period."""

    schema_check(tenant=tenant, reader="analytics_resolution_time")
    took = F("resolved_at") - F("created_at")
    result = Ticket.objects.filter(
        period.via("call"), resolved_at__gte=period.start, resolved_at__lte=period.end
    ).aggregate(
        median=Percentile(took, fraction=0.5, output_field=DurationField()),
        average=Avg(took, output_field=DurationField()),
        tickets=Count("id"),
    )
    return {
        "median_seconds": _seconds(result["median"]),
        "average_seconds": _seconds(result["average"]),
        "tickets": result["tickets"],
    }


def analytics_callbacks(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """Callbacks requested in the period: how many were tried, reached, and the attempts it took.

    Success rate is reached / callbacks with at least one attempt; a callback
    nobody has tried yet says nothing about how well callbacks go.
    """

    schema_check(tenant=tenant, reader="analytics_callbacks")
    tried = Q(attempts__gte=1)
    result = Callback.objects.filter(
        period.via("ticket__call"), created_at__gte=period.start, created_at__lte=period.end
    ).aggregate(
        requested=Count("id"),
        attempted=Count("id", filter=tried),
        reached=Count("id", filter=tried & Q(outcome="reached")),
        attempts=Sum("attempts", default=0),
    )
    return {
        **result,
        "success_rate": _ratio(result["reached"], result["attempted"]),
        "attempts_per_callback": _ratio(result["attempts"], result["attempted"]),
    }


def analytics_faq_answer_rate(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """Questions the agent answered from the FAQ / all questions callers asked, in the period.

    An answer belongs to the period of its ticket (answers carry no time of their own).
    """

    schema_check(tenant=tenant, reader="analytics_faq_answer_rate")
    answered = FaqAnswer.objects.filter(
        period.via("ticket__call"), ticket__created_at__gte=period.start, ticket__created_at__lte=period.end
    ).count()
    unanswered = UnansweredQuestion.objects.filter(
        period.via("call"), created_at__gte=period.start, created_at__lte=period.end
    ).count()
    return {"answered": answered, "unanswered": unanswered, "rate": _ratio(answered, answered + unanswered)}


def analytics_unanswered_top(*, tenant: Tenant, period: Period, limit: int = 10) -> list[dict[str, Any]]:
    """The open unanswered questions asked most in the period, the same question in any letter case counted once."""

    schema_check(tenant=tenant, reader="analytics_unanswered_top")
    rows = (
        UnansweredQuestion.objects.filter(
            period.via("call"),
            status=UnansweredQuestion.Status.OPEN,
            created_at__gte=period.start,
            created_at__lte=period.end,
        )
        .annotate(key=Lower(Trim("question")))
        .values("key")
        .annotate(count=Count("id"), question=Min(Trim("question")), last_asked=Max("created_at"))
        .order_by("-count", "key")[:limit]
    )
    return [{"question": row["question"], "count": row["count"], "last_asked": row["last_asked"]} for row in rows]


def analytics_latency(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """p50 and p95 (ms) of each response-latency stage over the turns of the period, and the turn count."""

    schema_check(tenant=tenant, reader="analytics_latency")
    aggregates: dict[str, Any] = {"turns": Count("id")}
    for field, _ in LATENCY_STAGES:
        aggregates[f"{field}_p50"] = Percentile(field, fraction=0.5, output_field=FloatField())
        aggregates[f"{field}_p95"] = Percentile(field, fraction=0.95, output_field=FloatField())
    result = TurnLatency.objects.filter(
        period.via("call"), created_at__gte=period.start, created_at__lte=period.end
    ).aggregate(**aggregates)
    stages = [
        {"field": field, "label": label, "p50": result[f"{field}_p50"], "p95": result[f"{field}_p95"]}
        for field, label in LATENCY_STAGES
    ]
    return {"turns": result["turns"], "stages": stages}


def analytics_summary(*, tenant: Tenant, period: Period) -> dict[str, Any]:
    """Every figure of the analytics page for ``period``."""
    return {
        "calls_per_day": analytics_calls_per_day(tenant=tenant, period=period),
        "handle_time": analytics_handle_time(tenant=tenant, period=period),
        "tickets_by_category": analytics_tickets_by_category(tenant=tenant, period=period),
        "tickets_by_priority": analytics_tickets_by_priority(tenant=tenant, period=period),
        "resolution": analytics_resolution_time(tenant=tenant, period=period),
        "callbacks": analytics_callbacks(tenant=tenant, period=period),
        "faq": analytics_faq_answer_rate(tenant=tenant, period=period),
        "unanswered_top": analytics_unanswered_top(tenant=tenant, period=period),
        "latency": analytics_latency(tenant=tenant, period=period),
    }
