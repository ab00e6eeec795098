"""Who gets into a business's own admin (``/admin/`` on its host): admins and owners of that business only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django import forms
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django_tenants.utils import tenant_context

from tenants.models import AuditEvent, User
from tenants.permissions import request_actor
from tests.factories import MembershipFactory, TicketFactory
from tickets.models import Ticket, TicketChange
from tickets.services import ticket_update
from voicedesk.web.admin_site import service_dry_run


def _client_for(host: str, user: User | None) -> Client:
    client = Client(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def admin_member(tenant_a) -> User:
    return MembershipFactory(tenant=tenant_a.tenant, role="admin").user


@pytest.fixture
def agent_member(tenant_a) -> User:
    return MembershipFactory(tenant=tenant_a.tenant, role="agent").user


def test_the_owner_sees_the_index_named_after_the_business(client_a) -> None:
    response = client_a.get("/admin/")

    assert response.status_code == 200
    assert response.context["site_header"] == "Alpha Plumbing admin"
    models = {model["object_name"] for app in response.context["app_list"] for model in app["models"]}
    assert models == {"AgentConfig", "Call", "FaqEntry", "Callback", "Ticket", "UnansweredQuestion"}


def test_an_admin_member_who_is_not_staff_gets_the_index_and_the_ticket_list(tenant_a, admin_member) -> None:
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="Dripping shower head")
    client = _client_for(tenant_a.host, admin_member)

    index = client.get("/admin/")
    tickets = client.get("/admin/tickets/ticket/")

    assert (index.status_code, tickets.status_code) == (200, 200)
    assert [t.subject for t in tickets.context["cl"].result_list] == ["Dripping shower head"]
    assert User.objects.get(pk=admin_member.pk).is_staff is False


@pytest.mark.parametrize("path", ["/admin/", "/admin/tickets/ticket/", "/admin/calls/agentconfig/", "/admin/login/"])
def test_an_agent_member_gets_404_everywhere_in_the_admin(tenant_a, agent_member, path: str) -> None:
    response = _client_for(tenant_a.host, agent_member).get(path)

    assert response.status_code == 404


def test_an_agent_cannot_change_a_ticket_through_the_admin(tenant_a, agent_member) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Leaking valve")

    response = _client_for(tenant_a.host, agent_member).post(
        f"/admin/tickets/ticket/{ticket.pk}/change/", {"subject": "Hijacked", "status": "closed", "priority": "low"}
    )

    assert response.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.values_list("subject", "status").get(pk=ticket.pk) == ("Leaking valve", "new")
        assert not ticket.changes.exists()


@pytest.mark.parametrize("path", ["/admin/", "/admin/tickets/ticket/"])
def test_the_owner_of_another_business_gets_404(tenant_a, tenant_b, path: str) -> None:
    response = _client_for(tenant_a.host, tenant_b.owner).get(path)

    assert response.status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_normal_sign_in(tenant_a) -> None:
    client = _client_for(tenant_a.host, None)

    page = client.get("/admin/tickets/ticket/")
    login = client.get("/admin/login/")

    assert page.status_code == 302
    assert page["Location"] == "/accounts/login/?next=/admin/tickets/ticket/"
    assert login.status_code == 302
    assert login["Location"] == "/accounts/login/?next=/admin/"


def test_a_signed_in_admin_on_the_login_page_goes_to_the_index(client_a) -> None:
    response = client_a.get("/admin/login/")

    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_password_change_is_the_normal_account_page(client_a) -> None:
    response = client_a.get("/admin/password_change/")

    assert (response.status_code, response["Location"]) == (302, "/accounts/password/change/")


def test_object_history_is_not_served_from_the_shared_log(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    response = client_a.get(f"/admin/tickets/ticket/{ticket.pk}/history/")

    assert response.status_code == 404


def test_admin_saves_leave_no_rows_in_the_shared_admin_log(client_a, tenant_a) -> None:
    from django.contrib.admin.models import LogEntry

    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Clogged drain", status="new")
    audits_before = AuditEvent.objects.count()

    response = client_a.post(
        f"/admin/tickets/ticket/{ticket.pk}/change/",
        {
            "subject": "Clogged drain",
            "status": "open",
            "priority": "normal",
            "assignee": "",
            "category": "leak",
            "tags": "",
            "caller_name": "Maria Gonzalez",
            "callback_number": "+15552013344",
            "email": "",
            "description": "Water under the sink.",
        },
    )

    assert response.status_code == 302
    assert LogEntry.objects.count() == 0
    assert AuditEvent.objects.count() == audits_before


class _SubjectForm(forms.Form):
    subject = forms.CharField()


def _bound_form() -> forms.Form:
    form = _SubjectForm(data={"subject": "x"})
    assert form.is_valid()
    return form


def test_a_dry_run_writes_nothing_and_sends_no_event(in_tenant_a, django_capture_on_commit_callbacks) -> None:
    ticket = TicketFactory(subject="Leaking tap", status="new")
    form = _bound_form()

    with django_capture_on_commit_callbacks() as callbacks:
        service_dry_run(form, lambda: ticket_update(ticket_id=ticket.pk, actor=None, subject="Only a rehearsal"))

    assert form.errors == {}
    assert Ticket.objects.values_list("subject", flat=True).get(pk=ticket.pk) == "Leaking tap"
    assert TicketChange.objects.filter(ticket_id=ticket.pk).count() == 0
    assert callbacks == []


def test_a_dry_run_puts_the_service_refusal_on_the_form(in_tenant_a) -> None:
    refused, by_field, unknown_field = _bound_form(), _bound_form(), _bound_form()

    ticket = TicketFactory(subject="Leaking tap")
    service_dry_run(refused, lambda: ticket_update(ticket_id=ticket.pk, actor=None, subject="   "))
    service_dry_run(by_field, lambda: _raise(ValidationError({"subject": "There is already one like it."})))
    service_dry_run(unknown_field, lambda: _raise(ValidationError({"colour": "Not blue."})))

    assert refused.errors == {"__all__": ["A ticket needs a subject."]}
    assert by_field.errors == {"subject": ["There is already one like it."]}
    assert unknown_field.errors == {"__all__": ["Not blue."]}


def _raise(error: Exception) -> None:
    raise error


@pytest.mark.parametrize("error", [ValueError("invalid literal for int()"), TypeError("unexpected keyword 'x'")])
def test_a_dry_run_lets_a_programming_error_through(in_tenant_a, error: Exception) -> None:
    form = _bound_form()

    with pytest.raises(type(error), match=str(error)):
        service_dry_run(form, lambda: _raise(error))

    assert form.errors == {}


def test_the_actor_of_an_admin_request_is_the_signed_in_user_or_nobody(tenant_a) -> None:
    signed_in, anonymous = RequestFactory().get("/admin/"), RequestFactory().get("/admin/")
    signed_in.user, anonymous.user = tenant_a.owner, AnonymousUser()

    assert (request_actor(signed_in), request_actor(anonymous)) == (tenant_a.owner, None)


@pytest.mark.parametrize("module", ["tickets/admin.py", "calls/admin.py", "tenants/admin.py"])
def test_the_admins_take_their_actor_from_request_actor(module: str) -> None:
    source = (Path(__file__).resolve().parents[3] / module).read_text()
    functions = {node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}

    assert "_actor" not in functions
    assert "isinstance(request.user, User)" not in source
    assert "request_actor(request)" in source


@pytest.mark.parametrize("model", ["tickets/ticket", "tickets/callback", "calls/call", "calls/faqentry"])
def test_an_id_only_another_business_has_is_404_and_changes_nothing(client_a, tenant_a, tenant_b, model: str) -> None:
    from tests.factories import CallbackFactory, CallFactory, FaqEntryFactory

    with tenant_context(tenant_b.tenant):
        ticket = TicketFactory(id=900_002, subject="Beta's ticket")
        CallbackFactory(id=900_002, ticket=ticket)
        CallFactory(id=900_002)
        FaqEntryFactory(id=900_002, question="Beta's question?")

    change = client_a.get(f"/admin/{model}/900002/change/")
    post = client_a.post(f"/admin/{model}/900002/change/", {"subject": "x", "question": "x", "answer": "x"})
    delete = client_a.post(f"/admin/{model}/900002/delete/", {"post": "yes"})

    assert (change.status_code, post.status_code, delete.status_code) == (404, 404, 404)
    with tenant_context(tenant_b.tenant):
        assert Ticket.objects.get(pk=900_002).subject == "Beta's ticket"
        from calls.models import FaqEntry

        assert FaqEntry.objects.get(pk=900_002).question == "Beta's question?"
