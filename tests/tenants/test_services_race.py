"""Two sign-ups for one subdomain at the same moment, on separate connections.

Transactional: each sign-up commits on its own connection, as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django_tenants.utils import schema_exists, tenant_context

from calls.models import AgentConfig
from tenants.models import Domain, Tenant, User
from tenants.services import tenant_create

SLUG = "race-co"
SCHEMA = "race_co"


@pytest.fixture
def owners(transactional_db: None) -> Iterator[list[User]]:
    users = [User.objects.create_user(email=f"racer{i}@example.com", password="x" * 12) for i in range(2)]
    yield users
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


def _advisory_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def test_simultaneous_sign_ups_for_one_subdomain_make_one_tenant_and_never_drop_its_schema(
    owners: list[User],
) -> None:
    results: dict[int, object] = {}

    def sign_up(index: int) -> None:
        try:
            results[index] = tenant_create(name=f"Racer {index}", slug=SLUG, owner=owners[index])
        except ValidationError as exc:
            results[index] = exc.code
        finally:
            connection.close()

    # Hold the slug's lock so both sign-ups get past their first check and
    # queue on it; then let them go at once.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"tenant-schema:{SCHEMA}"])
        threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _advisory_waiters() < 2:
            assert time.monotonic() < deadline, "both sign-ups should be waiting on the slug's lock"
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)

    winners = [i for i, result in results.items() if isinstance(result, Tenant)]
    losers = [result for result in results.values() if not isinstance(result, Tenant)]
    assert len(winners) == 1
    assert losers == ["slug_taken"]
    tenant = Tenant.objects.get(schema_name=SCHEMA)
    assert tenant.name == f"Racer {winners[0]}"
    assert list(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True)) == ["race-co.localhost"]
    assert schema_exists(SCHEMA)
    with tenant_context(tenant):
        assert list(AgentConfig.objects.values_list("business_name", flat=True)) == [f"Racer {winners[0]}"]
