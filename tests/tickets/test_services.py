import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, Call, CategoryExample, FaqEntry
from calls.services import call_finish
from tenants.models import AuditEvent, User
from tests.factories import (
    CallbackFactory,
    CallFactory,
    MembershipFactory,
    TicketFactory,
    UnansweredQuestionFactory,
    UserFactory,
    outcome,
)
from tickets.models import STATUS_FLOW, Callback, CallbackAttempt, Ticket, TicketChange, TicketNote, UnansweredQuestion
from tickets.services import (
    CATEGORY_REVIEW_TAG,
    TicketError,
    callback_next,
    callback_outcome_log,
    tags_normalize,
    ticket_assign,
    ticket_create,
    ticket_create_from_call,
    ticket_note_add,
    ticket_update,
    unanswered_question_dismiss,
    unanswered_question_to_faq,
)
from voicedesk.core.events import helpdesk_group_name

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


# --- Shared helpers for the service tests below ------------------------------------------------------------------


class HeardEvents:
    """What a dashboard of tenant A hears: the real channel layer (Redis), after commit.

    The test runs inside a transaction that is never committed, so reading
    first runs the on-commit callbacks registered so far (those of rolled-back
    savepoints are already gone, as on a real commit), then drains a channel
    in the tenant's group. Redis orders messages by send time, so events sent
    under a frozen clock (time_machine) come in no particular order.
    """

    def __init__(self) -> None:
        self.channel = f"helpdesk-listener-{uuid.uuid4().hex}"
        self.group = helpdesk_group_name("alpha")
        self._ran = 0
        self._heard: list[tuple[str, dict[str, Any]]] = []

    def _drain(self) -> list[tuple[str, dict[str, Any]]]:
        # Each call gets its own event loop, and a layer's buffers belong to
        # one loop: a fresh layer per read, on a plain (not process-bound) channel.
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        # Joined here, not at set-up: the group's membership is stamped with the
        # clock, which a test may have moved since.
        async_to_sync(layer.group_add)(self.group, self.channel)
        pending = connection.run_on_commit[self._ran :]
        self._ran = len(connection.run_on_commit)
        for _, callback, _ in pending:
            callback()

        async def receive_all() -> None:
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(self.channel), timeout=0.1)
                except TimeoutError:
                    break
                event = dict(message["event"])
                self._heard.append((event.pop("kind"), event))
            await layer.group_discard(self.group, self.channel)
            await layer.close_pools()

        async_to_sync(receive_all)()
        return self._heard

    def __eq__(self, other: object) -> bool:
        return self._drain() == other

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(self._drain())

    def __getitem__(self, index: int) -> tuple[str, dict[str, Any]]:
        return self._drain()[index]


@pytest.fixture
def events(in_tenant_a) -> HeardEvents:
    """The live events the services send, in order, as tenant A's dashboards receive them."""
    return HeardEvents()


@pytest.fixture
def agent(tenant_a) -> User:
    return MembershipFactory(tenant=tenant_a.tenant, role="agent", user__email="agent@alpha.test").user


def _audit(ticket: Ticket) -> list[tuple[str | None, str, str, str]]:
    return [
        (change.actor.email if change.actor else None, change.field, change.old_value, change.new_value)
        for change in TicketChange.objects.filter(ticket=ticket).select_related("actor").order_by("id")
    ]


def _at(hour: int, minute: int = 0, day: int = 25) -> datetime:
    return datetime(2030, 11, day, hour, minute, tzinfo=UTC)


# --- ticket_create -----------------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
def test_ticket_create_sets_the_sla_and_writes_the_audit_row(in_tenant_a, agent, events) -> None:
    ticket = ticket_create(
        actor=in_tenant_a.owner,
        subject="  Boiler makes a noise  ",
        caller_name="Ann Lee",
        email="ann@example.com",
        tags=[" VIP ", "vip", "Repeat  caller"],
        priority="high",
        assignee=agent,
    )

    ticket.refresh_from_db()
    assert (ticket.subject, ticket.category, ticket.tags, ticket.source, ticket.status) == (
        "Boiler makes a noise",
        "general",
        ["vip", "repeat caller"],
        "web",
        "new",
    )
    assert ticket.assignee == agent
    # High: 8 business hours, 7 on Monday and 1 on Tuesday.
    assert ticket.due_at == _at(10, day=26)
    assert _audit(ticket) == [("owner@alpha.test", "created", "", "new")]
    assert events == [
        (
            "ticket.created",
            {
                "ticket_id": ticket.pk,
                "number": f"T-{ticket.pk}",
                "subject": "Boiler makes a noise",
                "status": "new",
                "priority": "high",
            },
        )
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": "   "}, "A ticket needs a subject."),
        ({"subject": "Noise", "priority": "whenever"}, "Unknown priority 'whenever'."),
        ({"subject": "Noise", "source": "fax"}, "Unknown source 'fax'."),
        ({"subject": "Noise", "tags": ["x" * 51]}, "Tags can be at most 50 characters long."),
    ],
)
def test_ticket_create_refuses_bad_input(in_tenant_a, events, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TicketError) as error:
        ticket_create(actor=in_tenant_a.owner, **kwargs)

    assert str(error.value) == message
    assert (Ticket.objects.count(), TicketChange.objects.count(), events) == (0, 0, [])


def test_ticket_create_refuses_an_assignee_of_another_business(in_tenant_a, tenant_b, events) -> None:
    with pytest.raises(TicketError, match=r"^The assignee must be a member of this business\.$"):
        ticket_create(actor=in_tenant_a.owner, subject="Noise", assignee=tenant_b.owner)

    assert (Ticket.objects.count(), events) == (0, [])


def test_tags_normalize_trims_lowercases_and_deduplicates() -> None:
    assert tags_normalize(["  Hot  Water ", "hot water", "", "VIP", " "]) == ["hot water", "vip"]


# --- ticket_update: status flow ----------------------------------------------------------------------------------

TRANSITIONS = [(old, new) for old in Ticket.Status.values for new in Ticket.Status.values if old != new]


@pytest.mark.parametrize(("old", "new"), TRANSITIONS)
def test_status_changes_follow_the_flow(in_tenant_a, events, old: str, new: str) -> None:
    ticket = TicketFactory(status=old)

    if new in STATUS_FLOW[old]:
        updated = ticket_update(ticket_id=ticket.pk, actor=in_tenant_a.owner, status=new)
        assert Ticket.objects.get(pk=ticket.pk).status == updated.status == new
        assert _audit(ticket) == [("owner@alpha.test", "status", old, new)]
        assert [kind for kind, _ in events] == ["ticket.updated"]
    else:
        with pytest.raises(TicketError) as error:
            ticket_update(ticket_id=ticket.pk, actor=in_tenant_a.owner, status=new)
        old_label, new_label = Ticket.Status(old).label.lower(), Ticket.Status(new).label.lower()
        assert str(error.value) == f"A {old_label} ticket cannot become {new_label}."
        assert Ticket.objects.get(pk=ticket.pk).status == old
        assert (_audit(ticket), events) == ([], [])


