"""Writes for tickets. Callers set the tenant schema (actors get it from the message)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from calls.models import Call
from tickets.models import Callback, Ticket, TicketChange, UnansweredQuestion

logger = structlog.get_logger(__name__)

# How soon a callback is due, by priority, until tenants set their own SLAs.
CALLBACK_DUE = {
    Ticket.Priority.URGENT: timedelta(minutes=30),
    Ticket.Priority.HIGH: timedelta(hours=2),
    Ticket.Priority.NORMAL: timedelta(hours=24),
    Ticket.Priority.LOW: timedelta(hours=48),
}


def ticket_create_from_call(*, call_id: int) -> Ticket:
    """Turn a finished call into its ticket, unanswered questions and callback.

    Idempotent: the call row is locked and an existing ticket is returned, so
    a retried message never makes a second ticket.
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        existing = Ticket.objects.filter(call=call).first()
        if existing is not None:
            return existing
        outcome: dict[str, Any] = call.captured or {}
        fields: dict[str, str] = outcome.get("fields", {})
        priority = outcome.get("priority") or Ticket.Priority.NORMAL
        reason = outcome.get("reason") or ""
        summary = outcome.get("summary") or reason
        ticket = Ticket.objects.create(
            subject=_subject(reason, outcome),
            summary=summary,
            caller_name=fields.get("name", ""),
            callback_number=fields.get("callback_number", ""),
            email=fields.get("email", ""),
            category=outcome.get("category") or "general",
            priority=priority,
            status=Ticket.Status.RESOLVED if outcome.get("resolved") else Ticket.Status.NEW,
            source=Ticket.Source.PHONE,
            call=call,
            captured=fields,
            faq_answered=list(outcome.get("faq_answered", [])),
        )
        UnansweredQuestion.objects.bulk_create(
            UnansweredQuestion(question=q, call=call, ticket=ticket) for q in outcome.get("unanswered_questions", [])
        )
        if outcome.get("callback_requested"):
            Callback.objects.create(
                ticket=ticket,
                phone=ticket.callback_number or call.from_number,
                priority=priority,
                reason="Caller asked for a person" if outcome.get("wants_human") else (reason[:200] or "Follow up"),
                requested_window=fields.get("preferred_time", "")[:100],
                due_at=timezone.now() + CALLBACK_DUE.get(priority, CALLBACK_DUE[Ticket.Priority.NORMAL]),
            )
        TicketChange.objects.create(ticket=ticket, field="created", new_value=ticket.status)
    logger.info("ticket_created", ticket_id=ticket.pk, call_id=call_id, priority=ticket.priority)
    return ticket


def _subject(reason: str, outcome: dict[str, Any]) -> str:
    if reason:
        return reason[:1].upper() + reason[1:200]
    if outcome.get("faq_answered") and not outcome.get("unanswered_questions"):
        return "General enquiry"
    return "Phone call"
