"""Writes for tickets, their callbacks and the questions the agent could not answer.

Every state change goes through one function here: it makes the change,
writes the audit row (``TicketChange``) and registers its side effects (live
dashboard events) in the same transaction. Callers set the tenant schema;
actors get it from the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls.models import Call, FaqEntry
from calls.selectors import BusinessProfile, business_profile_current
from calls.services import category_example_learn, faq_entry_create
from tenants.models import AuditEvent, Membership, User
from tickets.models import (
    CLOSED_STATUSES,
    STATUS_FLOW,
    Callback,
    CallbackAttempt,
    FaqAnswer,
    Ticket,
    TicketChange,
    TicketNote,
    UnansweredQuestion,
)
from tickets.selectors import PRIORITY_RANK
from voicedesk.core.errors import DomainError
from voicedesk.core.events import helpdesk_event_publish
from voicedesk.core.tenancy import current_schema

logger = structlog.get_logger(__name__)

# How soon a callback is due, by priority. Urgent and high callers (a burst
# pipe, a person asked for) are called back around the clock; the others
# within business hours.
CALLBACK_DUE: dict[str, tuple[float, bool]] = {
    Ticket.Priority.URGENT: (0.5, False),
    Ticket.Priority.HIGH: (2, False),
    Ticket.Priority.NORMAL: (8, True),
    Ticket.Priority.LOW: (16, True),
}
TAG_MAX_LENGTH = 50


class TicketError(DomainError):
    """A ticket change that is not allowed; the message says why, for the person who asked."""


def ticket_sla_due(*, priority: str, start: datetime) -> datetime | None:
    """When a ticket of ``priority`` opened at ``start`` must be resolved, in business hours."""
    profile = business_profile_current()
    hours = profile.sla_hours.get(priority)
    return profile.due(start, float(hours)) if hours is not None else None


def _change(ticket: Ticket, actor: User | None, field: str, old: object, new: object) -> TicketChange:
    return TicketChange(ticket=ticket, actor=actor, field=field, old_value=_text(old), new_value=_text(new))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, User):
        return value.email
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _assignee_check(user: User | None) -> None:
    if user is None:
        return
    if not Membership.objects.filter(user=user, tenant__schema_name=current_schema()).exists():
        raise TicketError("The assignee must be a member of this business.")


def tags_normalize(tags: Iterable[str]) -> list[str]:
    """Lower-case, trimmed, unique tags in the order given."""
    seen: list[str] = []
    for raw in tags:
        tag = " ".join(str(raw).split()).lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX_LENGTH:
            raise TicketError(f"Tags can be at most {TAG_MAX_LENGTH} characters long.")
        if tag not in seen:
            seen.append(tag)
    return seen


def _ticket_event(kind: str, ticket: Ticket) -> None:
    helpdesk_event_publish(
        kind=kind,
        data={
            "ticket_id": ticket.pk,
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
        },
    )


def ticket_create(
    *,
    actor: User | None,
    subject: str,
    description: str = "",
    caller_name: str = "",
    callback_number: str = "",
    email: str = "",
    category: str = "",
    tags: Iterable[str] = (),
    priority: str = Ticket.Priority.NORMAL,
    source: str = Ticket.Source.WEB,
    assignee: User | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket by hand (dashboard or API), with its SLA due time and audit row.

    ``now`` is the clock the due time counts from (default: the current time).
    """
    subject = subject.strip()
    if not subject:
        raise TicketError("A ticket needs a subject.")
    if priority not in Ticket.Priority.values:
        raise TicketError(f"Unknown priority {priority!r}.")
    if source not in Ticket.Source.values:
        raise TicketError(f"Unknown source {source!r}.")
    _assignee_check(assignee)
    now = now or timezone.now()
    with transaction.atomic():
        ticket = Ticket.objects.create(
            subject=subject[:200],
            description=description,
            caller_name=caller_name[:200],
            callback_number=callback_number[:32],
            email=email,
            category=category[:50] or "general",
            tags=tags_normalize(tags),
            priority=priority,
            source=source,
            assignee=assignee,
            due_at=ticket_sla_due(priority=priority, start=now),
        )
        TicketChange.objects.create(ticket=ticket, actor=actor, field="created", new_value=ticket.status)
        _ticket_event("ticket.created", ticket)
    logger.info("ticket_created", ticket_id=ticket.pk, source=source)
    return ticket