def test_closed_is_final_and_open_to_closed_is_allowed() -> None:
    # The table itself, as the help desk promises it.
    assert STATUS_FLOW["closed"] == frozenset()
    assert STATUS_FLOW["new"] == {"open", "pending", "resolved", "closed"}
    assert STATUS_FLOW["resolved"] == {"open", "closed"}


def test_resolving_sets_resolved_at_and_reopening_clears_it(in_tenant_a) -> None:
    ticket = TicketFactory(status="open")

    with time_machine.travel(MONDAY_10, tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="resolved")
    assert Ticket.objects.get(pk=ticket.pk).resolved_at == MONDAY_10

    ticket_update(ticket_id=ticket.pk, actor=None, status="open")
    assert Ticket.objects.get(pk=ticket.pk).resolved_at is None
    assert [(a, f, o, n) for a, f, o, n in _audit(ticket)] == [
        (None, "status", "open", "resolved"),
        (None, "status", "resolved", "open"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "archived"}, "Unknown status 'archived'."),
        ({"priority": "asap"}, "Unknown priority 'asap'."),
        ({"subject": "  "}, "A ticket needs a subject."),
        ({"assignee": 1}, "These ticket fields cannot be changed here: assignee."),
        ({"due_at": None, "call": None}, "These ticket fields cannot be changed here: call, due_at."),
        ({"tags": ["ok", "y" * 60]}, "Tags can be at most 50 characters long."),
    ],
)
def test_ticket_update_refuses_bad_changes(in_tenant_a, events, changes: dict[str, Any], message: str) -> None:
    ticket = TicketFactory(subject="Leak", status="new", priority="normal")
    before = Ticket.objects.values().get(pk=ticket.pk)

    with pytest.raises(TicketError) as error:
        ticket_update(ticket_id=ticket.pk, actor=in_tenant_a.owner, **changes)

    assert str(error.value) == message
    assert Ticket.objects.values().get(pk=ticket.pk) == before
    assert (_audit(ticket), events) == ([], [])


def test_a_refused_status_rolls_back_the_other_changes_of_the_request(in_tenant_a) -> None:
    ticket = TicketFactory(subject="Leak", status="closed")

    with pytest.raises(TicketError):
        ticket_update(ticket_id=ticket.pk, actor=None, subject="Flood", status="open")

    assert Ticket.objects.get(pk=ticket.pk).subject == "Leak"
    assert _audit(ticket) == []


def test_ticket_update_of_a_missing_ticket_raises_does_not_exist(in_tenant_a) -> None:
    with pytest.raises(Ticket.DoesNotExist):
        ticket_update(ticket_id=987654, actor=None, status="open")


# --- ticket_update: audit rows -----------------------------------------------------------------------------------


def test_one_audit_row_per_changed_field_with_actor_old_and_new(in_tenant_a, agent, events) -> None:
    ticket = TicketFactory(subject="Leak", category="leak", tags=["vip"], caller_name="Ann", email="")

    ticket_update(
        ticket_id=ticket.pk,
        actor=agent,
        subject="Leak under sink",
        category="leak",  # unchanged: no row
        tags=["VIP", "Landlord"],
        caller_name="Ann",  # unchanged
        email="ann@example.com",
    )

    ticket.refresh_from_db()
    assert (ticket.subject, ticket.tags, ticket.email) == ("Leak under sink", ["vip", "landlord"], "ann@example.com")
    assert _audit(ticket) == [
        ("agent@alpha.test", "subject", "Leak", "Leak under sink"),
        ("agent@alpha.test", "tags", "vip", "vip, landlord"),
        ("agent@alpha.test", "email", "", "ann@example.com"),
    ]
    assert events == [
        (
            "ticket.updated",
            {
                "ticket_id": ticket.pk,
                "number": ticket.number,
                "subject": "Leak under sink",
                "status": "new",
                "priority": "normal",
            },
        )
    ]


def test_no_audit_row_and_no_save_when_nothing_changed(in_tenant_a, events) -> None:
    ticket = TicketFactory(subject="Leak", tags=["vip"], status="open")
    updated_at = Ticket.objects.get(pk=ticket.pk).updated_at

    ticket_update(ticket_id=ticket.pk, actor=in_tenant_a.owner, subject=" Leak ", tags=["VIP"], status="open")

    assert Ticket.objects.get(pk=ticket.pk).updated_at == updated_at
    assert (_audit(ticket), events) == ([], [])


# --- ticket_update: SLA ------------------------------------------------------------------------------------------


def _ticket_at_monday_10(priority: str = "normal") -> Ticket:
    with time_machine.travel(MONDAY_10, tick=False):
        return ticket_create(actor=None, subject="Leak", priority=priority)


def test_pending_pauses_the_sla_and_leaving_pending_moves_due_by_the_pause(in_tenant_a) -> None:
    ticket = _ticket_at_monday_10()
    assert ticket.due_at == _at(10, day=28)  # 24 business hours: Thursday 10:00

    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="pending")
    paused = Ticket.objects.get(pk=ticket.pk)
    assert (paused.sla_paused_at, paused.due_at) == (_at(11), _at(10, day=28))
    # A paused ticket is never overdue, even long past its due time.
    with time_machine.travel(_at(12, day=29), tick=False):
        assert paused.is_overdue is False

    with time_machine.travel(_at(14), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="open")
    resumed = Ticket.objects.get(pk=ticket.pk)
    assert (resumed.sla_paused_at, resumed.due_at) == (None, _at(13, day=28))


def test_pending_straight_to_resolved_also_ends_the_pause(in_tenant_a) -> None:
    ticket = _ticket_at_monday_10()
    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="pending")
    with time_machine.travel(_at(12), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="resolved")

    ticket.refresh_from_db()
    assert (ticket.sla_paused_at, ticket.due_at, ticket.resolved_at) == (None, _at(11, day=28), _at(12))


def test_priority_change_recomputes_due_and_writes_both_audit_rows(in_tenant_a, agent) -> None:
    ticket = _ticket_at_monday_10()

    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=agent, priority="urgent")

    ticket.refresh_from_db()
    assert ticket.due_at == _at(12)  # 2 business hours from the ticket's start
    assert _audit(ticket) == [
        (None, "created", "", "new"),
        ("agent@alpha.test", "due_at", "2030-11-28T10:00:00+00:00", "2030-11-25T12:00:00+00:00"),
        ("agent@alpha.test", "priority", "normal", "urgent"),
    ]


@pytest.mark.parametrize(
    ("priority", "due"),
    [
        ("high", datetime(2030, 11, 26, 10, 0, tzinfo=UTC)),  # 8 h: Tuesday 10:00
        ("low", datetime(2030, 12, 2, 10, 0, tzinfo=UTC)),  # 40 h: next Monday 10:00
        ("normal", datetime(2030, 11, 28, 10, 0, tzinfo=UTC)),  # unchanged: no new due time
    ],
)
def test_priority_due_times_follow_the_default_sla_hours(in_tenant_a, priority: str, due: datetime) -> None:
    ticket = _ticket_at_monday_10()

    ticket_update(ticket_id=ticket.pk, actor=None, priority=priority)

    assert Ticket.objects.get(pk=ticket.pk).due_at == due


