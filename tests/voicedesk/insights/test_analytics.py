from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_tenants.utils import tenant_context

from calls.models import Call, TurnLatency
from calls.selectors import UTC as UTC_ZONE
from tests.calls.factories_history import call_at
from tests.factories import (
    CallbackFactory,
    CallFactory,
    TicketFactory,
    TurnLatencyFactory,
    UnansweredQuestionFactory,
)
from tickets.models import Callback, FaqAnswer, Ticket, UnansweredQuestion
from voicedesk.insights import analytics

# Sunday 10 March 2030, 15:00 UTC. The 7-day period is 4 to 10 March.
NOW = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)
BEFORE_PERIOD = datetime(2030, 3, 3, 23, 59, tzinfo=UTC)


def _period(days: int = 7, tz: ZoneInfo = UTC_ZONE) -> analytics.Period:
    return analytics.analytics_period(days=days, tz=tz, now=NOW)


def test_period_is_the_last_n_local_days_today_included() -> None:
    period = _period(7, ZoneInfo("Asia/Tokyo"))

    # 15:00 UTC is midnight in Tokyo: it is already 11 March there.
    assert (period.first_day, period.last_day) == (date(2030, 3, 5), date(2030, 3, 11))
    assert period.start == datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
    assert period.end == NOW
    assert _period(30).first_day == date(2030, 2, 9)
    with pytest.raises(ValueError, match="period must be one of"):
        analytics.analytics_period(days=14, tz=UTC_ZONE, now=NOW)


def test_calls_per_day_completed_abandoned_and_handle_time(in_tenant_a) -> None:
    ninth = datetime(2030, 3, 9, 10, 0, tzinfo=UTC)
    for minutes, talk in enumerate([60, 120, 180]):
        call_at(ninth + timedelta(minutes=minutes), talk_s=talk)
    call_at(ninth + timedelta(hours=1), talk_s=None, status=Call.Status.ABANDONED)
    call_at(datetime(2030, 3, 10, 9, 0, tzinfo=UTC), talk_s=30)
    call_at(BEFORE_PERIOD, talk_s=999)

    days = analytics.analytics_calls_per_day(tenant=in_tenant_a.tenant, period=_period())

    assert [row["day"] for row in days] == [date(2030, 3, d) for d in range(4, 11)]
    assert days[5] == {"day": date(2030, 3, 9), "completed": 3, "abandoned": 1, "total": 4, "handle_seconds": 120.0}
    assert days[6] == {"day": date(2030, 3, 10), "completed": 1, "abandoned": 0, "total": 1, "handle_seconds": 30.0}
    assert days[:5] == [
        {"day": date(2030, 3, d), "completed": 0, "abandoned": 0, "total": 0, "handle_seconds": None}
        for d in range(4, 9)
    ]
    assert analytics.analytics_handle_time(tenant=in_tenant_a.tenant, period=_period()) == {
        "average_seconds": 97.5,
        "calls": 4,
    }


def test_calls_are_counted_on_their_local_day(in_tenant_a) -> None:
    new_york = ZoneInfo("America/New_York")
    # 03:30 UTC on 10 March is 22:30 on 9 March in New York.
    call_at(datetime(2030, 3, 10, 3, 30, tzinfo=UTC))

    days = analytics.analytics_calls_per_day(tenant=in_tenant_a.tenant, period=_period(tz=new_york))

    assert [(row["day"], row["total"]) for row in days if row["total"]] == [(date(2030, 3, 9), 1)]


@time_machine.travel(NOW - timedelta(days=1), tick=False)
def test_tickets_by_category_and_priority(in_tenant_a) -> None:
    TicketFactory(category="leak", priority="urgent")
    TicketFactory(category="leak")
    TicketFactory(category="billing")
    TicketFactory(category="")
    old = TicketFactory(category="leak", priority="low")
    Ticket.objects.filter(pk=old.pk).update(created_at=BEFORE_PERIOD)

    assert analytics.analytics_tickets_by_category(tenant=in_tenant_a.tenant, period=_period()) == [
        {"label": "leak", "count": 2},
        {"label": "Uncategorised", "count": 1},
        {"label": "billing", "count": 1},
    ]
    assert analytics.analytics_tickets_by_priority(tenant=in_tenant_a.tenant, period=_period()) == [
        {"value": "urgent", "label": "Urgent", "count": 1},
        {"value": "high", "label": "High", "count": 0},
        {"value": "normal", "label": "Normal", "count": 3},
        {"value": "low", "label": "Low", "count": 0},
    ]


def test_time_to_resolution_median_and_average(in_tenant_a) -> None:
    resolved = datetime(2030, 3, 8, 12, 0, tzinfo=UTC)
    for hours in (1, 2, 6):
        ticket = TicketFactory(status=Ticket.Status.RESOLVED)
        Ticket.objects.filter(pk=ticket.pk).update(created_at=resolved - timedelta(hours=hours), resolved_at=resolved)
    long_ago = TicketFactory(status=Ticket.Status.RESOLVED)
    Ticket.objects.filter(pk=long_ago.pk).update(
        created_at=BEFORE_PERIOD - timedelta(days=9), resolved_at=BEFORE_PERIOD
    )
    TicketFactory()  # still open

    assert analytics.analytics_resolution_time(tenant=in_tenant_a.tenant, period=_period()) == {
        "median_seconds": 7200.0,
        "average_seconds": 10800.0,
        "tickets": 3,
    }