# Put on a phone ticket whose category the receptionist was unsure of; an
# agent choosing the category takes it off.
CATEGORY_REVIEW_TAG = "check-category"


def ticket_create_from_call(*, call_id: int, now: datetime | None = None) -> Ticket:
    """Turn a finished call into its ticket, unanswered questions and callback.

    Idempotent: the call row is locked and an existing ticket is returned, so
    a retried message never makes a second ticket. ``now`` is the clock for
    the resolution time and the callback's due time (default: the current
    time); the SLA counts from the call's start.
    """
    now = now or timezone.now()
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        existing = Ticket.objects.filter(call=call).first()
        if existing is not None:
            if call.transfer_status and call.ended_at is not None:
                _ticket_complete_after_transfer(existing, call, now)
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
            tags=[CATEGORY_REVIEW_TAG] if outcome.get("category_review") else [],
            priority=priority,
            status=Ticket.Status.RESOLVED if outcome.get("resolved") else Ticket.Status.NEW,
            resolved_at=now if outcome.get("resolved") else None,
            source=Ticket.Source.PHONE,
            call=call,
            captured=fields,
            faq_answered=list(outcome.get("faq_answered", [])),
            due_at=ticket_sla_due(priority=priority, start=call.started_at),
        )
        _faq_answers_link(ticket, ticket.faq_answered)
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
                due_at=callback_due(priority, now),
            )
        TicketChange.objects.create(ticket=ticket, field="created", new_value=ticket.status)
        _ticket_event("ticket.created", ticket)
    logger.info("ticket_created", ticket_id=ticket.pk, call_id=call_id, priority=ticket.priority)
    return ticket


# Ticket fields the end of a call fills in on a ticket made when its transfer began, if still empty.
_TRANSFER_FILLED = {"caller_name": "name", "callback_number": "callback_number", "email": "email"}


def _ticket_complete_after_transfer(ticket: Ticket, call: Call, now: datetime) -> None:
    """The call whose transfer made ``ticket`` has ended: add what was said after the transfer began.

    A transfer that failed hands the caller back to the agent, who may take
    more details. The summary and captured details follow the call; contact
    fields are filled only where empty (someone may have edited them); the
    callback the call asks for is queued if none is. Each change has its
    audit row; a second run finds nothing to change.
    """
    outcome: dict[str, Any] = call.captured or {}
    fields: dict[str, str] = outcome.get("fields", {})
    audit: list[TicketChange] = []
    summary = outcome.get("summary") or ""
    if summary and summary != ticket.summary:
        audit.append(_change(ticket, None, "summary", ticket.summary, summary))
        ticket.summary = summary
    for attr, key in _TRANSFER_FILLED.items():
        value = fields.get(key, "")
        if value and not getattr(ticket, attr):
            audit.append(_change(ticket, None, attr, "", value))
            setattr(ticket, attr, value)
    captured_changed = bool(fields) and fields != ticket.captured
    if captured_changed:
        ticket.captured = fields
    if audit or captured_changed:
        ticket.save()
        TicketChange.objects.bulk_create(audit)
    if outcome.get("callback_requested") and not Callback.objects.filter(ticket=ticket).exists():
        Callback.objects.create(
            ticket=ticket,
            phone=ticket.callback_number or call.from_number,
            priority=ticket.priority,
            reason="Caller asked for a person" if outcome.get("wants_human") else (ticket.subject or "Follow up"),
            requested_window=fields.get("preferred_time", "")[:100],
            due_at=callback_due(ticket.priority, now),
        )
    if audit:
        _ticket_event("ticket.updated", ticket)


# Why the callback of a failed transfer is queued, by how the transfer ended.
TRANSFER_CALLBACK_REASONS = {
    "busy": "Transfer to a person failed: the line was busy",
    "no_answer": "Transfer to a person failed: nobody answered",
    "failed": "Transfer to a person failed",
}