def test_priority_change_keeps_the_time_of_earlier_pauses(in_tenant_a) -> None:
    ticket = _ticket_at_monday_10()
    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="pending")
    with time_machine.travel(_at(14), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="open")

    with time_machine.travel(_at(15), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="high")

    # High is due Tuesday 10:00; the three hours pending on Monday still count.
    assert Ticket.objects.get(pk=ticket.pk).due_at == _at(13, day=26)


def test_priority_change_while_pending_does_not_count_the_pause_twice(in_tenant_a) -> None:
    ticket = _ticket_at_monday_10()
    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="pending")
    with time_machine.travel(_at(12), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="urgent")
    assert Ticket.objects.get(pk=ticket.pk).due_at == _at(12)

    with time_machine.travel(_at(13), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="open")

    # Urgent: due 12:00, moved by the two hours pending (11:00-13:00).
    assert Ticket.objects.get(pk=ticket.pk).due_at == _at(14)


def test_leaving_pending_and_changing_priority_at_once_counts_the_pause(in_tenant_a) -> None:
    ticket = _ticket_at_monday_10()
    with time_machine.travel(_at(11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, status="pending")

    with time_machine.travel(_at(13), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="urgent", status="open")

    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.sla_paused_at, ticket.due_at) == ("open", "urgent", None, _at(14))


@time_machine.travel(MONDAY_10, tick=False)
def test_phone_ticket_sla_starts_when_the_call_started(in_tenant_a) -> None:
    call = CallFactory(captured=outcome(callback_requested=False))
    Call.objects.filter(pk=call.pk).update(started_at=_at(9, 30))
    ticket = ticket_create_from_call(call_id=call.pk)
    assert ticket.due_at == _at(9, 30, day=28)

    ticket_update(ticket_id=ticket.pk, actor=None, priority="urgent")

    assert Ticket.objects.get(pk=ticket.pk).due_at == _at(11, 30)


# --- ticket_assign -----------------------------------------------------------------------------------------------


def test_ticket_assign_to_a_member_and_back_to_nobody(in_tenant_a, agent, events) -> None:
    ticket = TicketFactory()

    ticket_assign(ticket_id=ticket.pk, actor=in_tenant_a.owner, assignee=agent)
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == agent.pk
    ticket_assign(ticket_id=ticket.pk, actor=in_tenant_a.owner, assignee=agent)  # no change, no row
    ticket_assign(ticket_id=ticket.pk, actor=agent, assignee=None)

    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    assert _audit(ticket) == [
        ("owner@alpha.test", "assignee", "", "agent@alpha.test"),
        ("agent@alpha.test", "assignee", "agent@alpha.test", ""),
    ]
    assert [kind for kind, _ in events] == ["ticket.updated", "ticket.updated"]


@pytest.mark.parametrize("stranger", ["tenant_b_owner", "no_membership"])
def test_ticket_assign_refuses_people_outside_the_business(in_tenant_a, tenant_b, agent, events, stranger) -> None:
    ticket = TicketFactory(assignee=agent)
    user = tenant_b.owner if stranger == "tenant_b_owner" else UserFactory(email="loner@example.test")

    with pytest.raises(TicketError, match=r"^The assignee must be a member of this business\.$"):
        ticket_assign(ticket_id=ticket.pk, actor=in_tenant_a.owner, assignee=user)

    assert Ticket.objects.get(pk=ticket.pk).assignee_id == agent.pk
    assert (_audit(ticket), events) == ([], [])


# --- ticket_note_add ---------------------------------------------------------------------------------------------


def test_ticket_note_add_keeps_the_note_and_an_audit_row(in_tenant_a, agent, events) -> None:
    ticket = TicketFactory()

    note = ticket_note_add(ticket_id=ticket.pk, actor=agent, body="  Landlord will call back.  ")

    assert list(TicketNote.objects.filter(ticket=ticket).values_list("author_id", "body")) == [
        (agent.pk, "Landlord will call back.")
    ]
    assert note.body == "Landlord will call back."
    assert _audit(ticket) == [("agent@alpha.test", "note", "", "Landlord will call back.")]
    assert [kind for kind, _ in events] == ["ticket.updated"]


def test_ticket_note_add_refuses_an_empty_note(in_tenant_a, events) -> None:
    ticket = TicketFactory()

    with pytest.raises(TicketError, match=r"^A note cannot be empty\.$"):
        ticket_note_add(ticket_id=ticket.pk, actor=None, body=" \n ")

    assert (TicketNote.objects.count(), _audit(ticket), events) == (0, [], [])


# --- callback_next -----------------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
def test_callback_next_prefers_the_earliest_due_of_mine_or_unassigned(in_tenant_a, agent, events) -> None:
    other = MembershipFactory(tenant=in_tenant_a.tenant, user__email="other@alpha.test").user
    CallbackFactory(due_at=_at(8), assignee=other)  # someone else's
    CallbackFactory(due_at=_at(7), completed_at=_at(9))  # done
    later = CallbackFactory(due_at=_at(12))
    overdue = CallbackFactory(due_at=_at(9))
    undated = CallbackFactory(due_at=None)

    first = callback_next(actor=agent)

    assert first is not None
    assert first.pk == overdue.pk
    assert Callback.objects.get(pk=overdue.pk).assignee_id == agent.pk
    assert _audit(overdue.ticket) == [("agent@alpha.test", "callback_assignee", "", "agent@alpha.test")]
    assert events == [("callback.updated", {"callback_id": overdue.pk, "ticket_id": overdue.ticket_id, "outcome": ""})]
    # The agent's own callback stays theirs until done: asking again hands it back, with no new row.
    assert callback_next(actor=agent).pk == overdue.pk
    assert len(_audit(overdue.ticket)) == 1
    # Another agent gets the next one; nobody is given someone else's callback.
    assert callback_next(actor=in_tenant_a.owner).pk == later.pk
    Callback.objects.filter(pk__in=[overdue.pk, later.pk]).update(completed_at=_at(10))
    assert callback_next(actor=agent).pk == undated.pk
    Callback.objects.filter(pk=undated.pk).update(completed_at=_at(10))
    assert callback_next(actor=agent) is None


