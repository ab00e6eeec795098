import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tenants.models import Membership, PhoneNumber, Tenant


def test_seed_demo_is_rerunnable_and_its_credentials_sign_in(tenant_a, tmp_path) -> None:
    secret = tmp_path / "demo-password"
    first, second = io.StringIO(), io.StringIO()

    call_command("seed_demo", credentials_file=str(secret), stdout=first)
    call_command("seed_demo", credentials_file=str(secret), stdout=second)

    password = re.search(r"Password:\s+(\S+)", first.getvalue()).group(1)
    assert re.search(r"Password:\s+(\S+)", second.getvalue()).group(1) == password
    assert Tenant.objects.filter(schema_name="acme").count() == 1
    assert PhoneNumber.objects.get(e164="+15550100100").tenant.schema_name == "acme"
    client = Client(HTTP_HOST="acme.localhost")
    response = client.post("/accounts/login/", {"login": "admin@acme.localhost", "password": password})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_tenant_create_command_uses_the_provisioning_service(db) -> None:
    out = io.StringIO()
    call_command(
        "tenant_create",
        "echo-hvac",
        name="Echo HVAC",
        owner_email="Boss@Echo.test",
        owner_password="a-long-enough-passphrase",
        stdout=out,
    )
    assert "Created Echo HVAC at echo-hvac.localhost" in out.getvalue()
    assert Membership.objects.get(tenant__schema_name="echo_hvac").user.email == "boss@echo.test"


def test_tenant_create_command_reports_bad_input_clearly(tenant_a) -> None:
    with pytest.raises(CommandError, match='"alpha" is already taken'):
        call_command("tenant_create", "alpha", name="Dup", owner_email="owner@alpha.test")
    with pytest.raises(CommandError, match="pass --owner-password"):
        call_command("tenant_create", "newco", name="New", owner_email="nobody@new.test")


def test_seed_demo_fills_the_demo_business_once(tenant_a, tmp_path) -> None:
    from django_tenants.utils import tenant_context

    from calls.models import Call
    from tickets.models import Callback, Ticket, TicketChange

    secret = tmp_path / "demo-password"
    first, second = io.StringIO(), io.StringIO()

    call_command("seed_demo", credentials_file=str(secret), stdout=first)
    acme = Tenant.objects.get(schema_name="acme")
    with tenant_context(acme):
        changes = TicketChange.objects.count()
    call_command("seed_demo", credentials_file=str(secret), stdout=second)

    assert "  Demo data:  40 calls, 44 tickets, 33 callbacks\n" in first.getvalue()
    assert "  Demo data:  40 calls, 44 tickets, 33 callbacks (already there)\n" in second.getvalue()
    with tenant_context(acme):
        assert (Call.objects.count(), Ticket.objects.count(), Callback.objects.count()) == (40, 44, 33)
        assert TicketChange.objects.count() == changes
    assert sorted(Membership.objects.filter(tenant=acme).values_list("user__email", "role")) == [
        ("admin@acme.localhost", "owner"),
        ("priya.shah@acme.localhost", "agent"),
        ("sam.rivera@acme.localhost", "agent"),
    ]