def _rank(priority: str) -> int:
    """0 for urgent, growing as priority falls (``PRIORITY_RANK``)."""
    return PRIORITY_RANK[Ticket.Priority(priority)]


def callback_queue_after_transfer(*, call_id: int, status: str, now: datetime | None = None) -> Callback:
    """A transfer of the caller to a person failed: queue a high-priority callback on the call's ticket.

    The ticket (made when the transfer began) is made now if it is missing.
    Its priority rises to high when it was lower, with an audit row; an
    existing callback is raised to high and made due again, so the caller
    is never queued twice. Idempotent.
    """
    if status not in TRANSFER_CALLBACK_REASONS:
        raise TicketError(f"Not a failed transfer: {status!r}.")
    now = now or timezone.now()
    ticket = ticket_create_from_call(call_id=call_id, now=now)
    high = Ticket.Priority.HIGH
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        raised = _rank(ticket.priority) > _rank(high)
        if raised:
            TicketChange.objects.create(ticket=ticket, field="priority", old_value=ticket.priority, new_value=high)
            ticket.priority = high
            ticket.due_at = ticket_sla_due(priority=high, start=ticket.call.started_at if ticket.call else now)
            ticket.save(update_fields=["priority", "due_at", "updated_at"])
        callback = Callback.objects.filter(ticket=ticket).first()
        reason = TRANSFER_CALLBACK_REASONS[status]
        if callback is None:
            callback = Callback.objects.create(
                ticket=ticket,
                phone=ticket.callback_number or (ticket.call.from_number if ticket.call else ""),
                priority=ticket.priority,
                reason=reason,
                due_at=callback_due(ticket.priority, now),
            )
        elif callback.completed_at is None and _rank(callback.priority) > _rank(high):
            callback.priority, callback.reason = high, reason
            callback.due_at = callback_due(high, now)
            callback.save(update_fields=["priority", "reason", "due_at"])
        if raised:
            _ticket_event("ticket.updated", ticket)
        _callback_event(callback)
    logger.info("callback_queued_after_transfer", ticket_id=ticket.pk, call_id=call_id, status=status)
    return callback


# Finished calls older than this are not swept for a missing ticket: the scan
# stays small, and a week-old call is past a useful first response anyway.
TICKET_SWEEP_LOOKBACK = timedelta(days=7)


