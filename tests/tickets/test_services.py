from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import CallFactory, outcome
from tickets.models import Callback, Ticket, TicketChange, UnansweredQuestion
from tickets.services import ticket_create_from_call


def test_ticket_from_a_call_carries_everything_captured(in_tenant_a) -> None:
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
    assert timezone.now() + timedelta(hours=23) < callback.due_at <= timezone.now() + timedelta(hours=24)
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
    assert callback.due_at <= timezone.now() + timedelta(hours=hours)
