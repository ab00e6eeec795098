"""API keys and sessions on the API: who gets in, who gets 401, who gets 404."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import ApiKey, Membership
from tenants.services import api_key_create, api_key_revoke
from tests.factories import MembershipFactory, TicketFactory, UserFactory
from tests.voicedesk.api.helpers import api_key_make, key_client
from tickets.models import Ticket, TicketChange

INVALID = {"detail": "Invalid API key."}
NOT_FOUND = {"detail": "Not found."}


@pytest.mark.parametrize("scheme", ["Bearer", "Api-Key", "bearer"])
def test_a_key_opens_its_own_tenants_api(tenant_a, scheme: str) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Burst pipe")

    response = key_client(tenant_a.host, api_key_make(tenant_a), scheme).get("/api/tickets/")

    assert response.status_code == 200
    assert [(t["id"], t["subject"]) for t in response.json()["results"]] == [(ticket.pk, "Burst pipe")]


def test_another_tenants_key_gets_404_everywhere_and_changes_nothing(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant):
        ticket_b = TicketFactory(subject="Beta's ticket")
    key_a = api_key_make(tenant_a)
    client = key_client(tenant_b.host, key_a)

    responses = [
        client.get("/api/tickets/"),
        client.get(f"/api/tickets/{ticket_b.pk}/"),
        client.post("/api/tickets/", {"subject": "Planted"}, content_type="application/json"),
        client.patch(f"/api/tickets/{ticket_b.pk}/", {"status": "closed"}, content_type="application/json"),
        client.post(f"/api/tickets/{ticket_b.pk}/notes/", {"body": "Planted"}, content_type="application/json"),
        client.get("/api/tickets/export.csv"),
        client.get("/api/calls/export.csv"),
        client.get("/api/agent-config/"),
        client.patch("/api/agent-config/", {"greeting": "Planted"}, content_type="application/json"),
    ]

    assert [(r.status_code, r.json()) for r in responses] == [(404, NOT_FOUND)] * len(responses)
    with tenant_context(tenant_b.tenant):
        assert list(Ticket.objects.values_list("subject", "status")) == [("Beta's ticket", "new")]
        assert TicketChange.objects.count() == 0
        from calls.models import AgentConfig

        assert AgentConfig.objects.get().greeting == ""
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0


def test_a_revoked_key_gets_401_with_the_standard_body(tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Old")
    api_key_revoke(tenant=tenant_a.tenant, key_id=key.pk, actor=tenant_a.owner)
    client = key_client(tenant_a.host, plaintext)

    listed = client.get("/api/tickets/")
    created = client.post("/api/tickets/", {"subject": "Too late"}, content_type="application/json")

    assert (listed.status_code, listed.json(), listed["WWW-Authenticate"]) == (401, INVALID, 'Bearer realm="api"')
    assert (created.status_code, created.json()) == (401, INVALID)
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0


def test_a_revoked_key_of_another_tenant_is_401_not_404(tenant_a, tenant_b) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Old")
    api_key_revoke(tenant=tenant_a.tenant, key_id=key.pk, actor=tenant_a.owner)

    response = key_client(tenant_b.host, plaintext).get("/api/tickets/")

    assert (response.status_code, response.json()) == (401, INVALID)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer vd_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer not-a-key",
        "Bearer",
        "Bearer two words",
        "Api-Key ",
    ],
)
def test_unknown_and_malformed_keys_get_401(tenant_a, header: str) -> None:
    response = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=header).get("/api/tickets/")

    assert (response.status_code, response.json()) == (401, INVALID)


def test_a_wrong_secret_with_a_real_prefix_gets_401(tenant_a) -> None:
    plaintext = api_key_make(tenant_a)
    prefix = plaintext.split("_")[1]

    response = key_client(tenant_a.host, f"vd_{prefix}_{'B' * 43}").get("/api/tickets/")

    assert (response.status_code, response.json()) == (401, INVALID)


def test_anonymous_requests_get_401(tenant_a) -> None:
    response = Client(HTTP_HOST=tenant_a.host).get("/api/tickets/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_key_stops_working_when_its_creator_is_no_longer_an_admin(tenant_a) -> None:
    admin = MembershipFactory(tenant=tenant_a.tenant, role="admin")
    _, plaintext = api_key_create(tenant=tenant_a.tenant, actor=admin.user, name="Theirs")
    client = key_client(tenant_a.host, plaintext)
    assert client.get("/api/tickets/").status_code == 200

    Membership.objects.filter(pk=admin.pk).update(role="agent")
    demoted = client.get("/api/tickets/")
    admin.delete()
    removed = client.get("/api/tickets/")

    detail = {"detail": "This API key's creator is no longer an admin of this business."}
    assert (demoted.status_code, demoted.json()) == (401, detail)
    assert (removed.status_code, removed.json()) == (401, detail)


def test_a_key_acts_as_its_creator_in_the_audit_trail(tenant_a) -> None:
    admin = MembershipFactory(tenant=tenant_a.tenant, role="admin", user=UserFactory(email="ops@alpha.test"))
    _, plaintext = api_key_create(tenant=tenant_a.tenant, actor=admin.user, name="Ops")

    response = key_client(tenant_a.host, plaintext).post(
        "/api/tickets/", {"subject": "From the CRM"}, content_type="application/json"
    )

    assert response.status_code == 201
    with tenant_context(tenant_a.tenant):
        assert list(TicketChange.objects.values_list("field", "actor_id")) == [("created", admin.user.pk)]


def test_last_used_is_recorded_at_most_once_a_minute(tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Busy")
    client = key_client(tenant_a.host, plaintext)
    start = timezone.now().replace(microsecond=0) + timedelta(minutes=1)

    with time_machine.travel(start, tick=False):
        client.get("/api/tickets/")
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/tickets/")
    after_30s = ApiKey.objects.get(pk=key.pk).last_used_at
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/tickets/")

    assert after_30s == start
    assert ApiKey.objects.get(pk=key.pk).last_used_at == start + timedelta(seconds=61)


def test_session_writes_need_the_csrf_token(tenant_a) -> None:
    client = Client(HTTP_HOST=tenant_a.host, enforce_csrf_checks=True)
    client.force_login(tenant_a.owner)

    client.get("/settings/api-keys/")  # a page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    refused = client.post("/api/tickets/", {"subject": "No token"}, content_type="application/json")
    accepted = client.post(
        "/api/tickets/", {"subject": "With token"}, content_type="application/json", headers={"X-CSRFToken": token}
    )

    assert (refused.status_code, refused.json()) == (403, {"detail": "CSRF Failed: CSRF token missing."})
    assert accepted.status_code == 201
    with tenant_context(tenant_a.tenant):
        assert list(Ticket.objects.values_list("subject", flat=True)) == ["With token"]


def test_key_writes_need_no_csrf_token(tenant_a) -> None:
    client = Client(
        HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {api_key_make(tenant_a)}", enforce_csrf_checks=True
    )

    response = client.post("/api/tickets/", {"subject": "Machine-made"}, content_type="application/json")

    assert response.status_code == 201


def test_signed_in_outsiders_get_404(tenant_a, tenant_b) -> None:
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_b.owner)

    response = client.post("/api/tickets/", {"subject": "Planted"}, content_type="application/json")

    assert response.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0