def ticket_sweep_missing(*, now: datetime | None = None) -> list[Ticket]:
    """Make the ticket of every call in the current schema that ended without one.

    The ticket message of a call that ended while the queue (Redis) was down
    never went out; this finds such calls once they ended
    ``TICKET_SWEEP_GRACE_S`` ago (the message's normal path has had its
    chance) and at most ``TICKET_SWEEP_LOOKBACK`` ago. Calls whose ticket an
    owner deleted are left alone. ``ticket_create_from_call`` locks the call
    and returns an existing ticket, so a sweep racing the message, or another
    sweep, never makes a second one.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.TICKET_SWEEP_GRACE_S)
    call_ids = list(
        Call.objects.filter(
            started_at__gte=now - TICKET_SWEEP_LOOKBACK,
            ended_at__isnull=False,
            ended_at__lte=now - grace,
            ticket__isnull=True,
        ).values_list("pk", flat=True)
    )
    if call_ids:
        deleted = AuditEvent.objects.filter(
            tenant__schema_name=current_schema(), action="ticket.deleted", data__call_id__in=call_ids
        ).values_list("data__call_id", flat=True)
        call_ids = sorted(set(call_ids) - set(deleted))
    tickets = [ticket_create_from_call(call_id=call_id, now=now) for call_id in call_ids]
    if tickets:
        logger.warning("tickets_swept", schema=current_schema(), call_ids=call_ids)
    return tickets


def _subject(reason: str, outcome: dict[str, Any]) -> str:
    if reason:
        return reason[:1].upper() + reason[1:200]
    if outcome.get("faq_answered") and not outcome.get("unanswered_questions"):
        return "General enquiry"
    return "Phone call"


def callback_due(priority: str, start: datetime) -> datetime:
    """When a callback of ``priority`` requested at ``start`` is due (``CALLBACK_DUE``)."""
    hours, business_only = CALLBACK_DUE.get(priority, CALLBACK_DUE[Ticket.Priority.NORMAL])
    return business_profile_current().due(start, hours) if business_only else start + timedelta(hours=hours)


def _faq_answers_link(ticket: Ticket, questions: list[str]) -> None:
    entries = {entry.question: entry for entry in FaqEntry.objects.filter(question__in=questions)}
    FaqAnswer.objects.bulk_create(
        FaqAnswer(ticket=ticket, faq_entry=entries.get(question), question=question[:500]) for question in questions
    )


EDITABLE_FIELDS = frozenset(
    {"subject", "description", "caller_name", "callback_number", "email", "category", "tags", "priority", "status"}
)


def ticket_update(*, ticket_id: int, actor: User | None, now: datetime | None = None, **changes: Any) -> Ticket:
    """Change ticket fields, one audit row per field that really changed.

    Status changes follow ``STATUS_FLOW``. Pending stops the SLA clock; leaving
    pending gives the ticket the business time it had left when it was paused
    (a ticket overdue when paused stays overdue). A new priority gets a new due
    time, counted from the SLA start with the earlier pauses left out. Any move
    of the due time gets one ``due_at`` audit row. Resolving or closing
    completes the ticket's open callback: nobody needs to call back about a
    solved problem. Assignment goes through ``ticket_assign``. ``now`` is the
    clock for pauses, resolutions and completions (default: the current time).
    """
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise TicketError(f"These ticket fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if "subject" in changes:
        changes["subject"] = str(changes["subject"]).strip()[:200]
        if not changes["subject"]:
            raise TicketError("A ticket needs a subject.")
    if "tags" in changes:
        changes["tags"] = tags_normalize(changes["tags"])
    if "priority" in changes and changes["priority"] not in Ticket.Priority.values:
        raise TicketError(f"Unknown priority {changes['priority']!r}.")
    if "status" in changes and changes["status"] not in Ticket.Status.values:
        raise TicketError(f"Unknown status {changes['status']!r}.")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        now = now or timezone.now()
        audit: list[TicketChange] = []
        due_before = ticket.due_at
        ended_pause: tuple[datetime, datetime] | None = None
        closing = False
        # Status first: a priority change in the same request must see a pause it ends.
        for field, new in sorted(changes.items(), key=lambda item: item[0] != "status"):
            old = getattr(ticket, field)
            if old == new:
                continue
            if field == "status":
                closing = new in CLOSED_STATUSES
                ended_pause = _status_apply(ticket, new, now)
                setattr(ticket, field, new)
                audit.append(_change(ticket, actor, field, old, new))
                _due_audit(audit, ticket, actor, due_before)
                continue
            if field == "priority":
                ticket.due_at = _priority_due(ticket, new, ended_pause)
                _due_audit(audit, ticket, actor, due_before)
            setattr(ticket, field, new)
            audit.append(_change(ticket, actor, field, old, new))
        if not audit:
            return ticket
        ticket.save()
        if closing:
            _callback_close(ticket, actor, now, audit)
        TicketChange.objects.bulk_create(audit)
        if actor is not None and any(change.field == "category" for change in audit):
            _category_learn(ticket)
        _ticket_event("ticket.updated", ticket)
    return ticket


def _category_learn(ticket: Ticket) -> None:
    """An agent moved a phone ticket: the caller's words teach the receptionist that category."""
    if ticket.source != Ticket.Source.PHONE or ticket.call_id is None:
        return
    reason = str((ticket.call.captured or {}).get("reason") or "") if ticket.call else ""
    category_example_learn(category=ticket.category, text=reason, ticket_id=ticket.pk)
    if CATEGORY_REVIEW_TAG in ticket.tags:
        ticket.tags = [tag for tag in ticket.tags if tag != CATEGORY_REVIEW_TAG]
        ticket.save(update_fields=["tags"])


