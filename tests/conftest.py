"""Test-run fixtures: two tenants, created once per run on real PostgreSQL.

Every test that touches the database runs in a transaction that is rolled
back, so the tenants and their schemas are shared, never mutated for good.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from tenants.models import Tenant, User
from tenants.services import TEMPLATE_SCHEMA

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TenantFixture:
    tenant: Tenant
    owner: User
    host: str


TEST_TENANTS = (("alpha", "Alpha Plumbing", "+15550001001"), ("beta", "Beta Dental", "+15550001002"))


def _schema_drop(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def leftover_tenant_schemas_drop() -> list[str]:
    """Drop the schemas of tenants whose rows a transactional test's flush removed; return their names.

    Sign-up refuses a slug whose schema exists (it may be someone's data), so
    a scenario business provisioned by one transactional test could not be
    provisioned again by the next.
    """
    from tenants.services import RESERVED_SCHEMA_PREFIXES, RESERVED_SCHEMAS

    connection.set_schema_to_public()
    owned = set(Tenant.objects.values_list("schema_name", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        schemas = [row[0] for row in cursor.fetchall()]
    leftovers = [
        schema
        for schema in schemas
        if schema not in owned and schema not in RESERVED_SCHEMAS and not schema.startswith(RESERVED_SCHEMA_PREFIXES)
    ]
    for schema in leftovers:
        _schema_drop(schema)
    return leftovers


# The template schema this process built, by oid. A transactional test's
# flush removes the template's row but not its schema, and remaking the
# schema runs every tenant migration again: about 2 s before each such test.
_template_built: dict[str, int] = {}


def _schema_oid(schema: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _template_row_restore() -> None:
    """Give the template built earlier in this run its row back when a flush removed only the row.

    The same oid means no test dropped or remade the schema since, and the
    run's migrations cannot change, so the schema is current.
    """
    oid = _schema_oid(TEMPLATE_SCHEMA)
    if oid is None or _template_built.get(TEMPLATE_SCHEMA) != oid:
        return
    if not Tenant.objects.filter(schema_name=TEMPLATE_SCHEMA).exists():
        Tenant.objects.create(schema_name=TEMPLATE_SCHEMA, name="Template", is_template=True)


@pytest.fixture
def leftover_tenant_schemas_dropped(django_db_blocker: Any) -> None:
    """Start with no schema that lost its tenant row (for tests that provision scenario businesses)."""
    with django_db_blocker.unblock():
        leftover_tenant_schemas_drop()
        ensure_test_platform()


def ensure_test_platform() -> None:
    """Create the public site and the two test tenants unless they exist.

    Transactional tests end with a flush that empties tables but leaves
    schemas behind, so missing tenants are rebuilt (schemas included) and
    missing agent configurations restored.
    """
    from billing.services import plan_defaults_ensure
    from calls.models import AgentConfig
    from calls.services import agent_config_create_default
    from tenants.services import phone_number_register, tenant_create

    plan_defaults_ensure()  # platform rows a transactional test's flush removed
    present = Tenant.objects.filter(schema_name__in=[slug for slug, _, _ in TEST_TENANTS])
    if len(present) == len(TEST_TENANTS):
        for tenant in present:
            with tenant_context(tenant):
                if not AgentConfig.objects.exists():
                    agent_config_create_default(business_name=tenant.name)
        return
    # A test that ran requests or async code before may have left this
    # connection on a tenant schema; tenants are made from public.
    connection.set_schema_to_public()
    _template_row_restore()
    call_command("platform_init", stdout=io.StringIO())
    _template_built[TEMPLATE_SCHEMA] = _schema_oid(TEMPLATE_SCHEMA) or 0
    for slug, name, number in TEST_TENANTS:
        if Tenant.objects.filter(schema_name=slug).exists():
            continue
        _schema_drop(slug)
        owner, _ = User.objects.get_or_create(email=f"owner@{slug}.test")
        owner.set_password(PASSWORD)
        owner.save()
        tenant = tenant_create(name=name, slug=slug, owner=owner)
        phone_number_register(tenant=tenant, number=number)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        ensure_test_platform()
    yield
    _redis_namespaces_delete()
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # Thread-pool connections of async tests cannot be closed from here;
        # end them so the test database can be dropped.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _redis_namespaces_delete() -> None:
    """Drop this run's broker queues, channel groups and cache keys from Redis."""
    from django.conf import settings
    from redis import Redis

    client = Redis.from_url(settings.REDIS_URL)
    for name in ("DRAMATIQ_NAMESPACE", "CHANNELS_PREFIX", "CACHE_KEY_PREFIX"):
        for key in client.scan_iter(match=f"*{os.environ[name]}*", count=1000):
            client.delete(key)
    client.close()


def _tenant_fixture(slug: str) -> TenantFixture:
    ensure_test_platform()
    tenant = Tenant.objects.get(schema_name=slug)
    return TenantFixture(tenant=tenant, owner=User.objects.get(email=f"owner@{slug}.test"), host=f"{slug}.localhost")


@pytest.fixture
def tenant_a(db: None) -> TenantFixture:
    return _tenant_fixture("alpha")


@pytest.fixture
def tenant_b(db: None) -> TenantFixture:
    return _tenant_fixture("beta")


@pytest.fixture
def in_tenant_a(tenant_a: TenantFixture) -> Iterator[TenantFixture]:
    """Run the test body with tenant A's schema active, and reset it afterwards."""
    with tenant_context(tenant_a.tenant):
        yield tenant_a
    connection.set_schema_to_public()


@pytest.fixture
def client_a(tenant_a: TenantFixture) -> Client:
    """A client signed in as tenant A's owner, talking to tenant A's host."""
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_a.owner)
    return client


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """A new channel layer instance per test: its locks and buffers belong to the
    event loop that first used them, and every async test runs its own loop."""
    from channels.layers import channel_layers

    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _public_schema_after_each_test() -> Iterator[None]:
    """Requests to tenant hosts leave their schema on the connection; reset it."""
    yield
    connection.set_schema_to_public()
