from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from calls.models import FaqEntry
from tests.factories import CallFactory, outcome
from tickets.models import Callback, Ticket, TicketChange, UnansweredQuestion
from tickets.services import ticket_create_from_call

# Monday 25 November 2030, 10:00 UTC: inside the default business hours (Mon-Fri 09:00-17:00 UTC).
MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


@time_machine.travel(MONDAY_10, tick=False)
def test_ticket_from_a_call_carries_everything_captured(in_tenant_a) -> None:
    FaqEntry.objects.filter(question="What are your opening hours?").delete()
    hours_entry = FaqEntry.objects.create(question="What are your opening hours?", answer="9 to 5.")
    call = CallFactory(captured=outcome())

    ticket = ticket_create_from_call(call_id=call.pk)

    assert (ticket.subject, ticket.caller_name, ticket.callback_number) == (
        "My kitchen sink is leaking",
        "Maria Gonzalez",
        "+15552013344",
    )
    assert (ticket.category, ticket.priority, ticket.status, ticket.source) == ("leak", "normal", "new", "phone")
    assert ticket.summary == "Leak: my kitchen sink is leaking."
    assert ticket.faq_answered == ["What are your opening hours?"]
    assert ticket.call == call
    callback = Callback.objects.get(ticket=ticket)
    assert (callback.phone, callback.priority, callback.outcome) == ("+15552013344", "normal", "")
    # Normal callbacks: 8 business hours (7 today, 1 tomorrow); the ticket: 24 business hours.
    assert callback.due_at == datetime(2030, 11, 26, 10, 0, tzinfo=UTC)
    assert ticket.due_at == datetime(2030, 11, 28, 10, 0, tzinfo=UTC)
    assert list(ticket.faq_answers.values_list("question", "faq_entry_id")) == [
        ("What are your opening hours?", hours_entry.pk)
    ]
    assert list(TicketChange.objects.filter(ticket=ticket).values_list("field", "new_value")) == [("created", "new")]


def test_ticket_generation_is_idempotent(in_tenant_a) -> None:
    call = CallFactory(captured=outcome(unanswered_questions=["Can you fix laptops?"]))

    first = ticket_create_from_call(call_id=call.pk)
    second = ticket_create_from_call(call_id=call.pk)

    assert first.pk == second.pk
    assert Ticket.objects.count() == 1
    assert Callback.objects.count() == 1
    assert list(UnansweredQuestion.objects.values_list("question", flat=True)) == ["Can you fix laptops?"]


def test_faq_only_call_is_resolved_without_callback(in_tenant_a) -> None:
    call = CallFactory(
        captured=outcome(
            fields={},
            reason="",
            category="general",
            resolved=True,
            callback_requested=False,
            faq_answered=["Which areas do you cover?"],
            summary="General inquiry.",
        )
    )

    ticket = ticket_create_from_call(call_id=call.pk)

    assert (ticket.subject, ticket.status, ticket.category, ticket.callback_number) == (
        "General enquiry",
        "resolved",
        "general",
        "",
    )
    assert not Callback.objects.exists()


@time_machine.travel(datetime(2030, 11, 30, 23, 0, tzinfo=UTC), tick=False)  # a Saturday night
@pytest.mark.parametrize(("priority", "hours"), [("urgent", 0.5), ("high", 2)])
def test_human_request_queues_a_prioritised_callback_to_the_caller_id(in_tenant_a, priority: str, hours: float) -> None:
    call = CallFactory(
        from_number="+15551112222", captured=outcome(fields={"reason": "the bill"}, priority=priority, wants_human=True)
    )

    ticket = ticket_create_from_call(call_id=call.pk)

    callback = ticket.callback
    assert (callback.phone, callback.priority, callback.reason) == (
        "+15551112222",
        priority,
        "Caller asked for a person",
    )
    # Around the clock, not at Monday's opening.
    assert callback.due_at == timezone.now() + timedelta(hours=hours)