@time_machine.travel(NOW - timedelta(days=2), tick=False)
def test_callback_success_rate_counts_only_tried_callbacks(in_tenant_a) -> None:
    CallbackFactory(attempts=1, outcome=Callback.Outcome.REACHED)
    CallbackFactory(attempts=2, outcome=Callback.Outcome.REACHED)
    CallbackFactory(attempts=3, outcome=Callback.Outcome.NO_ANSWER)
    CallbackFactory(attempts=0)
    old = CallbackFactory(attempts=1, outcome=Callback.Outcome.NO_ANSWER)
    Callback.objects.filter(pk=old.pk).update(created_at=BEFORE_PERIOD)

    result = analytics.analytics_callbacks(tenant=in_tenant_a.tenant, period=_period())

    assert result == {
        "requested": 4,
        "attempted": 3,
        "reached": 2,
        "attempts": 6,
        "success_rate": 2 / 3,
        "attempts_per_callback": 2.0,
    }


@time_machine.travel(NOW - timedelta(days=2), tick=False)
def test_faq_answer_rate(in_tenant_a) -> None:
    ticket = TicketFactory()
    for question in ("Hours?", "Where?", "Parking?"):
        FaqAnswer.objects.create(ticket=ticket, question=question)
    UnansweredQuestionFactory(ticket=ticket)
    old_ticket = TicketFactory()
    Ticket.objects.filter(pk=old_ticket.pk).update(created_at=BEFORE_PERIOD)
    FaqAnswer.objects.create(ticket=old_ticket, question="Hours?")
    old_question = UnansweredQuestionFactory(ticket=old_ticket)
    UnansweredQuestion.objects.filter(pk=old_question.pk).update(created_at=BEFORE_PERIOD)

    assert analytics.analytics_faq_answer_rate(tenant=in_tenant_a.tenant, period=_period()) == {
        "answered": 3,
        "unanswered": 1,
        "rate": 0.75,
    }


@time_machine.travel(NOW - timedelta(days=2), tick=False)
def test_top_unanswered_questions_group_letter_case_and_keep_open_ones(in_tenant_a) -> None:
    ticket = TicketFactory()
    for text in ("Do you fix boilers?", "do you fix boilers?", "  Do you fix boilers? "):
        UnansweredQuestionFactory(ticket=ticket, question=text)
    UnansweredQuestionFactory(ticket=ticket, question="Are you open on Sunday?")
    for _ in range(5):
        UnansweredQuestionFactory(ticket=ticket, question="Dismissed question", status="dismissed")
    old = UnansweredQuestionFactory(ticket=ticket, question="Do you fix boilers?")
    UnansweredQuestion.objects.filter(pk=old.pk).update(created_at=BEFORE_PERIOD)

    top = analytics.analytics_unanswered_top(tenant=in_tenant_a.tenant, period=_period())

    # Which spelling represents the group depends on the database's collation; the group does not.
    assert [(row["question"].lower(), row["count"], row["last_asked"]) for row in top] == [
        ("do you fix boilers?", 3, NOW - timedelta(days=2)),
        ("are you open on sunday?", 1, NOW - timedelta(days=2)),
    ]


@time_machine.travel(NOW - timedelta(days=2), tick=False)
def test_top_unanswered_questions_are_ten_at_most(in_tenant_a) -> None:
    ticket = TicketFactory()
    for n in range(12):
        for _ in range(1 + (n == 11)):
            UnansweredQuestionFactory(ticket=ticket, question=f"Question {n:02d}?")

    top = analytics.analytics_unanswered_top(tenant=in_tenant_a.tenant, period=_period())

    assert [(row["question"], row["count"]) for row in top] == [("Question 11?", 2)] + [
        (f"Question {n:02d}?", 1) for n in range(9)
    ]


@time_machine.travel(NOW - timedelta(days=1), tick=False)
def test_latency_p50_and_p95_per_stage(in_tenant_a) -> None:
    call = CallFactory()
    for index, base in enumerate([100.0, 200.0, 300.0, 400.0, 500.0]):
        TurnLatencyFactory(
            call=call,
            turn_index=index,
            pause_ms=base / 2,
            transcript_ms=base,
            endpoint_ms=base + 5,
            decision_ms=base + 10,
            first_audio_ms=base * 2,
            first_frame_ms=base * 3,
        )
    old = TurnLatencyFactory(call=call, turn_index=99, first_frame_ms=99999.0)
    TurnLatency.objects.filter(pk=old.pk).update(created_at=BEFORE_PERIOD)

    result = analytics.analytics_latency(tenant=in_tenant_a.tenant, period=_period())

    assert result == {
        "turns": 5,
        "stages": [
            {"field": "pause_ms", "label": "Pause seen", "p50": 150.0, "p95": 240.0},
            {"field": "transcript_ms", "label": "Transcript", "p50": 300.0, "p95": 480.0},
            {"field": "endpoint_ms", "label": "Turn ended", "p50": 305.0, "p95": 485.0},
            {"field": "decision_ms", "label": "Decision", "p50": 310.0, "p95": 490.0},
            {"field": "first_audio_ms", "label": "First audio", "p50": 600.0, "p95": 960.0},
            {"field": "first_frame_ms", "label": "First frame", "p50": 900.0, "p95": 1440.0},
        ],
    }


