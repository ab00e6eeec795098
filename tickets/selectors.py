"""Reads for tickets, callbacks and unanswered questions. The tenant's schema must be active.

Every list here runs a fixed number of queries, whatever the number of rows:
related rows the pages show are joined (``select_related``) or prefetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from django.db.models import Case, F, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.db.models.expressions import OrderBy
from django.utils import timezone

from calls.models import AgentConfig, Call, Utterance
from tenants.models import Membership, Tenant, User
from tickets.models import (
    CLOSED_STATUSES,
    Callback,
    CallbackAttempt,
    FaqAnswer,
    Ticket,
    TicketChange,
    TicketNote,
    UnansweredQuestion,
)
from voicedesk.core.timefmt import offset_label

OPEN_STATUSES: tuple[str, ...] = tuple(s for s in Ticket.Status.values if s not in CLOSED_STATUSES)
PAGE_SIZE = 25

# Sort keys offered to people, and the columns behind them. The id breaks ties
# so that paging through equal timestamps never repeats or skips a ticket.
TICKET_SORTS: dict[str, tuple[str, ...]] = {
    "created": ("created_at", "id"),
    "updated": ("updated_at", "id"),
    "due": ("due_at", "id"),
    "priority": ("priority_rank", "-created_at", "-id"),
    "number": ("id",),
}
PRIORITY_RANK = {
    Ticket.Priority.URGENT: 0,
    Ticket.Priority.HIGH: 1,
    Ticket.Priority.NORMAL: 2,
    Ticket.Priority.LOW: 3,
}
_NUMBER = re.compile(r"^\s*(?:t\s*-?\s*)?#?(\d{1,18})\s*$", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[\d\s()+.\-]+$")


def tenant_members(*, tenant: Tenant) -> list[User]:
    """The people who can be given tickets and callbacks, by email."""
    return [
        membership.user
        for membership in Membership.objects.filter(tenant=tenant, user__is_active=True)
        .select_related("user")
        .order_by("user__email")
    ]


def ticket_categories() -> list[str]:
    """Categories for the filter: the agent's configured ones and any used on a ticket."""
    configured = AgentConfig.objects.values_list("categories", flat=True).first() or []
    used = Ticket.objects.order_by().values_list("category", flat=True).distinct()
    return sorted({str(c) for c in configured} | {c for c in used if c})


# --- Inbox -------------------------------------------------------------------------------------------------------

AssigneeFilter = Literal["", "me", "none"] | int


@dataclass(frozen=True)
class TicketFilters:
    """What the inbox (or the API) asks for. Empty values do not filter.

    ``statuses`` empty means any status. ``assignee`` is ``""`` (anyone),
    ``"me"`` (the actor), ``"none"`` (unassigned) or a user id.
    ``created_from``/``created_before`` are aware datetimes, the second exclusive.
    ``sort`` is a key of ``TICKET_SORTS``, with ``-`` for descending.
    """

    statuses: tuple[str, ...] = OPEN_STATUSES
    priority: str = ""
    category: str = ""
    assignee: AssigneeFilter = ""
    created_from: datetime | None = None
    created_before: datetime | None = None
    overdue: bool = False
    q: str = ""
    sort: str = "-created"
    tags: tuple[str, ...] = field(default=())


def ticket_list(*, actor: User, filters: TicketFilters | None = None) -> QuerySet[Ticket]:
    """Tickets matching ``filters``, sorted, with their assignee joined: one query to read, one to count."""
    filters = filters or TicketFilters()
    tickets = Ticket.objects.select_related("assignee")
    if filters.statuses:
        tickets = tickets.filter(status__in=filters.statuses)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.category:
        tickets = tickets.filter(category=filters.category)
    if filters.tags:
        tickets = tickets.filter(tags__contains=list(filters.tags))
    if filters.assignee == "me":
        tickets = tickets.filter(assignee_id=actor.pk)
    elif filters.assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    elif isinstance(filters.assignee, int):
        tickets = tickets.filter(assignee_id=filters.assignee)
    if filters.created_from is not None:
        tickets = tickets.filter(created_at__gte=filters.created_from)
    if filters.created_before is not None:
        tickets = tickets.filter(created_at__lt=filters.created_before)
    if filters.overdue:
        tickets = tickets.filter(ticket_overdue_q())
    if filters.q.strip():
        tickets = tickets.filter(ticket_search_q(filters.q))
    return ticket_sort(tickets, filters.sort)


def ticket_overdue_q(now: datetime | None = None) -> Q:
    """Open, not paused, and past the SLA due time (the same rule as ``Ticket.is_overdue``)."""
    return Q(due_at__lt=now or timezone.now(), sla_paused_at__isnull=True) & ~Q(status__in=CLOSED_STATUSES)