@pytest.mark.django_db(transaction=True)
def test_two_agents_pressing_next_at_once_never_get_the_same_callback(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        second_agent = MembershipFactory(tenant=tenant_a.tenant, user__email="second@alpha.test").user
        first = CallbackFactory(due_at=timezone.now() - timedelta(hours=1))
        second = CallbackFactory(due_at=timezone.now() + timedelta(hours=1))
    handed: dict[str, int | None] = {}

    def press_next_in_another_session() -> None:
        try:
            with tenant_context(tenant_a.tenant):
                callback = callback_next(actor=second_agent)
                handed["second"] = callback.pk if callback else None
        finally:
            connection.close()

    with tenant_context(tenant_a.tenant), transaction.atomic():
        mine = callback_next(actor=tenant_a.owner)
        # The first agent's claim is not committed yet: the row is still locked.
        other = threading.Thread(target=press_next_in_another_session)
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "the second agent waited for the first one's lock"

    assert (mine.pk if mine else None, handed["second"]) == (first.pk, second.pk)
    with tenant_context(tenant_a.tenant):
        assert dict(Callback.objects.values_list("pk", "assignee_id")) == {
            first.pk: tenant_a.owner.pk,
            second.pk: second_agent.pk,
        }


def test_callback_next_refuses_someone_outside_the_business(in_tenant_a, tenant_b) -> None:
    callback = CallbackFactory()

    with pytest.raises(TicketError):
        callback_next(actor=tenant_b.owner)

    assert Callback.objects.get(pk=callback.pk).assignee_id is None


# --- callback_outcome_log ----------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize("outcome_value", ["reached", "wrong_number"])
def test_final_outcomes_complete_the_callback(in_tenant_a, agent, events, outcome_value: str) -> None:
    callback = CallbackFactory(assignee=agent)

    callback_outcome_log(callback_id=callback.pk, actor=agent, outcome=outcome_value, note=" Spoke to Maria. ")

    callback.refresh_from_db()
    assert (callback.completed_at, callback.attempts, callback.outcome, callback.last_attempt_at) == (
        MONDAY_10,
        1,
        outcome_value,
        MONDAY_10,
    )
    assert list(CallbackAttempt.objects.values_list("callback_id", "actor_id", "outcome", "note")) == [
        (callback.pk, agent.pk, outcome_value, "Spoke to Maria.")
    ]
    label = Callback.Outcome(outcome_value).label
    assert _audit(callback.ticket) == [("agent@alpha.test", "callback_outcome", "", label)]
    assert callback.ticket.status == "new"
    assert events == [
        ("callback.updated", {"callback_id": callback.pk, "ticket_id": callback.ticket_id, "outcome": outcome_value})
    ]


@time_machine.travel(MONDAY_10, tick=False)
def test_no_answer_with_a_new_time_reschedules(in_tenant_a, agent) -> None:
    callback = CallbackFactory(due_at=_at(9))

    callback_outcome_log(callback_id=callback.pk, actor=agent, outcome="no_answer", reschedule_at=_at(15))

    callback.refresh_from_db()
    assert (callback.completed_at, callback.attempts, callback.outcome, callback.due_at) == (
        None,
        1,
        "no_answer",
        _at(15),
    )
    assert callback.assignee_id == agent.pk  # nobody's callback becomes the agent's who logged it
    assert _audit(callback.ticket) == [
        ("agent@alpha.test", "callback_assignee", "", "agent@alpha.test"),
        ("agent@alpha.test", "callback_outcome", "", "No answer"),
        ("agent@alpha.test", "callback_due_at", "2030-11-25T09:00:00+00:00", "2030-11-25T15:00:00+00:00"),
    ]


@time_machine.travel(MONDAY_10, tick=False)
def test_voicemail_without_a_new_time_stays_in_the_queue_as_due(in_tenant_a) -> None:
    callback = CallbackFactory(due_at=_at(9), attempts=1)

    callback_outcome_log(callback_id=callback.pk, actor=None, outcome="voicemail")

    callback.refresh_from_db()
    assert (callback.completed_at, callback.attempts, callback.outcome, callback.due_at) == (
        None,
        2,
        "voicemail",
        _at(9),
    )


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize("outcome_value", ["reached", "voicemail"])
def test_resolve_ticket_completes_the_callback_and_resolves_the_ticket(in_tenant_a, agent, outcome_value) -> None:
    callback = CallbackFactory(ticket=TicketFactory(status="open"), assignee=agent)

    callback_outcome_log(callback_id=callback.pk, actor=agent, outcome=outcome_value, resolve_ticket=True)

    callback.refresh_from_db()
    ticket = Ticket.objects.get(pk=callback.ticket_id)
    assert (callback.completed_at, ticket.status, ticket.resolved_at) == (MONDAY_10, "resolved", MONDAY_10)
    # The callback was completed by the attempt: resolving the ticket does not complete it again.
    assert _audit(ticket) == [
        ("agent@alpha.test", "callback_outcome", "", Callback.Outcome(outcome_value).label),
        ("agent@alpha.test", "status", "open", "resolved"),
    ]


def test_resolve_ticket_leaves_a_closed_ticket_alone(in_tenant_a) -> None:
    callback = CallbackFactory(ticket=TicketFactory(status="closed"))

    callback_outcome_log(callback_id=callback.pk, actor=None, outcome="reached", resolve_ticket=True)

    assert Ticket.objects.get(pk=callback.ticket_id).status == "closed"
    assert [field for _, field, _, _ in _audit(callback.ticket)] == ["callback_outcome"]


PAST = "A callback can only be rescheduled to a time in the future."


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": ""}, "Unknown callback outcome ''."),
        ({"outcome": "busy"}, "Unknown callback outcome 'busy'."),
        ({"outcome": "no_answer", "reschedule_at": _at(9)}, PAST),
        ({"outcome": "no_answer", "reschedule_at": MONDAY_10}, PAST),
        (
            {"outcome": "no_answer", "reschedule_at": datetime(2030, 11, 25, 15, 0)},
            "The new callback time needs a time zone.",
        ),
        (
            {"outcome": "reached", "reschedule_at": _at(15)},
            "A callback that reached the caller or a wrong number cannot be rescheduled.",
        ),
        (
            {"outcome": "voicemail", "reschedule_at": _at(15), "resolve_ticket": True},
            "Either reschedule the callback or resolve the ticket, not both.",
        ),
    ],
)
def test_callback_outcome_log_refuses_bad_input(in_tenant_a, events, kwargs: dict[str, Any], message: str) -> None:
    callback = CallbackFactory(due_at=_at(9), ticket=TicketFactory(status="open"))
    before = Callback.objects.values().get(pk=callback.pk)

    with pytest.raises(TicketError) as error:
        callback_outcome_log(callback_id=callback.pk, actor=None, **kwargs)

    assert str(error.value) == message
    assert Callback.objects.values().get(pk=callback.pk) == before
    assert Ticket.objects.get(pk=callback.ticket_id).status == "open"
    assert (CallbackAttempt.objects.count(), _audit(callback.ticket), events) == (0, [], [])


def test_callback_outcome_log_refuses_a_done_callback(in_tenant_a, events) -> None:
    callback = CallbackFactory(completed_at=MONDAY_10, outcome="reached", attempts=1)

    with pytest.raises(TicketError, match=r"^This callback is already done\.$"):
        callback_outcome_log(callback_id=callback.pk, actor=None, outcome="reached")

    callback.refresh_from_db()
    assert (callback.attempts, callback.completed_at) == (1, MONDAY_10)
    assert (CallbackAttempt.objects.count(), _audit(callback.ticket), events) == (0, [], [])


# --- unanswered questions ----------------------------------------------------------------------------------------