def _due_audit(audit: list[TicketChange], ticket: Ticket, actor: User | None, due_before: datetime | None) -> None:
    """Keep one ``due_at`` row for the request, from the due time it started with to the current one."""
    audit[:] = [change for change in audit if change.field != "due_at"]
    if ticket.due_at != due_before:
        audit.append(_change(ticket, actor, "due_at", due_before, ticket.due_at))


def _status_apply(ticket: Ticket, new: str, now: datetime) -> tuple[datetime, datetime] | None:
    """Move ``ticket`` to status ``new`` (not saved); returns the SLA pause this ends, if any."""
    if new not in STATUS_FLOW[ticket.status]:
        raise TicketError(
            f"A {ticket.get_status_display().lower()} ticket cannot become {Ticket.Status(new).label.lower()}."
        )
    ended: tuple[datetime, datetime] | None = None
    if ticket.status == Ticket.Status.PENDING and ticket.sla_paused_at is not None:
        ended = (ticket.sla_paused_at, now)
        if ticket.due_at is not None:
            ticket.due_at = _sla_resume(business_profile_current(), ticket.due_at, *ended)
        ticket.sla_paused_at = None
    if new == Ticket.Status.PENDING:
        ticket.sla_paused_at = now
    if new not in CLOSED_STATUSES:
        ticket.resolved_at = None
    elif ticket.status not in CLOSED_STATUSES:
        # The first resolution counts: closing a resolved ticket keeps when it was solved.
        ticket.resolved_at = now
    return ended


def _sla_resume(profile: BusinessProfile, due: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
    """The due time after a pause: the business time left at ``paused_at``, counted again from ``resumed_at``.

    Business time, not wall-clock time: a weekend inside the pause was never on
    the clock. Nothing left (overdue when paused) keeps the old due time.
    """
    left = profile.hours_between(paused_at, due)
    return profile.due(resumed_at, left) if left > 0 else due


def _priority_due(ticket: Ticket, priority: str, ended_pause: tuple[datetime, datetime] | None) -> datetime | None:
    """The due time for ``priority``: its SLA from the ticket's start, then every pause that is over.

    A pause still running (the ticket stays pending) is accounted for when the
    ticket leaves pending, not here, so it never counts twice.
    """
    profile = business_profile_current()
    hours = profile.sla_hours.get(priority)
    if hours is None:
        return None
    due = profile.due(_sla_start(ticket), float(hours))
    pauses = _sla_pauses(ticket) + ([ended_pause] if ended_pause is not None else [])
    for paused_at, resumed_at in pauses:
        due = _sla_resume(profile, due, paused_at, resumed_at)
    return due


def _sla_start(ticket: Ticket) -> datetime:
    """When the SLA clock started: the call for phone tickets, else the ticket's creation."""
    if ticket.call_id is not None:
        started = Call.objects.filter(pk=ticket.call_id).values_list("started_at", flat=True).first()
        if started is not None:
            return started
    return ticket.created_at


def _sla_pauses(ticket: Ticket) -> list[tuple[datetime, datetime]]:
    """The pauses that are over, as (paused, resumed), oldest first, from the ticket's status audit rows."""
    pauses: list[tuple[datetime, datetime]] = []
    paused_at: datetime | None = None
    rows = TicketChange.objects.filter(ticket=ticket, field="status").order_by("created_at", "id")
    for new, at in rows.values_list("new_value", "created_at"):
        if new == Ticket.Status.PENDING:
            paused_at = paused_at or at
        elif paused_at is not None:
            pauses.append((paused_at, at))
            paused_at = None
    return pauses


def _callback_close(ticket: Ticket, actor: User | None, now: datetime, audit: list[TicketChange]) -> None:
    """Complete the open callback of a ticket that was just resolved or closed, with its audit row and event."""
    callback = Callback.objects.select_for_update().filter(ticket=ticket, completed_at__isnull=True).first()
    if callback is None:
        return
    callback.completed_at = now
    callback.save(update_fields=["completed_at"])
    audit.append(_change(ticket, actor, "callback_completed", "", Ticket.Status(ticket.status).label))
    _callback_event(callback)


def ticket_assign(*, ticket_id: int, actor: User | None, assignee: User | None) -> Ticket:
    """Give the ticket to a member of the business, or to nobody."""
    _assignee_check(assignee)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=ticket_id)
        if ticket.assignee_id == (assignee.pk if assignee else None):
            return ticket
        old = ticket.assignee
        ticket.assignee = assignee
        ticket.save(update_fields=["assignee", "updated_at"])
        _change(ticket, actor, "assignee", old, assignee).save()
        _ticket_event("ticket.updated", ticket)
    return ticket


