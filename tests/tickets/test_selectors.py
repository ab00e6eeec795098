from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q

from calls.models import AgentConfig
from tests.factories import (
    CallbackFactory,
    CallFactory,
    MembershipFactory,
    TicketFactory,
    TicketNoteFactory,
    UnansweredQuestionFactory,
    UtteranceFactory,
)
from tickets.models import Ticket, TicketChange, UnansweredQuestion
from tickets.selectors import (
    OPEN_STATUSES,
    TicketFilters,
    callback_queue,
    callbacks_recently_done,
    change_describe,
    tenant_members,
    ticket_activity,
    ticket_categories,
    ticket_list,
    ticket_priority_rank,
    ticket_search_q,
    ticket_transcript,
    ticket_unanswered_questions,
    unanswered_question_get,
    unanswered_question_list,
)
from tickets.services import ticket_note_add, ticket_update

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def _numbers(tickets) -> list[str]:
    return [ticket.number for ticket in tickets]


def _list(actor, **filters) -> list[str]:
    return _numbers(ticket_list(actor=actor, filters=TicketFilters(**filters)))


# --- ticket_list: filters ----------------------------------------------------------------------------------------


def test_default_filters_show_open_statuses_newest_first(in_tenant_a) -> None:
    new, pending, _resolved, _closed, opened = (
        TicketFactory(status=status) for status in ("new", "pending", "resolved", "closed", "open")
    )

    assert OPEN_STATUSES == ("new", "open", "pending")
    assert _numbers(ticket_list(actor=in_tenant_a.owner)) == [opened.number, pending.number, new.number]


def test_status_priority_category_and_tag_filters(in_tenant_a) -> None:
    match = TicketFactory(status="open", priority="high", category="leak", tags=["vip", "landlord"])
    TicketFactory(status="open", priority="high", category="billing", tags=["vip"])
    TicketFactory(status="open", priority="low", category="leak", tags=["vip"])
    TicketFactory(status="new", priority="high", category="leak", tags=["vip"])
    TicketFactory(status="open", priority="high", category="leak", tags=["landlord"])
    owner = in_tenant_a.owner

    assert _list(owner, statuses=("open",), priority="high", category="leak", tags=("vip",)) == [match.number]
    assert len(_list(owner, statuses=())) == 5
    assert len(_list(owner, statuses=("open",))) == 4


def test_assignee_filter_me_nobody_or_a_member(in_tenant_a) -> None:
    agent = MembershipFactory(tenant=in_tenant_a.tenant).user
    mine = TicketFactory(assignee=in_tenant_a.owner)
    theirs = TicketFactory(assignee=agent)
    nobodys = TicketFactory(assignee=None)
    owner = in_tenant_a.owner

    assert _list(owner, assignee="me") == [mine.number]
    assert _list(agent, assignee="me") == [theirs.number]
    assert _list(owner, assignee="none") == [nobodys.number]
    assert _list(owner, assignee=agent.pk) == [theirs.number]
    assert _list(owner, assignee="") == [nobodys.number, theirs.number, mine.number]


def test_created_range_is_from_inclusive_before_exclusive(in_tenant_a) -> None:
    tickets = [TicketFactory() for _ in range(3)]
    for ticket, day in zip(tickets, (24, 25, 26), strict=True):
        Ticket.objects.filter(pk=ticket.pk).update(created_at=datetime(2030, 11, day, 12, 0, tzinfo=UTC))
    owner = in_tenant_a.owner

    result = _list(
        owner,
        created_from=datetime(2030, 11, 25, 12, 0, tzinfo=UTC),
        created_before=datetime(2030, 11, 26, 12, 0, tzinfo=UTC),
    )

    assert result == [tickets[1].number]


@time_machine.travel(MONDAY_10, tick=False)
def test_overdue_only_leaves_out_paused_and_closed_tickets(in_tenant_a) -> None:
    past = MONDAY_10 - timedelta(hours=1)
    overdue = TicketFactory(status="open", due_at=past)
    TicketFactory(status="pending", due_at=past, sla_paused_at=past)
    TicketFactory(status="resolved", due_at=past)
    TicketFactory(status="open", due_at=MONDAY_10 + timedelta(hours=1))
    TicketFactory(status="open", due_at=None)

    assert _list(in_tenant_a.owner, statuses=(), overdue=True) == [overdue.number]
    assert [t.is_overdue for t in Ticket.objects.filter(pk=overdue.pk)] == [True]