def test_unanswered_question_to_faq_adds_the_entry_and_an_audit_row(in_tenant_a, agent) -> None:
    unanswered = UnansweredQuestionFactory(question="Do you fix boilers?")
    entries_before = FaqEntry.objects.count()

    entry = unanswered_question_to_faq(
        question_id=unanswered.pk, actor=agent, question=" Do you repair boilers? ", answer=" Yes, all makes. "
    )

    unanswered.refresh_from_db()
    assert (entry.question, entry.answer, entry.is_active) == ("Do you repair boilers?", "Yes, all makes.", True)
    assert FaqEntry.objects.count() == entries_before + 1
    assert (unanswered.status, unanswered.faq_entry_id) == ("converted", entry.pk)
    assert _audit(unanswered.ticket) == [("agent@alpha.test", "faq_added", "", "Do you repair boilers?")]


def test_unanswered_question_without_ticket_converts_without_audit(in_tenant_a) -> None:
    unanswered = UnansweredQuestionFactory(ticket=None)

    unanswered_question_to_faq(question_id=unanswered.pk, actor=None, question="Q?", answer="A.")

    assert UnansweredQuestion.objects.get(pk=unanswered.pk).status == "converted"
    assert TicketChange.objects.count() == 0


@pytest.mark.parametrize("status", ["converted", "dismissed"])
def test_unanswered_question_to_faq_refuses_a_handled_question(in_tenant_a, status: str) -> None:
    unanswered = UnansweredQuestionFactory(status=status)
    entries_before = FaqEntry.objects.count()

    with pytest.raises(TicketError, match=r"^This question has already been handled\.$"):
        unanswered_question_to_faq(question_id=unanswered.pk, actor=None, question="Q?", answer="A.")

    assert UnansweredQuestion.objects.get(pk=unanswered.pk).status == status
    assert (FaqEntry.objects.count(), TicketChange.objects.count()) == (entries_before, 0)


@pytest.mark.parametrize(
    ("question", "answer", "errors"),
    [
        ("Q?", "  ", {"answer": ["The answer is required."]}),
        ("", "A.", {"question": ["The question is required."]}),
        ("Q" * 501, "A.", {"question": ["The question can be at most 500 characters long."]}),
        ("Q?", "A" * 2001, {"answer": ["The answer can be at most 2000 characters long."]}),
        # The same question in other words' case and spacing is still the same question.
        ("what  are your OPENING hours?", "A.", {"question": ["There is already an entry with this question."]}),
    ],
)
def test_unanswered_question_to_faq_keeps_the_faq_rules(
    in_tenant_a, question: str, answer: str, errors: dict[str, list[str]]
) -> None:
    FaqEntry.objects.get_or_create(question="What are your opening hours?", defaults={"answer": "9 to 5."})
    unanswered = UnansweredQuestionFactory()
    entries_before = list(FaqEntry.objects.order_by("pk").values())
    audit_before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as error:
        unanswered_question_to_faq(question_id=unanswered.pk, actor=None, question=question, answer=answer)

    assert error.value.message_dict == errors
    assert UnansweredQuestion.objects.get(pk=unanswered.pk).status == "open"
    assert list(FaqEntry.objects.order_by("pk").values()) == entries_before
    assert (TicketChange.objects.count(), AuditEvent.objects.count()) == (0, audit_before)


def test_unanswered_question_to_faq_writes_the_faq_audit_event(in_tenant_a) -> None:
    unanswered = UnansweredQuestionFactory()

    entry = unanswered_question_to_faq(
        question_id=unanswered.pk, actor=in_tenant_a.owner, question="Do you fix kettles?", answer="No."
    )

    assert list(AuditEvent.objects.filter(action="faq_entry.created").values_list("actor_id", "tenant_id", "data")) == [
        (
            in_tenant_a.owner.pk,
            in_tenant_a.tenant.pk,
            {"entry_id": entry.pk, "question": "Do you fix kettles?", "is_active": True},
        )
    ]


def test_unanswered_question_dismiss(in_tenant_a, agent) -> None:
    unanswered = UnansweredQuestionFactory(question="Do you sell kettles?")

    unanswered_question_dismiss(question_id=unanswered.pk, actor=agent)

    assert UnansweredQuestion.objects.get(pk=unanswered.pk).status == "dismissed"
    assert _audit(unanswered.ticket) == [("agent@alpha.test", "faq_dismissed", "", "Do you sell kettles?")]
    with pytest.raises(TicketError, match=r"^This question has already been handled\.$"):
        unanswered_question_dismiss(question_id=unanswered.pk, actor=agent)
    assert TicketChange.objects.count() == 1


# --- SLA pauses count business time ------------------------------------------------------------------------------


def _utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


FRIDAY_16 = _utc(29, 16)


def _ticket_at(start: datetime, priority: str = "normal") -> Ticket:
    with time_machine.travel(start, tick=False):
        return ticket_create(actor=None, subject="Leak", priority=priority)


def _status_at(ticket: Ticket, status: str, at: datetime, actor: User | None = None) -> Ticket:
    with time_machine.travel(at, tick=False):
        ticket_update(ticket_id=ticket.pk, actor=actor, status=status)
    return Ticket.objects.get(pk=ticket.pk)


def test_a_pause_over_the_weekend_gives_back_the_business_time_left(in_tenant_a, agent) -> None:
    # Mon-Fri 09:00-17:00 UTC, normal SLA 24 business hours.
    ticket = _ticket_at(FRIDAY_16)
    assert ticket.due_at == _utc(4, 16, month=12)  # Wednesday 16:00
    _status_at(ticket, "pending", _utc(29, 16, 30))

    resumed = _status_at(ticket, "open", _utc(2, 9, month=12), actor=agent)  # Monday 09:00

    # 23.5 business hours were left at the pause: from Monday 09:00 that is Wednesday 16:30.
    assert (resumed.sla_paused_at, resumed.due_at) == (None, _utc(4, 16, 30, month=12))
    assert _audit(ticket)[-2:] == [
        ("agent@alpha.test", "status", "pending", "open"),
        ("agent@alpha.test", "due_at", "2030-12-04T16:00:00+00:00", "2030-12-04T16:30:00+00:00"),
    ]


def test_a_pause_outside_business_hours_changes_nothing_and_writes_no_due_row(in_tenant_a) -> None:
    ticket = _ticket_at(FRIDAY_16)
    _status_at(ticket, "pending", _utc(29, 18))  # Friday evening

    resumed = _status_at(ticket, "open", _utc(1, 12, month=12))  # Sunday noon

    assert resumed.due_at == _utc(4, 16, month=12)
    assert [field for _, field, _, _ in _audit(ticket)] == ["created", "status", "status"]


def test_a_ticket_overdue_when_paused_stays_overdue(in_tenant_a) -> None:
    ticket = _ticket_at(_utc(25, 10), priority="urgent")  # due Monday 12:00
    _status_at(ticket, "pending", _utc(25, 15))

    resumed = _status_at(ticket, "open", _utc(26, 10))

    assert resumed.due_at == _utc(25, 12)
    with time_machine.travel(_utc(26, 10), tick=False):
        assert resumed.is_overdue is True
    assert [field for _, field, _, _ in _audit(ticket)] == ["created", "status", "status"]