def ticket_note_add(*, ticket_id: int, actor: User | None, body: str) -> TicketNote:
    """Add an internal note; the activity log shows it."""
    body = body.strip()
    if not body:
        raise TicketError("A note cannot be empty.")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        note = TicketNote.objects.create(ticket=ticket, author=actor, body=body)
        _change(ticket, actor, "note", "", body[:200]).save()
        ticket.save(update_fields=["updated_at"])
        _ticket_event("ticket.updated", ticket)
    return note


def callback_next(*, actor: User) -> Callback | None:
    """Hand ``actor`` the callback to make now: theirs or unassigned, earliest due (overdue) first.

    Callbacks of resolved or closed tickets are not handed out: the problem is solved.

    Rows another agent is claiming at the same moment are skipped, so two
    agents pressing "next" never get the same callback.
    """
    _assignee_check(actor)
    with transaction.atomic():
        callback = (
            Callback.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(completed_at__isnull=True)
            .exclude(ticket__status__in=CLOSED_STATUSES)
            .filter(Q(assignee__isnull=True) | Q(assignee_id=actor.pk))
            .order_by("due_at", "created_at")
            .first()
        )
        if callback is None:
            return None
        if callback.assignee_id != actor.pk:
            callback.assignee = actor
            callback.save(update_fields=["assignee"])
            _change(callback.ticket, actor, "callback_assignee", "", actor).save()
            _callback_event(callback)
    return callback


def _callback_event(callback: Callback) -> None:
    helpdesk_event_publish(
        kind="callback.updated",
        data={"callback_id": callback.pk, "ticket_id": callback.ticket_id, "outcome": callback.outcome},
    )


FINAL_OUTCOMES = frozenset({Callback.Outcome.REACHED, Callback.Outcome.WRONG_NUMBER})


def callback_outcome_log(
    *,
    callback_id: int,
    actor: User | None,
    outcome: str,
    note: str = "",
    reschedule_at: datetime | None = None,
    resolve_ticket: bool = False,
    now: datetime | None = None,
) -> Callback:
    """Log one attempt. Reached or wrong number completes the callback; otherwise
    it stays in the queue, due at ``reschedule_at`` when given. ``resolve_ticket``
    completes the callback and resolves the ticket (through ``ticket_update``,
    with its audit row); it cannot go with a reschedule. ``now`` is the clock
    the attempt is stamped with and a reschedule must lie after (default: the
    current time).
    """
    now = now or timezone.now()
    if outcome not in Callback.Outcome.values or outcome == Callback.Outcome.PENDING:
        raise TicketError(f"Unknown callback outcome {outcome!r}.")
    if reschedule_at is not None:
        if reschedule_at.tzinfo is None:
            raise TicketError("The new callback time needs a time zone.")
        if reschedule_at <= now:
            raise TicketError("A callback can only be rescheduled to a time in the future.")
        if outcome in FINAL_OUTCOMES:
            raise TicketError("A callback that reached the caller or a wrong number cannot be rescheduled.")
        if resolve_ticket:
            # A resolved ticket would leave a callback in the queue that nobody needs.
            raise TicketError("Either reschedule the callback or resolve the ticket, not both.")
    with transaction.atomic():
        # The ticket first, then the callback: the order ``ticket_update`` locks them in.
        ticket_id = Callback.objects.values_list("ticket_id", flat=True).get(pk=callback_id)
        Ticket.objects.select_for_update().filter(pk=ticket_id).first()
        callback = Callback.objects.select_for_update(of=("self",)).select_related("ticket").get(pk=callback_id)
        if callback.completed_at is not None:
            raise TicketError("This callback is already done.")
        audit = _callback_claim(callback, actor)
        CallbackAttempt.objects.create(callback=callback, actor=actor, outcome=outcome, note=note.strip())
        callback.attempts += 1
        callback.outcome = outcome
        callback.last_attempt_at = now
        audit.append(_change(callback.ticket, actor, "callback_outcome", "", Callback.Outcome(outcome).label))
        if outcome in FINAL_OUTCOMES or resolve_ticket:
            callback.completed_at = now
        elif reschedule_at is not None:
            audit.append(_change(callback.ticket, actor, "callback_due_at", callback.due_at, reschedule_at))
            callback.due_at = reschedule_at
        callback.save()
        TicketChange.objects.bulk_create(audit)
        if resolve_ticket and callback.ticket.is_open:
            ticket_update(ticket_id=callback.ticket_id, actor=actor, status=Ticket.Status.RESOLVED, now=now)
        _callback_event(callback)
    return callback