# --- ticket_list: search -----------------------------------------------------------------------------------------


@pytest.fixture
def searchable(in_tenant_a) -> dict[str, Ticket]:
    call = CallFactory(from_number="+15559990000")
    return {
        "subject": TicketFactory(subject="Boiler pressure drops", caller_name="Ann Lee", callback_number=""),
        "caller": TicketFactory(subject="Leak", caller_name="Bob Boilerman", callback_number=""),
        "phone": TicketFactory(subject="Tap", caller_name="Cy", callback_number="+15552013344"),
        "email": TicketFactory(subject="Tap", caller_name="Di", callback_number="", email="di@boiler.example"),
        "summary": TicketFactory(subject="Tap", caller_name="Ed", callback_number="", summary="Old BOILER noise"),
        "call": TicketFactory(subject="Tap", caller_name="Flo", callback_number="", call=call),
    }


def test_search_matches_subject_caller_email_and_summary_ignoring_case(in_tenant_a, searchable) -> None:
    found = set(_list(in_tenant_a.owner, q="  boiler "))

    expected = {searchable[key].number for key in ("subject", "caller", "email", "summary")}
    assert found == expected


@pytest.mark.parametrize("typed", ["(555) 201-3344", "201-3344", "+1 555 201 3344", "2013344"])
def test_search_finds_phone_numbers_however_they_are_typed(in_tenant_a, searchable, typed: str) -> None:
    assert _list(in_tenant_a.owner, q=typed) == [searchable["phone"].number]


def test_search_finds_the_number_the_caller_rang_from(in_tenant_a, searchable) -> None:
    assert _list(in_tenant_a.owner, q="999 0000") == [searchable["call"].number]


def test_search_by_ticket_number(in_tenant_a, searchable) -> None:
    target = searchable["email"]

    for typed in (f"T-{target.pk}", f"t{target.pk}", f"#{target.pk}", str(target.pk), f" T - {target.pk} "):
        assert target.number in _list(in_tenant_a.owner, q=typed), typed
    assert _list(in_tenant_a.owner, q=f"T-{target.pk}") == [target.number]


def test_search_with_nothing_matching_is_empty(in_tenant_a, searchable) -> None:
    assert _list(in_tenant_a.owner, q="xylophone") == []


def test_search_q_is_a_plain_q_for_any_ticket_query(in_tenant_a, searchable) -> None:
    # Public for the REST API: it filters any ticket queryset, and blank text filters nothing.
    phone = searchable["phone"]

    assert list(Ticket.objects.filter(ticket_search_q(f"T-{phone.pk}")).values_list("pk", flat=True)) == [phone.pk]
    assert list(Ticket.objects.filter(ticket_search_q("(555) 201-3344")).values_list("pk", flat=True)) == [phone.pk]
    assert ticket_search_q("   ") == Q()


# --- ticket_list: sorting ----------------------------------------------------------------------------------------


@pytest.fixture
def sortable(in_tenant_a) -> list[Ticket]:
    specs = [("low", 3), ("urgent", 1), ("normal", None), ("high", 2)]
    tickets = []
    for priority, due_hours in specs:
        due = MONDAY_10 + timedelta(hours=due_hours) if due_hours else None
        tickets.append(TicketFactory(priority=priority, due_at=due))
    return tickets


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("priority", ["urgent", "high", "normal", "low"]),
        ("-priority", ["low", "normal", "high", "urgent"]),
        ("due", ["urgent", "high", "low", "normal"]),  # no due time: last
        ("-due", ["low", "high", "urgent", "normal"]),  # still last
        ("number", ["low", "urgent", "normal", "high"]),
        ("-number", ["high", "normal", "urgent", "low"]),
        ("created", ["low", "urgent", "normal", "high"]),
        ("-created", ["high", "normal", "urgent", "low"]),
        ("nonsense", ["high", "normal", "urgent", "low"]),
    ],
)
def test_sorting(in_tenant_a, sortable, sort: str, order: list[str]) -> None:
    tickets = ticket_list(actor=in_tenant_a.owner, filters=TicketFilters(sort=sort))

    assert [ticket.priority for ticket in tickets] == order