def test_no_business_time_left_at_the_pause_keeps_the_due_time(in_tenant_a) -> None:
    ticket = _ticket_at(_utc(29, 9), priority="high")  # 8 h: due Friday 17:00
    _status_at(ticket, "pending", _utc(29, 17, 30))  # after closing: nothing left, but not overdue

    resumed = _status_at(ticket, "open", _utc(30, 10))  # Saturday

    # Not overdue over the weekend; overdue as soon as Monday would have been on the clock.
    assert resumed.due_at == _utc(29, 17)


def test_a_priority_change_counts_earlier_pauses_in_business_time(in_tenant_a) -> None:
    ticket = _ticket_at(FRIDAY_16)
    _status_at(ticket, "pending", _utc(29, 16, 30))
    _status_at(ticket, "open", _utc(2, 9, month=12))

    with time_machine.travel(_utc(2, 10, month=12), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="high")

    # High: 8 business hours from Friday 16:00, of which the half hour before the
    # pause was used: 7.5 h from Monday 09:00 is Monday 16:30 (not Friday + 64.5 h).
    assert Ticket.objects.get(pk=ticket.pk).due_at == _utc(2, 16, 30, month=12)


def test_a_priority_change_ignores_a_pause_that_began_after_the_new_due_time(in_tenant_a) -> None:
    ticket = _ticket_at(_utc(25, 10))
    _status_at(ticket, "pending", _utc(25, 15))
    _status_at(ticket, "open", _utc(26, 10))

    with time_machine.travel(_utc(26, 11), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="urgent")

    # Urgent was due Monday 12:00, before the pause: the pause does not move it.
    assert Ticket.objects.get(pk=ticket.pk).due_at == _utc(25, 12)


def test_leaving_pending_with_a_new_priority_writes_one_due_row(in_tenant_a) -> None:
    ticket = _ticket_at(_utc(25, 10))
    _status_at(ticket, "pending", _utc(25, 11))

    with time_machine.travel(_utc(25, 13), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=None, priority="urgent", status="open")

    assert _audit(ticket)[2:] == [
        (None, "status", "pending", "open"),
        (None, "due_at", "2030-11-28T10:00:00+00:00", "2030-11-25T14:00:00+00:00"),
        (None, "priority", "normal", "urgent"),
    ]


# --- resolving and closing ---------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize(("old", "new"), [("open", "resolved"), ("new", "closed"), ("pending", "resolved")])
def test_resolving_or_closing_completes_the_open_callback(in_tenant_a, agent, events, old: str, new: str) -> None:
    callback = CallbackFactory(ticket=TicketFactory(status=old), assignee=agent)

    ticket_update(ticket_id=callback.ticket_id, actor=agent, status=new)

    callback.refresh_from_db()
    assert (callback.completed_at, callback.outcome, callback.attempts) == (MONDAY_10, "", 0)
    label = Ticket.Status(new).label
    assert _audit(callback.ticket) == [
        ("agent@alpha.test", "status", old, new),
        ("agent@alpha.test", "callback_completed", "", label),
    ]
    # Sent in one instant of a frozen clock: the layer does not keep their order.
    assert sorted(kind for kind, _ in events) == ["callback.updated", "ticket.updated"]
    assert dict(events)["callback.updated"] == {
        "callback_id": callback.pk,
        "ticket_id": callback.ticket_id,
        "outcome": "",
    }


@time_machine.travel(MONDAY_10, tick=False)
def test_closing_leaves_a_done_callback_alone(in_tenant_a, events) -> None:
    callback = CallbackFactory(ticket=TicketFactory(status="resolved"), completed_at=_at(9), outcome="reached")

    ticket_update(ticket_id=callback.ticket_id, actor=None, status="closed")

    assert Callback.objects.get(pk=callback.pk).completed_at == _at(9)
    assert [field for _, field, _, _ in _audit(callback.ticket)] == ["status"]
    assert [kind for kind, _ in events] == ["ticket.updated"]


@pytest.mark.parametrize("new", ["open", "pending"])
def test_other_status_changes_leave_the_callback_waiting(in_tenant_a, events, new: str) -> None:
    callback = CallbackFactory(ticket=TicketFactory(status="new"))

    ticket_update(ticket_id=callback.ticket_id, actor=None, status=new)

    assert Callback.objects.get(pk=callback.pk).completed_at is None
    assert [kind for kind, _ in events] == ["ticket.updated"]


@time_machine.travel(MONDAY_10, tick=False)
def test_callback_next_skips_callbacks_of_solved_tickets(in_tenant_a, agent) -> None:
    CallbackFactory(due_at=_at(8), ticket=TicketFactory(status="resolved"))
    CallbackFactory(due_at=_at(8, 30), ticket=TicketFactory(status="closed"))
    waiting = CallbackFactory(due_at=_at(9), ticket=TicketFactory(status="pending"))

    assert callback_next(actor=agent).pk == waiting.pk
    Callback.objects.filter(pk=waiting.pk).update(completed_at=MONDAY_10)
    assert callback_next(actor=agent) is None
    assert Callback.objects.filter(assignee_id=agent.pk).count() == 1


def test_closing_a_resolved_ticket_keeps_when_it_was_resolved(in_tenant_a) -> None:
    ticket = TicketFactory(status="open")
    assert _status_at(ticket, "resolved", _at(10)).resolved_at == _at(10)

    closed = _status_at(ticket, "closed", _at(15))

    assert (closed.status, closed.resolved_at) == ("closed", _at(10))


def test_a_reopened_ticket_is_resolved_anew(in_tenant_a) -> None:
    ticket = TicketFactory(status="open")
    _status_at(ticket, "resolved", _at(10))

    assert _status_at(ticket, "open", _at(11)).resolved_at is None
    assert _status_at(ticket, "closed", _at(12)).resolved_at == _at(12)


# --- callback_outcome_log: whose callback ------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
def test_an_agent_cannot_log_an_attempt_on_someone_elses_callback(in_tenant_a, agent, events) -> None:
    colleague = MembershipFactory(tenant=in_tenant_a.tenant, role="agent", user__email="colleague@alpha.test").user
    callback = CallbackFactory(assignee=colleague, ticket=TicketFactory(status="open"))
    before = Callback.objects.values().get(pk=callback.pk)

    with pytest.raises(TicketError) as error:
        callback_outcome_log(callback_id=callback.pk, actor=agent, outcome="reached", resolve_ticket=True)

    assert str(error.value) == "This callback is assigned to someone else; only they or an admin can log an attempt."
    assert Callback.objects.values().get(pk=callback.pk) == before
    assert Ticket.objects.get(pk=callback.ticket_id).status == "open"
    assert (CallbackAttempt.objects.count(), _audit(callback.ticket), events) == (0, [], [])


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_admin_can_log_an_attempt_on_anyones_callback(in_tenant_a, agent, role: str) -> None:
    admin = MembershipFactory(tenant=in_tenant_a.tenant, role=role, user__email="boss@alpha.test").user
    callback = CallbackFactory(assignee=agent)

    callback_outcome_log(callback_id=callback.pk, actor=admin, outcome="voicemail")

    callback.refresh_from_db()
    # The attempt is logged as the admin's; the callback stays the agent's.
    assert (callback.assignee_id, callback.attempts, callback.outcome) == (agent.pk, 1, "voicemail")
    assert list(CallbackAttempt.objects.values_list("actor_id", "outcome")) == [(admin.pk, "voicemail")]
    assert _audit(callback.ticket) == [("boss@alpha.test", "callback_outcome", "", "Voicemail")]