def ticket_search_q(text: str) -> Q:
    """The filter for a search box: tickets whose number, subject, caller name, phone, email or summary match ``text``.

    Text matches case-insensitively anywhere in those fields. ``T-123``,
    ``t123``, ``#123`` or ``123`` also find ticket T-123. A phone number
    however typed (``(555) 201-3344``, ``555.201.3344``) finds tickets whose
    callback number or call's caller ID contain its digits (stored in E.164).
    Blank text matches every ticket. Used by the inbox and the REST API.
    """
    text = " ".join(text.split())[:200]
    if not text:
        return Q()
    query = (
        Q(subject__icontains=text)
        | Q(caller_name__icontains=text)
        | Q(email__icontains=text)
        | Q(summary__icontains=text)
        | Q(callback_number__icontains=text)
    )
    number = _NUMBER.match(text)
    if number is not None:
        query |= Q(pk=int(number.group(1)))
    digits = re.sub(r"\D", "", text)
    # "(555) 201-3344" finds "+15552013344": phone numbers are stored in E.164.
    if _PHONE_CHARS.match(text) and len(digits) >= 3:
        query |= Q(callback_number__contains=digits) | Q(call__from_number__contains=digits)
    return query


def ticket_priority_rank() -> Case:
    """An expression ranking tickets by priority, most pressing first: urgent 0, high 1, normal 2, low 3.

    Annotate with it and sort ascending for "urgent first" (the inbox's
    ``priority`` sort); descending for "low first". Unknown values rank last.
    Used by the inbox and the REST API, so both order priorities alike.
    """
    return Case(
        *(When(priority=value, then=Value(rank)) for value, rank in PRIORITY_RANK.items()),
        default=Value(len(PRIORITY_RANK)),
        output_field=IntegerField(),
    )


def ticket_sort(tickets: QuerySet[Ticket], sort: str) -> QuerySet[Ticket]:
    """Order by a key of ``TICKET_SORTS`` (``-`` prefix: descending); unknown keys sort newest first."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in TICKET_SORTS:
        key, descending = "created", True
    if key == "priority":
        tickets = tickets.annotate(priority_rank=ticket_priority_rank())
    order: list[OrderBy] = []
    for column in TICKET_SORTS[key]:
        name = column.lstrip("-")
        flip = column.startswith("-") != descending
        if name == "due_at":
            # Tickets without a due time go last either way.
            order.append(F(name).desc(nulls_last=True) if flip else F(name).asc(nulls_last=True))
        else:
            # Default NULLS placement, or the (status, -created_at) index cannot serve the order.
            order.append(F(name).desc() if flip else F(name).asc())
    return tickets.order_by(*order)


# --- One ticket --------------------------------------------------------------------------------------------------


def ticket_get(*, ticket_id: int) -> Ticket:
    """The ticket with its call, assignee and callback joined; ``Ticket.DoesNotExist`` if missing."""
    return Ticket.objects.select_related("assignee", "call", "callback", "callback__assignee").get(pk=ticket_id)


@dataclass(frozen=True)
class TranscriptLine:
    """One utterance of the call, with its offset as ``mm:ss`` for the reader and in seconds for the player."""

    speaker: str
    speaker_label: str
    text: str
    start_s: float
    clock: str
    interrupted: bool


def ticket_transcript(*, call: Call | None) -> list[TranscriptLine]:
    """What was said on the call, in order."""
    if call is None:
        return []
    return [
        TranscriptLine(
            speaker=u.speaker,
            speaker_label=u.get_speaker_display(),
            text=u.text,
            start_s=u.start_s,
            clock=offset_label(u.start_s),
            interrupted=u.interrupted,
        )
        for u in Utterance.objects.filter(call=call).order_by("start_s", "id")
    ]


def ticket_faq_answers(*, ticket: Ticket) -> list[FaqAnswer]:
    """The questions the agent answered from the FAQ on the call, with the entries that still exist."""
    return list(FaqAnswer.objects.filter(ticket=ticket).select_related("faq_entry").order_by("id"))


@dataclass(frozen=True)
class ActivityEntry:
    """One line of a ticket's activity log, worded for people."""

    at: datetime
    actor: str
    text: str
    kind: Literal["change", "note"]
    body: str = ""


FIELD_LABELS = {
    "subject": "Subject",
    "description": "Description",
    "caller_name": "Caller name",
    "callback_number": "Phone",
    "email": "Email",
    "category": "Category",
    "tags": "Tags",
    "priority": "Priority",
    "status": "Status",
    "due_at": "SLA due",
    "assignee": "Assignee",
}


def _actor_label(user: User | None) -> str:
    return user.email if user is not None else "System"


def _when(value: str, zone: ZoneInfo) -> str:
    if not value:
        return "none"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone(zone).strftime("%a %d %b %Y %H:%M")


def _label(field_name: str, value: str, zone: ZoneInfo) -> str:
    if field_name == "status" and value in Ticket.Status.values:
        return str(Ticket.Status(value).label)
    if field_name == "priority" and value in Ticket.Priority.values:
        return str(Ticket.Priority(value).label)
    if field_name == "due_at":
        return _when(value, zone)
    return value or "none"