def test_priority_rank_puts_urgent_first(in_tenant_a, sortable) -> None:
    ranked = Ticket.objects.annotate(rank=ticket_priority_rank()).order_by("rank")

    assert [(ticket.priority, ticket.rank) for ticket in ranked] == [
        ("urgent", 0),
        ("high", 1),
        ("normal", 2),
        ("low", 3),
    ]


def test_sort_by_updated(in_tenant_a, sortable) -> None:
    ticket_update(ticket_id=sortable[0].pk, actor=None, subject="Touched last")

    tickets = ticket_list(actor=in_tenant_a.owner, filters=TicketFilters(sort="-updated"))

    assert tickets[0].pk == sortable[0].pk


# --- ticket_list: queries ----------------------------------------------------------------------------------------


def test_a_page_of_the_inbox_is_two_queries_whatever_the_rows(in_tenant_a, django_assert_num_queries) -> None:
    agent = MembershipFactory(tenant=in_tenant_a.tenant).user
    Ticket.objects.bulk_create(
        Ticket(subject=f"Ticket {n}", assignee=agent if n % 2 else in_tenant_a.owner, tags=["vip"]) for n in range(60)
    )
    filters = TicketFilters(q="ticket", sort="priority", assignee="", tags=("vip",))

    with django_assert_num_queries(2):
        page = Paginator(ticket_list(actor=in_tenant_a.owner, filters=filters), 25).get_page(2)
        emails = {ticket.assignee.email for ticket in page.object_list}

    assert (page.paginator.count, len(page.object_list)) == (60, 25)
    assert emails == {agent.email, in_tenant_a.owner.email}


