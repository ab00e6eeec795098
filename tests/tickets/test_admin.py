"""The ticket, callback and unanswered-question admins: every change through the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import AuditEvent, User
from tests.factories import (
    CallbackFactory,
    CallFactory,
    MembershipFactory,
    TicketFactory,
    UnansweredQuestionFactory,
    UserFactory,
)
from tickets.models import Callback, Ticket, TicketChange, UnansweredQuestion
from tickets.services import ticket_sweep_missing


def _form(ticket: Ticket, **changes: Any) -> dict[str, Any]:
    """The change form as the browser posts it, with ``changes`` applied."""
    data = {
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id or "",
        "category": ticket.category,
        "tags": ",".join(ticket.tags),
        "caller_name": ticket.caller_name,
        "callback_number": ticket.callback_number,
        "email": ticket.email,
        "description": ticket.description,
    }
    return data | changes


def _changes(tenant, ticket: Ticket) -> list[tuple[str, str, str, str]]:
    with tenant_context(tenant):
        return [
            (c.field, c.old_value, c.new_value, c.actor.email if c.actor else "")
            for c in TicketChange.objects.filter(ticket_id=ticket.pk).select_related("actor").order_by("id")
        ]


@pytest.fixture
def ticket(tenant_a) -> Ticket:
    with tenant_context(tenant_a.tenant):
        return TicketFactory(subject="Leaking tap in the kitchen", status="new", priority="normal")


@pytest.fixture
def admin_client(tenant_a) -> tuple[Client, User]:
    user = MembershipFactory(tenant=tenant_a.tenant, role="admin").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(user)
    return client, user


def test_changing_the_status_in_the_admin_goes_through_the_service_and_its_audit(client_a, tenant_a, ticket) -> None:
    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, status="open"))

    assert (response.status_code, response["Location"]) == (302, "/admin/tickets/ticket/")
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert _changes(tenant_a.tenant, ticket) == [("status", "new", "open", "owner@alpha.test")]


def test_a_new_priority_moves_the_due_time_and_is_audited(client_a, tenant_a, ticket) -> None:
    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, priority="urgent"))

    assert response.status_code == 302
    assert [row[0] for row in _changes(tenant_a.tenant, ticket)] == ["due_at", "priority"]
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).priority == "urgent"


def test_assigning_a_member_goes_through_ticket_assign(tenant_a, ticket, admin_client) -> None:
    client, admin_user = admin_client
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent", user__email="sam@alpha.test").user

    response = client.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, assignee=agent.pk))

    assert response.status_code == 302
    assert _changes(tenant_a.tenant, ticket) == [("assignee", "", "sam@alpha.test", admin_user.email)]


def test_only_members_are_offered_as_assignees_and_others_are_refused(client_a, tenant_a, tenant_b, ticket) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent", user__email="sam@alpha.test").user
    outsider = UserFactory(email="outsider@example.test")

    page = client_a.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, assignee=outsider.pk))

    offered = {choice.value for choice, _ in page.context["adminform"].form.fields["assignee"].choices if choice}
    assert offered == {tenant_a.owner.pk, agent.pk}
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    assert _changes(tenant_a.tenant, ticket) == []


def test_a_status_the_flow_does_not_allow_is_refused_and_nothing_changes(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        closed = TicketFactory(subject="Old job", status="closed")

    page = client_a.get(f"/admin/tickets/ticket/{closed.pk}/change/")
    response = client_a.post(
        f"/admin/tickets/ticket/{closed.pk}/change/", _form(closed, status="open", subject="Reopened")
    )

    assert [value for value, _ in page.context["adminform"].form.fields["status"].choices] == ["closed"]
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == [
        "Select a valid choice. open is not one of the available choices."
    ]
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.values_list("status", "subject").get(pk=closed.pk) == ("closed", "Old job")
    assert _changes(tenant_a.tenant, closed) == []


def test_a_blank_subject_is_refused_and_nothing_changes(client_a, tenant_a, ticket) -> None:
    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, subject="   "))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["subject"] == ["This field is required."]
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).subject == "Leaking tap in the kitchen"
    assert _changes(tenant_a.tenant, ticket) == []


def test_tickets_cannot_be_added_in_the_admin_and_no_ticket_number_is_used(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        before = TicketFactory(subject="Made by a call")

    changelist = client_a.get("/admin/tickets/ticket/")
    page = client_a.get("/admin/tickets/ticket/add/")
    response = client_a.post(
        "/admin/tickets/ticket/add/",
        {"subject": "Quote for a new water heater", "priority": "low", "tags": "quote"},
    )

    assert (changelist.status_code, page.status_code, response.status_code) == (200, 404, 404)
    assert changelist.context["has_add_permission"] is False
    assert "/admin/tickets/ticket/add/" not in changelist.content.decode()
    with tenant_context(tenant_a.tenant):
        assert list(Ticket.objects.values_list("subject", flat=True)) == ["Made by a call"]
        assert TicketChange.objects.count() == 0
        # The number sequence did not move: the next ticket is the next number.
        after = TicketFactory(subject="Made by the next call")
    assert after.pk == before.pk + 1


def test_search_by_ticket_number(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        wanted = TicketFactory(subject="Boiler pressure low")
        TicketFactory(subject="Something else")

    response = client_a.get("/admin/tickets/ticket/", {"q": f"T-{wanted.pk}"})

    assert [t.pk for t in response.context["cl"].result_list] == [wanted.pk]


def test_the_ticket_list_has_no_tickets_of_another_business(client_a, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant):
        TicketFactory(subject="Beta's root canal")
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="Alpha's leak")

    response = client_a.get("/admin/tickets/ticket/")

    assert [t.subject for t in response.context["cl"].result_list] == ["Alpha's leak"]


def test_an_admin_cannot_delete_a_ticket(tenant_a, ticket, admin_client) -> None:
    client, _ = admin_client

    response = client.post(f"/admin/tickets/ticket/{ticket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_the_owner_can_delete_a_ticket_and_the_platform_audit_keeps_a_trace(client_a, tenant_a, ticket) -> None:
    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not Ticket.objects.filter(pk=ticket.pk).exists()
    event = AuditEvent.objects.get(action="ticket.deleted")
    assert (event.tenant_id, event.actor_id, event.data) == (
        tenant_a.tenant.pk,
        tenant_a.owner.pk,
        {"ticket": f"T-{ticket.pk}", "subject": "Leaking tap in the kitchen"},
    )


def test_the_resolve_action_resolves_through_the_service(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        first = TicketFactory(status="open")
        closed = TicketFactory(status="closed")

    response = client_a.post(
        "/admin/tickets/ticket/",
        {"action": "resolve_selected", "_selected_action": [first.pk, closed.pk]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Resolved 1 ticket.", f"T-{closed.pk}: A closed ticket cannot become resolved."]
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=first.pk).status == "resolved"
        assert Ticket.objects.get(pk=closed.pk).status == "closed"
    assert _changes(tenant_a.tenant, first) == [("status", "open", "resolved", "owner@alpha.test")]


def test_callbacks_are_view_only(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(phone="+15550107777")

    page = client_a.get(f"/admin/tickets/callback/{callback.pk}/change/")
    response = client_a.post(f"/admin/tickets/callback/{callback.pk}/change/", {"phone": "+15550000000"})

    assert page.status_code == 200
    assert response.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert Callback.objects.get(pk=callback.pk).phone == "+15550107777"


def test_dismissing_unanswered_questions_uses_the_service(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        question = UnansweredQuestionFactory(question="Do you fix septic tanks?")

    response = client_a.post(
        "/admin/tickets/unansweredquestion/",
        {"action": "dismiss_selected", "_selected_action": [question.pk]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["Dismissed 1 question."]
    with tenant_context(tenant_a.tenant):
        assert UnansweredQuestion.objects.get(pk=question.pk).status == "dismissed"
    assert _changes(tenant_a.tenant, question.ticket) == [
        ("faq_dismissed", "", "Do you fix septic tanks?", "owner@alpha.test")
    ]


def test_the_change_page_links_to_the_help_desk_and_shows_the_activity(client_a, tenant_a, ticket) -> None:
    client_a.post(f"/admin/tickets/ticket/{ticket.pk}/change/", _form(ticket, status="open"))

    response = client_a.get(f"/admin/tickets/ticket/{ticket.pk}/change/")

    assert response.context["absolute_url"] == f"/tickets/{ticket.pk}/"
    html = response.content.decode()
    assert "Open in the help desk" in html
    assert "History" not in html
    assert "<td>owner@alpha.test</td><td>status</td><td>new</td><td>open</td>" in html


def test_deleting_a_phone_ticket_names_its_call_so_the_ticket_sweep_leaves_it(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(ended_at=timezone.now() - timedelta(minutes=5))
        ticket = TicketFactory(call=call, subject="Wrong number")

    response = client_a.post(f"/admin/tickets/ticket/{ticket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert AuditEvent.objects.get(action="ticket.deleted").data == {
        "ticket": f"T-{ticket.pk}",
        "subject": "Wrong number",
        "call_id": call.pk,
    }
    with tenant_context(tenant_a.tenant):
        assert ticket_sweep_missing() == []
        assert Ticket.objects.count() == 0
