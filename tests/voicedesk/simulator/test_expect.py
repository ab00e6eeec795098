"""Per-check results and the exact-ticket rates of a run, overall and per check, with exact values."""

from __future__ import annotations

from dataclasses import replace

from voicedesk.simulator.expect import (
    CHECKS,
    CallVerdict,
    FieldCheck,
    StoredCall,
    StoredTicket,
    call_verdict,
    check_fields,
    checks_asked,
    quality_summary,
)
from voicedesk.simulator.scenario import Expectations, TicketExpect

TICKET = StoredTicket(
    number="T-1",
    caller_name="Xiomara Quintero",
    callback_number="+15554028816",
    category="color",
    priority="normal",
    status="new",
    summary="Color: balayage with lowlights.",
    faq_answered=("Is there parking nearby?",),
    unanswered_questions=0,
    callback_requested=True,
)
EXPECT = Expectations(
    ticket=TicketExpect(
        caller_name="xiomara quintero",
        callback_number="+15554028816",
        category="color",
        priority="normal",
        status="new",
        summary_mentions=("balayage",),
    ),
    faq_answered=("Is there parking nearby?",),
    unanswered_questions=0,
    callback_requested=True,
)
FAQ_ONLY = Expectations(
    ticket=TicketExpect(category="general", status="resolved"),
    faq_answered=("Is there parking nearby?",),
    unanswered_questions=0,
    callback_requested=False,
)


def stored(ticket: StoredTicket | None = TICKET) -> StoredCall:
    return StoredCall(call_id=9, status="completed", end_reason="agent_hangup", captured={}, ticket=ticket)


def test_checks_asked_are_the_expectations_present_in_report_order() -> None:
    assert checks_asked(EXPECT) == CHECKS
    assert checks_asked(FAQ_ONLY) == ("category", "status", "faq_answered", "unanswered_questions", "callback")
    assert checks_asked(Expectations()) == ()


def test_check_fields_passes_a_matching_ticket_check_by_check() -> None:
    assert check_fields(EXPECT, TICKET) == [FieldCheck(check) for check in CHECKS]


def test_check_fields_names_each_failing_check() -> None:
    ticket = replace(TICKET, caller_name="Xiomara Kintero", category="booking", unanswered_questions=1)
    results = check_fields(EXPECT, ticket)
    assert [r.check for r in results if not r.passed] == ["name", "category", "unanswered_questions"]
    assert [r.mismatch for r in results if not r.passed] == [
        "ticket.caller_name: expected 'xiomara quintero', got 'Xiomara Kintero'",
        "ticket.category: expected 'color', got 'booking'",
        "unanswered_questions: expected 0, got 1",
    ]


def test_call_verdicts() -> None:
    assert call_verdict("a#1", EXPECT, stored()) == CallVerdict("a#1", CHECKS)
    wrong = stored(replace(TICKET, callback_number="(555) 402-8861", callback_requested=False))
    assert call_verdict("a#2", EXPECT, wrong) == CallVerdict("a#2", CHECKS, failed=("number", "callback"))
    assert call_verdict("b#1", FAQ_ONLY, stored(None)) == CallVerdict(
        "b#1",
        checks_asked(FAQ_ONLY),
        failed=checks_asked(FAQ_ONLY),
        problem="no ticket for call 9 within 30 s (call status 'completed', end reason 'agent_hangup'); "
        "is a Dramatiq worker running?",
    )
    assert call_verdict("c#1", FAQ_ONLY, None, call_sid="CA7").problem == "the product stored no call with CallSid CA7"
    carrier = call_verdict("d#1", FAQ_ONLY, None, error="POST failed")
    assert (carrier.failed, carrier.problem, carrier.exact) == (checks_asked(FAQ_ONLY), "POST failed", False)


def test_quality_summary_counts_each_check_over_the_calls_that_ask_for_it() -> None:
    verdicts = [
        CallVerdict("salon-a#1", CHECKS),
        CallVerdict("salon-b#1", CHECKS, failed=("number", "callback")),
        CallVerdict("pest-a#1", ("category", "status", "faq_answered", "unanswered_questions", "callback")),
        CallVerdict(
            "vet-a#1", ("name", "number", "category"), failed=("name", "number", "category"), problem="no ticket"
        ),
    ]
    summary = quality_summary(verdicts)
    assert summary["calls"] == 4
    assert summary["exact"] == 2
    assert summary["exact_rate"] == 0.5
    assert summary["checks"] == {
        "name": {"checked": 3, "passed": 2, "rate": 2 / 3},
        "number": {"checked": 3, "passed": 1, "rate": 1 / 3},
        "category": {"checked": 4, "passed": 3, "rate": 0.75},
        "priority": {"checked": 2, "passed": 2, "rate": 1.0},
        "status": {"checked": 3, "passed": 3, "rate": 1.0},
        "summary": {"checked": 2, "passed": 2, "rate": 1.0},
        "faq_answered": {"checked": 3, "passed": 3, "rate": 1.0},
        "unanswered_questions": {"checked": 3, "passed": 3, "rate": 1.0},
        "callback": {"checked": 3, "passed": 2, "rate": 2 / 3},
    }
    assert summary["missed"] == [
        {"call": "salon-b#1", "checks": ["number", "callback"], "problem": ""},
        {"call": "vet-a#1", "checks": ["name", "number", "category"], "problem": "no ticket"},
    ]


def test_quality_summary_of_nothing() -> None:
    summary = quality_summary([])
    assert (summary["calls"], summary["exact"], summary["exact_rate"], summary["missed"]) == (0, 0, None, [])
    assert summary["checks"]["name"] == {"checked": 0, "passed": 0, "rate": None}