def test_with_10000_tickets_a_page_is_two_indexed_queries(in_tenant_a, django_assert_num_queries) -> None:
    statuses = ["new", "open", "pending", "resolved", "closed"]
    Ticket.objects.bulk_create(
        (
            Ticket(subject=f"Ticket {n}", status=statuses[n % 5], priority="normal", assignee=in_tenant_a.owner)
            for n in range(10_000)
        ),
        batch_size=2_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
    tickets = ticket_list(actor=in_tenant_a.owner)

    with django_assert_num_queries(2):
        page = Paginator(tickets, 25).get_page(40)
        assignees = {ticket.assignee.email for ticket in page.object_list}

    assert (page.paginator.count, len(page.object_list), assignees) == (6_000, 25, {"owner@alpha.test"})
    sql, params = tickets[975:1000].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Newest first is read off an index on created_at, not by sorting the table.
    assert "Index Scan Backward" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- one ticket --------------------------------------------------------------------------------------------------


def test_transcript_in_order_with_clock_and_interruptions(in_tenant_a) -> None:
    call = CallFactory()
    UtteranceFactory(call=call, speaker="caller", text="My sink leaks.", start_s=65.4, end_s=67.0)
    UtteranceFactory(call=call, speaker="agent", text="Thanks for calling", start_s=0.0, end_s=2.0, interrupted=True)

    lines = ticket_transcript(call=call)

    assert [(line.speaker_label, line.clock, line.text, line.interrupted, line.start_s) for line in lines] == [
        ("Agent", "0:00", "Thanks for calling", True, 0.0),
        ("Caller", "1:05", "My sink leaks.", False, 65.4),
    ]
    assert ticket_transcript(call=None) == []


def test_activity_merges_changes_and_notes_in_time_order_with_human_wording(in_tenant_a) -> None:
    agent = MembershipFactory(tenant=in_tenant_a.tenant, user__email="agent@alpha.test").user
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = TicketFactory(status="new", priority="normal")
        TicketChange.objects.create(ticket=ticket, field="created", new_value="new")
    with time_machine.travel(MONDAY_10 + timedelta(minutes=5), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=agent, status="open")
    with time_machine.travel(MONDAY_10 + timedelta(minutes=10), tick=False):
        ticket_note_add(ticket_id=ticket.pk, actor=in_tenant_a.owner, body="Rang the landlord.\nNo answer.")
    with time_machine.travel(MONDAY_10 + timedelta(minutes=15), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=agent, priority="urgent")

    entries = ticket_activity(ticket=ticket, zone=ZoneInfo("America/New_York"))

    assert [(e.at, e.actor, e.text, e.kind, e.body) for e in entries] == [
        (MONDAY_10, "System", "Ticket created (New)", "change", ""),
        (MONDAY_10 + timedelta(minutes=5), "agent@alpha.test", "Status: New → Open", "change", ""),
        (
            MONDAY_10 + timedelta(minutes=10),
            "owner@alpha.test",
            "Internal note",
            "note",
            "Rang the landlord.\nNo answer.",
        ),
        (
            MONDAY_10 + timedelta(minutes=15),
            "agent@alpha.test",
            "SLA due: Tue 26 Nov 2030 05:00 → Mon 25 Nov 2030 07:00",
            "change",
            "",
        ),
        (MONDAY_10 + timedelta(minutes=15), "agent@alpha.test", "Priority: Normal → Urgent", "change", ""),
    ]


@pytest.mark.parametrize(
    ("field", "old", "new", "text"),
    [
        ("assignee", "", "a@x.test", "Assigned to a@x.test"),
        ("assignee", "a@x.test", "", "Unassigned (was a@x.test)"),
        ("callback_assignee", "", "a@x.test", "Callback taken by a@x.test"),
        ("callback_outcome", "", "No answer", "Callback attempt: No answer"),
        (
            "callback_due_at",
            "2030-11-25T09:00:00+00:00",
            "2030-11-25T15:00:00+00:00",
            "Callback rescheduled: Mon 25 Nov 2030 09:00 → Mon 25 Nov 2030 15:00",
        ),
        ("faq_added", "", "Do you fix boilers?", "Question added to the FAQ: Do you fix boilers?"),
        ("faq_dismissed", "", "Kettles?", "Question dismissed: Kettles?"),
        ("tags", "vip", "vip, landlord", "Tags: vip → vip, landlord"),
        ("category", "", "leak", "Category: none → leak"),
        ("due_at", "", "2030-11-25T15:00:00+00:00", "SLA due: none → Mon 25 Nov 2030 15:00"),
        ("caller_name", "Ann", "Anne", "Caller name: Ann → Anne"),
        ("mystery_field", "a", "b", "Mystery field: a → b"),
    ],
)
def test_change_wording(field: str, old: str, new: str, text: str) -> None:
    change = TicketChange(field=field, old_value=old, new_value=new)

    assert change_describe(change, ZoneInfo("UTC")) == text


def test_activity_of_a_ticket_is_two_queries(in_tenant_a, django_assert_num_queries) -> None:
    ticket = TicketFactory()
    for n in range(5):
        TicketNoteFactory(ticket=ticket, author=in_tenant_a.owner, body=f"note {n}")
        TicketChange.objects.create(ticket=ticket, actor=in_tenant_a.owner, field="subject", new_value=str(n))

    with django_assert_num_queries(2):
        entries = ticket_activity(ticket=ticket)

    assert len(entries) == 10


# --- callbacks ---------------------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
def test_callback_queue_filters_and_orders_by_due(in_tenant_a) -> None:
    agent = MembershipFactory(tenant=in_tenant_a.tenant).user
    owner = in_tenant_a.owner
    later_mine = CallbackFactory(due_at=MONDAY_10 + timedelta(hours=3), assignee=owner)
    overdue_theirs = CallbackFactory(due_at=MONDAY_10 - timedelta(hours=1), assignee=agent)
    undated = CallbackFactory(due_at=None)
    soon_nobodys = CallbackFactory(due_at=MONDAY_10 + timedelta(hours=1))
    CallbackFactory(due_at=MONDAY_10 - timedelta(hours=5), completed_at=MONDAY_10)

    def pks(show: str) -> list[int]:
        return [callback.pk for callback in callback_queue(actor=owner, show=show)]

    assert pks("all") == [overdue_theirs.pk, soon_nobodys.pk, later_mine.pk, undated.pk]
    assert pks("mine") == [later_mine.pk]
    assert pks("unassigned") == [soon_nobodys.pk, undated.pk]
    assert pks("overdue") == [overdue_theirs.pk]


@time_machine.travel(MONDAY_10, tick=False)
@pytest.mark.parametrize("show", ["all", "mine", "unassigned", "overdue"])
def test_callback_queue_leaves_out_callbacks_of_solved_tickets(in_tenant_a, show: str) -> None:
    owner = in_tenant_a.owner
    due = MONDAY_10 - timedelta(hours=1)
    waiting = CallbackFactory(due_at=due, assignee=owner, ticket=TicketFactory(status="open"))
    CallbackFactory(due_at=due, assignee=owner, ticket=TicketFactory(status="resolved"))
    CallbackFactory(due_at=due, ticket=TicketFactory(status="closed"))

    expected = [] if show == "unassigned" else [waiting.pk]
    assert [callback.pk for callback in callback_queue(actor=owner, show=show)] == expected


def test_recently_done_newest_first_and_limited(in_tenant_a) -> None:
    done = [CallbackFactory(completed_at=MONDAY_10 + timedelta(minutes=n), outcome="reached") for n in range(12)]
    CallbackFactory()

    recent = callbacks_recently_done()

    assert [callback.pk for callback in recent] == [callback.pk for callback in reversed(done)][:10]


# --- questions, members, categories, time zone ------------------------------------------------------------------


def test_open_questions_newest_first(in_tenant_a) -> None:
    first = UnansweredQuestionFactory()
    UnansweredQuestionFactory(status="dismissed")
    UnansweredQuestionFactory(status="converted")
    second = UnansweredQuestionFactory()

    assert [question.pk for question in unanswered_question_list()] == [second.pk, first.pk]


def test_unanswered_question_get_any_status_with_ticket_and_call(in_tenant_a, django_assert_num_queries) -> None:
    call = CallFactory()
    question = UnansweredQuestionFactory(status="dismissed", call=call)

    with django_assert_num_queries(1):
        found = unanswered_question_get(question_id=question.pk)
        assert (found.pk, found.ticket.pk, found.call.pk) == (question.pk, question.ticket_id, call.pk)
    with pytest.raises(UnansweredQuestion.DoesNotExist):
        unanswered_question_get(question_id=987654)


def test_ticket_unanswered_questions_in_the_order_asked(in_tenant_a) -> None:
    ticket = TicketFactory()
    first = UnansweredQuestionFactory(ticket=ticket, status="converted")
    second = UnansweredQuestionFactory(ticket=ticket)
    UnansweredQuestionFactory()  # another ticket's
    UnansweredQuestion.objects.filter(pk=first.pk).update(created_at=MONDAY_10)
    UnansweredQuestion.objects.filter(pk=second.pk).update(created_at=MONDAY_10 - timedelta(minutes=1))

    assert [q.pk for q in ticket_unanswered_questions(ticket=ticket)] == [second.pk, first.pk]


def test_members_are_the_tenants_active_users_by_email(in_tenant_a, tenant_b) -> None:
    MembershipFactory(tenant=in_tenant_a.tenant, user__email="zed@alpha.test")
    MembershipFactory(tenant=in_tenant_a.tenant, user__email="amy@alpha.test")
    MembershipFactory(tenant=in_tenant_a.tenant, user__email="gone@alpha.test", user__is_active=False)
    MembershipFactory(tenant=tenant_b.tenant, user__email="bob@beta.test")

    emails = [user.email for user in tenant_members(tenant=in_tenant_a.tenant)]

    assert emails == ["amy@alpha.test", "owner@alpha.test", "zed@alpha.test"]


def test_categories_are_configured_and_used_ones(in_tenant_a) -> None:
    AgentConfig.objects.update(categories=["leak", "billing"])
    TicketFactory(category="drains")
    TicketFactory(category="leak")
    TicketFactory(category="")

    assert ticket_categories() == ["billing", "drains", "leak"]
