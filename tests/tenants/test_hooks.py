"""Tenant provisioning fills the new schema through the hooks the apps above register."""

import pytest
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from billing.services import tenant_billing_erase
from calls.models import AgentConfig
from calls.services import agent_config_provision, tenant_recordings_erase
from tenants import hooks
from tenants.hooks import TenantCreated, tenant_created_hook_register
from tenants.models import AuditEvent, Domain, Membership, Tenant, User
from tenants.services import tenant_create


class HookFailedError(RuntimeError):
    pass


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user(email="hook-owner@example.com", password="x" * 12)


def test_calls_registers_the_agent_configuration_hook_at_start_up() -> None:
    assert hooks.tenant_created_hooks() == (agent_config_provision,)


def test_calls_and_billing_register_what_they_erase_of_a_tenant() -> None:
    assert set(hooks.tenant_erasure_hooks()) == {tenant_recordings_erase, tenant_billing_erase}


def test_hooks_run_in_the_new_schema_with_the_defaults_asked_for(owner, monkeypatch) -> None:
    seen: list[tuple[str, str, dict[str, object]]] = []
    monkeypatch.setattr(hooks, "_tenant_created_hooks", list(hooks.tenant_created_hooks()))
    tenant_created_hook_register(
        lambda event: seen.append((connection.schema_name, event.tenant.schema_name, dict(event.agent_defaults)))
    )

    tenant = tenant_create(name="Delta Locks", slug="delta-locks", owner=owner, agent_defaults={"greeting": "Hi!"})

    assert seen == [("delta_locks", "delta_locks", {"greeting": "Hi!"})]
    with tenant_context(tenant):
        assert list(AgentConfig.objects.values_list("business_name", "greeting")) == [("Delta Locks", "Hi!")]


def test_a_failing_hook_undoes_the_whole_provisioning(owner, monkeypatch) -> None:
    def failing(event: TenantCreated) -> None:
        raise HookFailedError("cannot fill the schema")

    monkeypatch.setattr(hooks, "_tenant_created_hooks", [*hooks.tenant_created_hooks(), failing])
    before = (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count(), AuditEvent.objects.count())

    with pytest.raises(HookFailedError):
        tenant_create(name="Echo Vents", slug="echo-vents", owner=owner)

    assert not schema_exists("echo_vents")
    assert (
        Tenant.objects.count(),
        Domain.objects.count(),
        Membership.objects.count(),
        AuditEvent.objects.count(),
    ) == before