def test_an_admin_of_another_business_is_not_an_admin_here(in_tenant_a, tenant_b, agent) -> None:
    other_admin = MembershipFactory(tenant=tenant_b.tenant, role="admin").user
    MembershipFactory(tenant=in_tenant_a.tenant, role="agent", user=other_admin)
    callback = CallbackFactory(assignee=agent)

    with pytest.raises(TicketError, match="assigned to someone else"):
        callback_outcome_log(callback_id=callback.pk, actor=other_admin, outcome="voicemail")

    assert Callback.objects.get(pk=callback.pk).attempts == 0


@time_machine.travel(MONDAY_10, tick=False)
def test_logging_an_attempt_on_nobodys_callback_takes_it(in_tenant_a, agent, events) -> None:
    callback = CallbackFactory()

    callback_outcome_log(callback_id=callback.pk, actor=agent, outcome="no_answer")

    callback.refresh_from_db()
    assert (callback.assignee_id, callback.attempts, callback.completed_at) == (agent.pk, 1, None)
    assert _audit(callback.ticket) == [
        ("agent@alpha.test", "callback_assignee", "", "agent@alpha.test"),
        ("agent@alpha.test", "callback_outcome", "", "No answer"),
    ]
    assert events == [
        ("callback.updated", {"callback_id": callback.pk, "ticket_id": callback.ticket_id, "outcome": "no_answer"})
    ]


# --- the clock: services stamp the time they are given -----------------------------------------------------------

# The real time during these tests: a week after the times the services are given.
LATER = datetime(2030, 12, 2, 15, 0, tzinfo=UTC)


@time_machine.travel(LATER, tick=False)
def test_ticket_create_counts_the_sla_from_the_time_given(in_tenant_a) -> None:
    ticket = ticket_create(actor=None, subject="Leak", priority="normal", now=MONDAY_10)

    assert ticket.due_at == _at(10, day=28)  # 24 business hours from Monday 10:00


@time_machine.travel(LATER, tick=False)
def test_ticket_from_a_call_stamps_the_time_given(in_tenant_a) -> None:
    resolved = CallFactory(captured=outcome(fields={}, resolved=True, callback_requested=False, priority="normal"))
    wanted = CallFactory(captured=outcome(priority="urgent", wants_human=True))

    assert ticket_create_from_call(call_id=resolved.pk, now=_at(11)).resolved_at == _at(11)
    callback = ticket_create_from_call(call_id=wanted.pk, now=_at(11)).callback
    assert callback.due_at == _at(11, 30)  # urgent: half an hour, around the clock


@time_machine.travel(LATER, tick=False)
def test_callback_attempts_and_reschedules_run_on_the_time_given(in_tenant_a, agent) -> None:
    callback = CallbackFactory(due_at=_at(12))

    with pytest.raises(TicketError, match=r"^A callback can only be rescheduled to a time in the future\.$"):
        callback_outcome_log(
            callback_id=callback.pk, actor=agent, outcome="no_answer", reschedule_at=_at(10), now=_at(11)
        )
    logged = callback_outcome_log(
        callback_id=callback.pk, actor=agent, outcome="no_answer", reschedule_at=_at(15), now=_at(11)
    )

    assert (logged.last_attempt_at, logged.due_at, logged.attempts) == (_at(11), _at(15), 1)
    done = callback_outcome_log(callback_id=callback.pk, actor=agent, outcome="reached", now=_at(16))
    assert done.completed_at == _at(16)


@time_machine.travel(LATER, tick=False)
def test_ticket_update_pauses_and_resolves_at_the_time_given(in_tenant_a) -> None:
    ticket = ticket_create(actor=None, subject="Leak", priority="normal", now=MONDAY_10)

    ticket_update(ticket_id=ticket.pk, actor=None, status="pending", now=_at(11))
    assert Ticket.objects.get(pk=ticket.pk).sla_paused_at == _at(11)
    ticket_update(ticket_id=ticket.pk, actor=None, status="open", now=_at(14))
    # Three business hours paused are given back.
    assert Ticket.objects.get(pk=ticket.pk).due_at == _at(13, day=28)
    ticket_update(ticket_id=ticket.pk, actor=None, status="resolved", now=_at(15))
    assert Ticket.objects.get(pk=ticket.pk).resolved_at == _at(15)


# --- categories the receptionist was unsure of, and what the desk teaches it ------------------------------------


def test_an_unsure_category_is_flagged_for_a_person(in_tenant_a) -> None:
    call = CallFactory(captured=outcome(category="general", category_review=True, category_confidence=0.21))
    ticket = ticket_create_from_call(call_id=call.pk)
    assert (ticket.category, ticket.tags) == ("general", [CATEGORY_REVIEW_TAG])


def test_a_sure_category_is_not_flagged(in_tenant_a) -> None:
    ticket = ticket_create_from_call(call_id=CallFactory(captured=outcome(category_review=False)).pk)
    assert ticket.tags == []


def test_moving_a_phone_ticket_teaches_the_category_and_clears_the_flag(in_tenant_a, agent) -> None:
    AgentConfig.objects.update(categories=["leak", "drains", "general"])
    reason = "water keeps coming up through the shower tray"
    call = CallFactory(captured=outcome(reason=reason, category="general", category_review=True))
    ticket = ticket_create_from_call(call_id=call.pk)

    ticket_update(ticket_id=ticket.pk, actor=agent, category="drains")

    assert list(CategoryExample.objects.values_list("category", "text", "ticket_id")) == [("drains", reason, ticket.pk)]
    ticket.refresh_from_db()
    assert (ticket.category, ticket.tags) == ("drains", [])


def test_a_category_set_by_no_one_or_on_a_web_ticket_teaches_nothing(in_tenant_a, agent) -> None:
    AgentConfig.objects.update(categories=["leak", "drains", "general"])
    call = CallFactory(captured=outcome(reason="the basin drains slowly"))
    phone = ticket_create_from_call(call_id=call.pk)
    web = TicketFactory(category="leak")

    ticket_update(ticket_id=phone.pk, actor=None, category="drains")
    ticket_update(ticket_id=web.pk, actor=agent, category="drains")

    assert CategoryExample.objects.count() == 0


# The ticket sweep: finished calls whose ticket message never arrived


