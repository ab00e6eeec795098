"""The queue fails: Redis down when calls end, and the Dramatiq worker killed while it makes a ticket.

Either way every finished call ends up with exactly one ticket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from calls.models import Call
from tests.factories import CallFactory, outcome
from tests.faults.conftest import Phones, RedisServer, running_fault_stack
from tests.live_stack import ServerStack, wait_for
from tickets.models import Ticket
from tickets.tasks import ticket_generate
from voicedesk.core.dramatiq_tenancy import send_in_schema

# One xdist worker runs them all: each starts its own servers, and two at once would starve both.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("faults")]


def _tickets(tenant: Any) -> list[tuple[int | None, str]]:
    with tenant_context(tenant):
        return sorted(Ticket.objects.values_list("call_id", "callback_number"))


def _calls(tenant: Any) -> list[Call]:
    with tenant_context(tenant):
        return list(Call.objects.order_by("pk"))


SWEEP_GRACE_S = 8


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack_on_own_redis(tenant_a: Any, redis_server: RedisServer, tmp_path: Path) -> Iterator[ServerStack]:
    # A sweep message the worker took before Redis went down may run seconds later on a busy
    # machine; a grace longer than the test's look while Redis is down keeps it from making the
    # tickets then, so the look checks only that the ticket messages were not sent.
    with running_fault_stack(
        tmp_path / "stack", REDIS_URL=redis_server.url, TICKET_SWEEP_GRACE_S=str(SWEEP_GRACE_S)
    ) as servers:
        yield servers


def test_calls_that_end_while_redis_is_down_get_their_ticket_once_it_is_back(
    stack_on_own_redis: ServerStack, redis_server: RedisServer, tenant_a
) -> None:
    tenant = tenant_a.tenant
    phones = Phones(stack_on_own_redis.base_url)
    try:
        for i in range(2):
            phones.call(f"+1555030{i:04d}")
        wait_for(
            lambda: [c.status for c in _calls(tenant)] == ["in_progress"] * 2, timeout_s=30, what="both calls answered"
        )
        redis_server.stop()
        for stream in phones.streams:
            phones.run(stream.hang_up())
        ended = wait_for(
            lambda: all(c.ended_at for c in _calls(tenant)) and _calls(tenant),
            timeout_s=30,
            what="both calls to end with Redis down",
        )
        ended_seen_at = time.monotonic()
    finally:
        phones.close()
    # The ticket messages could not be sent: nothing is made while Redis is down.
    time.sleep(3)
    assert _tickets(tenant) == []
    assert time.monotonic() - ended_seen_at < SWEEP_GRACE_S, "the look came too late to mean anything"

    redis_server.start()
    back_at = time.monotonic()
    wait_for(lambda: len(_tickets(tenant)) == 2, timeout_s=45, what="the ticket sweep to make both tickets")
    ticket_after_s = time.monotonic() - back_at

    assert [(c.status, c.end_reason) for c in ended] == [("abandoned", "caller_hangup")] * 2
    # The callers hung up before saying anything: tickets without a callback number.
    assert _tickets(tenant) == [(c.pk, "") for c in ended]
    # Further sweeps make no second ticket.
    time.sleep(4)
    assert _tickets(tenant) == [(c.pk, "") for c in ended]
    print(f"redis back -> tickets: {ticket_after_s:.1f} s")
    assert "call_finished_hook_failed" in stack_on_own_redis.log_path("daphne").read_text()


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps serving its first snapshot of the activity view.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return bool(cursor.fetchone()[0])


def test_a_worker_killed_while_making_a_ticket_leaves_exactly_one_after_restart(stack: ServerStack, tenant_a) -> None:
    tenant = tenant_a.tenant
    with tenant_context(tenant):
        call = CallFactory(ended_at=timezone.now(), captured=outcome())
    with tenant_context(tenant), transaction.atomic():
        # Hold the call's row, so the worker is caught inside ticket generation (waiting on it) when it is killed.
        Call.objects.select_for_update().get(pk=call.pk)
        send_in_schema(ticket_generate, tenant.schema_name, call.pk)
        wait_for(_waiting_on_a_lock, timeout_s=30, what="the worker to be inside ticket generation")
        stack.kill("worker")
        killed_at = time.monotonic()
    assert _tickets(tenant) == []

    stack.restart("worker")
    wait_for(lambda: _tickets(tenant), timeout_s=45, what="a ticket after the worker restarted")
    ticket_after_s = time.monotonic() - killed_at
    # The redelivered message and every later sweep find the ticket there.
    send_in_schema(ticket_generate, tenant.schema_name, call.pk)
    time.sleep(4)
    assert _tickets(tenant) == [(call.pk, "+15552013344")]
    with tenant_context(tenant):
        assert Ticket.objects.get().caller_name == "Maria Gonzalez"
    print(f"worker killed -> ticket: {ticket_after_s:.1f} s")