def test_empty_period_has_zeros_and_no_averages(in_tenant_a) -> None:
    summary = analytics.analytics_summary(tenant=in_tenant_a.tenant, period=_period())

    assert summary["handle_time"] == {"average_seconds": None, "calls": 0}
    assert summary["tickets_by_category"] == []
    assert [row["count"] for row in summary["tickets_by_priority"]] == [0, 0, 0, 0]
    assert summary["resolution"] == {"median_seconds": None, "average_seconds": None, "tickets": 0}
    assert summary["callbacks"] == {
        "requested": 0,
        "attempted": 0,
        "reached": 0,
        "attempts": 0,
        "success_rate": None,
        "attempts_per_callback": None,
    }
    assert summary["faq"] == {"answered": 0, "unanswered": 0, "rate": None}
    assert summary["unanswered_top"] == []
    assert summary["latency"]["turns"] == 0
    assert {(stage["p50"], stage["p95"]) for stage in summary["latency"]["stages"]} == {(None, None)}
    assert sum(row["total"] for row in summary["calls_per_day"]) == 0


def test_analytics_refuse_another_tenants_schema(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant), pytest.raises(RuntimeError, match="analytics_latency for alpha"):
        analytics.analytics_latency(tenant=tenant_a.tenant, period=_period())


def test_summary_is_a_fixed_number_of_queries(in_tenant_a, django_assert_num_queries) -> None:
    for day in range(1, 6):
        call = call_at(NOW - timedelta(days=day), talk_s=60)
        TurnLatencyFactory(call=call, turn_index=0)
        CallbackFactory(ticket=TicketFactory(call=call), attempts=1, outcome=Callback.Outcome.REACHED)

    with django_assert_num_queries(10):
        analytics.analytics_summary(tenant=in_tenant_a.tenant, period=_period())


def _call_with_everything(*, is_test: bool, priority: str, category: str) -> Call:
    """A call a day ago, with its ticket (resolved), a tried callback, one FAQ answer, one open question, a turn."""
    call = call_at(NOW - timedelta(days=1), talk_s=60, is_test=is_test)
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        ticket = TicketFactory(call=call, priority=priority, category=category)
        CallbackFactory(ticket=ticket, attempts=1, outcome=Callback.Outcome.REACHED)
        FaqAnswer.objects.create(ticket=ticket, question="Hours?")
        UnansweredQuestionFactory(ticket=ticket, call=call, question=f"Question from {category}?")
        TurnLatencyFactory(call=call, turn_index=0, first_frame_ms=1000.0 if is_test else 500.0)
    Ticket.objects.filter(pk=ticket.pk).update(resolved_at=NOW - timedelta(hours=12))
    return call


def test_test_calls_and_what_they_made_are_left_out_unless_asked_for(in_tenant_a) -> None:
    _call_with_everything(is_test=False, priority="high", category="leak")
    _call_with_everything(is_test=True, priority="urgent", category="testing")
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        TicketFactory(priority="low", category="walk-in")  # a ticket without a call always counts

    default = analytics.analytics_summary(tenant=in_tenant_a.tenant, period=_period())
    everything = analytics.analytics_summary(
        tenant=in_tenant_a.tenant,
        period=analytics.analytics_period(days=7, tz=UTC_ZONE, now=NOW, include_test_calls=True),
    )

    assert sum(row["total"] for row in default["calls_per_day"]) == 1
    assert sum(row["total"] for row in everything["calls_per_day"]) == 2
    assert (default["handle_time"]["calls"], everything["handle_time"]["calls"]) == (1, 2)
    assert default["tickets_by_category"] == [{"label": "leak", "count": 1}, {"label": "walk-in", "count": 1}]
    assert [row["label"] for row in everything["tickets_by_category"]] == ["leak", "testing", "walk-in"]
    assert [row["count"] for row in default["tickets_by_priority"]] == [0, 1, 0, 1]
    assert [row["count"] for row in everything["tickets_by_priority"]] == [1, 1, 0, 1]
    assert (default["resolution"]["tickets"], everything["resolution"]["tickets"]) == (1, 2)
    assert (default["callbacks"]["requested"], everything["callbacks"]["requested"]) == (1, 2)
    assert default["faq"] == {"answered": 1, "unanswered": 1, "rate": 0.5}
    assert everything["faq"] == {"answered": 2, "unanswered": 2, "rate": 0.5}
    assert [row["question"] for row in default["unanswered_top"]] == ["Question from leak?"]
    assert len(everything["unanswered_top"]) == 2
    assert default["latency"]["turns"] == 1
    assert default["latency"]["stages"][-1]["p50"] == 500.0
    assert everything["latency"]["turns"] == 2