def _ended_call(ended: datetime, **fields: Any) -> Call:
    call = CallFactory(ended_at=ended, captured=outcome(), **fields)
    Call.objects.filter(pk=call.pk).update(started_at=ended - timedelta(minutes=3))
    return call


def test_ticket_sweep_makes_the_missing_tickets_once_and_leaves_the_rest(in_tenant_a) -> None:
    from tickets.services import ticket_sweep_missing

    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    missed = _ended_call(now - timedelta(seconds=61))
    too_recent = _ended_call(now - timedelta(seconds=59))  # its message may still be on the way
    too_old = _ended_call(now - timedelta(days=7, minutes=1))
    has_ticket = _ended_call(now - timedelta(minutes=5))
    existing = TicketFactory(call=has_ticket)
    running = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)

    made = ticket_sweep_missing(now=now)
    again = ticket_sweep_missing(now=now)

    assert [t.call_id for t in made] == [missed.pk]
    assert again == []
    assert sorted(Ticket.objects.values_list("call_id", flat=True)) == sorted([missed.pk, has_ticket.pk])
    assert Ticket.objects.get(call=missed).caller_name == "Maria Gonzalez"
    assert Ticket.objects.get(call=has_ticket).pk == existing.pk
    assert {too_recent.pk, too_old.pk, running.pk}.isdisjoint(Ticket.objects.values_list("call_id", flat=True))


def test_ticket_sweep_does_not_bring_back_a_ticket_an_owner_deleted(in_tenant_a) -> None:
    from tickets.services import ticket_sweep_missing

    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    call = _ended_call(now - timedelta(minutes=10))
    AuditEvent.objects.create(
        action="ticket.deleted", tenant=in_tenant_a.tenant, data={"ticket": "T-1", "subject": "x", "call_id": call.pk}
    )
    # The same call id deleted in another business does not count here.
    other = _ended_call(now - timedelta(minutes=10))
    AuditEvent.objects.create(action="ticket.deleted", tenant=None, data={"call_id": other.pk})

    assert [t.call_id for t in ticket_sweep_missing(now=now)] == [other.pk]
    assert list(Ticket.objects.values_list("call_id", flat=True)) == [other.pk]


# --- tickets of calls transferred to a person ------------------------------------------------------


def _transferred_call(**captured: Any) -> Call:
    return CallFactory(
        captured=outcome(**({"callback_requested": False, "wants_human": True, "priority": "normal"} | captured)),
        transfer_status="dialing",
        transfer_to="+15550100199",
        ended_at=None,
    )


def test_a_failed_transfer_queues_one_high_priority_callback_and_raises_the_ticket(in_tenant_a) -> None:
    from tickets.services import callback_queue_after_transfer

    call = _transferred_call()
    ticket = ticket_create_from_call(call_id=call.pk)
    assert (ticket.priority, Callback.objects.count()) == ("normal", 0)
    now = datetime(2030, 11, 25, 15, 0, tzinfo=UTC)

    callback = callback_queue_after_transfer(call_id=call.pk, status="busy", now=now)
    again = callback_queue_after_transfer(call_id=call.pk, status="busy", now=now)

    assert again.pk == callback.pk
    assert (callback.priority, callback.reason, callback.phone) == (
        "high",
        "Transfer to a person failed: the line was busy",
        "+15552013344",
    )
    # High callbacks are due around the clock: two hours on.
    assert callback.due_at == now + timedelta(hours=2)
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    assert list(TicketChange.objects.filter(ticket=ticket).values_list("field", "old_value", "new_value")) == [
        ("created", "", "new"),
        ("priority", "normal", "high"),
    ]
    with pytest.raises(TicketError):
        callback_queue_after_transfer(call_id=call.pk, status="answered")


def test_a_failed_transfer_raises_an_existing_callback_rather_than_queueing_another(in_tenant_a) -> None:
    from tickets.services import callback_queue_after_transfer

    call = _transferred_call(callback_requested=True)
    ticket = ticket_create_from_call(call_id=call.pk)
    [existing] = Callback.objects.all()
    assert existing.priority == "normal"

    callback = callback_queue_after_transfer(call_id=call.pk, status="no_answer")

    assert callback.pk == existing.pk
    assert (callback.priority, callback.reason) == ("high", "Transfer to a person failed: nobody answered")
    assert Callback.objects.filter(ticket=ticket).count() == 1


def test_the_end_of_a_transferred_call_completes_its_ticket_once(in_tenant_a) -> None:
    call = _transferred_call(fields={"callback_number": "+15557654321"}, summary="Leak: my sink.")
    ticket = ticket_create_from_call(call_id=call.pk)
    assert (ticket.caller_name, ticket.summary) == ("", "Leak: my sink.")
    # Back with the agent after a busy transfer, the caller gave their name; then the call ended.
    Call.objects.filter(pk=call.pk).update(
        transfer_status="busy",
        ended_at=timezone.now(),
        captured=outcome(
            fields={"name": "Ada Lovelace", "callback_number": "+15557654321"},
            summary="Leak: my sink. Ada Lovelace asked to speak to a person; the line was busy.",
            callback_requested=True,
            wants_human=True,
        ),
    )

    for _ in range(2):
        again = ticket_create_from_call(call_id=call.pk)

    assert again.pk == ticket.pk
    ticket.refresh_from_db()
    assert (ticket.caller_name, ticket.callback_number) == ("Ada Lovelace", "+15557654321")
    assert ticket.summary == "Leak: my sink. Ada Lovelace asked to speak to a person; the line was busy."
    assert ticket.captured == {"name": "Ada Lovelace", "callback_number": "+15557654321"}
    assert Callback.objects.filter(ticket=ticket).count() == 1
    changes = list(TicketChange.objects.filter(ticket=ticket).values_list("field", flat=True))
    assert changes == ["created", "summary", "caller_name"]


@time_machine.travel(MONDAY_10, tick=False)
def test_the_ticket_of_a_redacting_business_keeps_the_callers_details_only_in_its_fields(in_tenant_a) -> None:
    AgentConfig.objects.update(redact_transcripts=True)
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    said = outcome(
        fields={"name": "Maria Gonzalez", "callback_number": "+15552013344", "email": "maria@example.com"},
        reason="call me on 555 201 3344 about the leak",
        summary="Maria Gonzalez (maria@example.com) called about a leak.",
        unanswered_questions=["can you text five five five two oh one three three four four?"],
    )
    call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=said, completed=True)

    ticket = ticket_create_from_call(call_id=call.pk)

    assert (ticket.caller_name, ticket.callback_number, ticket.email) == (
        "Maria Gonzalez",
        "+15552013344",
        "maria@example.com",
    )
    assert ticket.captured == said["fields"]
    assert (ticket.subject, ticket.summary) == (
        "Call me on [phone] about the leak",
        "Maria Gonzalez ([email]) called about a leak.",
    )
    assert list(UnansweredQuestion.objects.filter(ticket=ticket).values_list("question", flat=True)) == [
        "can you text [phone]?"
    ]
    callback = Callback.objects.get(ticket=ticket)
    assert (callback.phone, callback.reason) == ("+15552013344", "call me on [phone] about the leak")