def _callback_claim(callback: Callback, actor: User | None) -> list[TicketChange]:
    """Check ``actor`` may log an attempt on ``callback``; an unassigned callback becomes theirs.

    Someone else's callback is theirs to log, unless the actor is an admin or
    owner of this business. Returns the audit rows of a claim (not saved).
    """
    if actor is None or callback.assignee_id == actor.pk:
        return []
    if callback.assignee_id is not None:
        if not _is_admin(actor):
            raise TicketError("This callback is assigned to someone else; only they or an admin can log an attempt.")
        return []
    _assignee_check(actor)
    callback.assignee = actor
    return [_change(callback.ticket, actor, "callback_assignee", "", actor)]


def _is_admin(user: User) -> bool:
    return Membership.objects.filter(
        user=user,
        tenant__schema_name=current_schema(),
        role__in=(Membership.Role.ADMIN, Membership.Role.OWNER),
    ).exists()


def unanswered_question_to_faq(*, question_id: int, actor: User | None, question: str, answer: str) -> FaqEntry:
    """Answer a caller's question once, for every later caller: it becomes a FAQ entry.

    The entry is made by ``calls.services.faq_entry_create`` (its checks, limits
    and audit event); its ``ValidationError`` (keyed by ``question``/``answer``)
    propagates and nothing is changed. The next call's FAQ index picks the
    entry up. Callers check the actor may edit the FAQ (admins and owners).
    """
    with transaction.atomic():
        unanswered = UnansweredQuestion.objects.select_for_update().get(pk=question_id)
        if unanswered.status != UnansweredQuestion.Status.OPEN:
            raise TicketError("This question has already been handled.")
        entry = faq_entry_create(actor=actor, question=question, answer=answer)
        unanswered.status = UnansweredQuestion.Status.CONVERTED
        unanswered.faq_entry = entry
        unanswered.save(update_fields=["status", "faq_entry"])
        if unanswered.ticket_id is not None:
            TicketChange.objects.create(
                ticket_id=unanswered.ticket_id, actor=actor, field="faq_added", new_value=entry.question
            )
    logger.info("unanswered_question_converted", question_id=question_id, faq_id=entry.pk)
    return entry


def unanswered_question_dismiss(*, question_id: int, actor: User | None) -> UnansweredQuestion:
    """Take a question off the list without adding it to the FAQ."""
    with transaction.atomic():
        unanswered = UnansweredQuestion.objects.select_for_update().get(pk=question_id)
        if unanswered.status != UnansweredQuestion.Status.OPEN:
            raise TicketError("This question has already been handled.")
        unanswered.status = UnansweredQuestion.Status.DISMISSED
        unanswered.save(update_fields=["status"])
        if unanswered.ticket_id is not None:
            TicketChange.objects.create(
                ticket_id=unanswered.ticket_id, actor=actor, field="faq_dismissed", new_value=unanswered.question[:200]
            )
    return unanswered