def change_describe(change: TicketChange, zone: ZoneInfo) -> str:
    """Human wording of an audit row, e.g. ``Status: New → Open``."""
    old, new = change.old_value, change.new_value
    match change.field:
        case "created":
            return f"Ticket created ({_label('status', new, zone)})"
        case "assignee":
            return f"Assigned to {new}" if new else f"Unassigned (was {old})"
        case "callback_assignee":
            return f"Callback taken by {new}"
        case "callback_outcome":
            return f"Callback attempt: {new}"
        case "callback_completed":
            return f"Callback no longer needed: ticket {new.lower()}" if new else "Callback no longer needed"
        case "callback_due_at":
            return f"Callback rescheduled: {_when(old, zone)} → {_when(new, zone)}"
        case "faq_added":
            return f"Question added to the FAQ: {new}"
        case "faq_dismissed":
            return f"Question dismissed: {new}"
        case "note":
            return "Note added"
    label = FIELD_LABELS.get(change.field, change.field.replace("_", " ").capitalize())
    return f"{label}: {_label(change.field, old, zone)} → {_label(change.field, new, zone)}"


def ticket_activity(*, ticket: Ticket, zone: ZoneInfo | None = None) -> list[ActivityEntry]:
    """Audit rows and internal notes merged in time order, oldest first (two queries).

    A note's audit row is left out: the note itself is shown, in full.
    """
    zone = zone or ZoneInfo("UTC")
    changes = TicketChange.objects.filter(ticket=ticket).exclude(field="note").select_related("actor")
    notes = TicketNote.objects.filter(ticket=ticket).select_related("author")
    entries = [
        (c.created_at, 0, c.pk, ActivityEntry(c.created_at, _actor_label(c.actor), change_describe(c, zone), "change"))
        for c in changes
    ] + [
        (n.created_at, 1, n.pk, ActivityEntry(n.created_at, _actor_label(n.author), "Internal note", "note", n.body))
        for n in notes
    ]
    return [entry for *_, entry in sorted(entries, key=lambda row: row[:3])]


# --- Callbacks ---------------------------------------------------------------------------------------------------

CallbackFilter = Literal["all", "mine", "unassigned", "overdue"]
CALLBACK_FILTERS: tuple[CallbackFilter, ...] = ("all", "mine", "unassigned", "overdue")


def callbacks_waiting() -> QuerySet[Callback]:
    """Callbacks still to make: not done, and their ticket not resolved or closed."""
    return Callback.objects.filter(completed_at__isnull=True).exclude(ticket__status__in=CLOSED_STATUSES)


def callback_queue(*, actor: User, show: str = "all") -> QuerySet[Callback]:
    """Callbacks still to make, earliest due first (overdue ones lead), with ticket and assignee joined."""
    callbacks = (
        callbacks_waiting()
        .select_related("ticket", "assignee")
        .order_by(F("due_at").asc(nulls_last=True), "created_at", "id")
    )
    if show == "mine":
        callbacks = callbacks.filter(assignee_id=actor.pk)
    elif show == "unassigned":
        callbacks = callbacks.filter(assignee__isnull=True)
    elif show == "overdue":
        callbacks = callbacks.filter(due_at__lt=timezone.now())
    return callbacks


def callbacks_recently_done(*, limit: int = 10) -> list[Callback]:
    """The last callbacks the queue finished, newest first."""
    return list(
        Callback.objects.filter(completed_at__isnull=False)
        .select_related("ticket", "assignee")
        .order_by("-completed_at", "-id")[:limit]
    )


def callback_get(*, callback_id: int) -> Callback:
    """A callback with its ticket, assignee and attempts (with their actors); ``DoesNotExist`` if missing."""
    return (
        Callback.objects.select_related("ticket", "ticket__call", "assignee")
        .prefetch_related(
            Prefetch("attempt_log", queryset=CallbackAttempt.objects.select_related("actor").order_by("created_at"))
        )
        .get(pk=callback_id)
    )


# --- Unanswered questions ----------------------------------------------------------------------------------------


def unanswered_question_list() -> QuerySet[UnansweredQuestion]:
    """Open questions, newest first, with the ticket and call they came from."""
    return (
        UnansweredQuestion.objects.filter(status=UnansweredQuestion.Status.OPEN)
        .select_related("ticket", "call")
        .order_by("-created_at", "-id")
    )


def unanswered_question_get(*, question_id: int) -> UnansweredQuestion:
    """One question, whatever its status, with its ticket and call joined; ``DoesNotExist`` if missing."""
    return UnansweredQuestion.objects.select_related("ticket", "call").get(pk=question_id)


def ticket_unanswered_questions(*, ticket: Ticket) -> list[UnansweredQuestion]:
    """The questions of ``ticket``'s call the FAQ could not answer, in the order they were asked, any status."""
    return list(UnansweredQuestion.objects.filter(ticket=ticket).order_by("created_at", "id"))
