"""PostgreSQL restarts in the middle of calls: the calls go on, their writes wait and land, nothing said is lost.

The restart is of a private cluster holding a copy of the test database (the
machine's server is shared), with real daphne, worker and scheduler processes
pointed at it. The callers stay silent: the agent greets them, asks again
after each silence and, after the third, says goodbye and hangs up, so every
call says the same lines, during and after the restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.faults.conftest import Phones, PostgresServer, running_fault_stack
from tests.live_stack import ServerStack, wait_for

# One xdist worker runs them all: each starts its own servers, and two at once would starve both.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("faults")]

CALLS = 3
# Production's: a database outage shorter than this never makes the sweeper give up a live call.
STALE_AFTER_S = "30"


@pytest.fixture
def postgres(tenant_a: Any, tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "postgres")
    try:
        server.create(connection.settings_dict)
        yield server
    finally:
        server.remove()


@pytest.fixture
def stack_on_own_postgres(postgres: PostgresServer, tmp_path: Path) -> Iterator[ServerStack]:
    with running_fault_stack(
        tmp_path / "stack", DATABASE_URL=postgres.url, CALL_STALE_AFTER_S=STALE_AFTER_S
    ) as servers:
        yield servers


def _calls(db: PostgresServer) -> list[tuple[int, str, str]]:
    return [(pk, status, reason) for pk, status, reason in db.query(
        "SELECT id, status, end_reason FROM calls_call ORDER BY id")]  # fmt: skip


def _said(db: PostgresServer) -> dict[int, list[tuple[str, float]]]:
    said: dict[int, list[tuple[str, float]]] = {}
    for call_id, speaker, start_s in db.query(
        "SELECT call_id, speaker, start_s FROM calls_utterance ORDER BY call_id, start_s"
    ):
        said.setdefault(call_id, []).append((speaker, start_s))
    return said


def test_a_database_restart_mid_call_loses_no_call_and_no_utterance(
    stack_on_own_postgres: ServerStack, postgres: PostgresServer
) -> None:
    stack = stack_on_own_postgres
    phones = Phones(stack.base_url)
    try:
        for i in range(CALLS):
            phones.call(f"+1555040{i:04d}")
        wait_for(
            lambda: len(_said(postgres)) == CALLS and _calls(postgres),
            timeout_s=60,
            what="every call answered and greeting",
        )
        restart_began = time.monotonic()
        postgres.stop()
        time.sleep(2.0)  # down: nothing answers
        postgres.start()
        outage_s = time.monotonic() - restart_began
        wait_for(
            lambda: [row[1:] for row in _calls(postgres)] == [("abandoned", "agent_hangup")] * CALLS or None,
            timeout_s=120,
            what="every call to end by the agent's goodbye",
        )
    finally:
        phones.close()
    calls = _calls(postgres)
    wait_for(lambda: len(postgres.query("SELECT id FROM tickets_ticket")) == CALLS, timeout_s=60, what="the tickets")

    said = _said(postgres)
    lines = {call_id: [speaker for speaker, _ in lines] for call_id, lines in said.items()}
    # Every call said the same four lines, each stored once: the greeting, two
    # prompts after a silence and, after the third silence, the goodbye.
    assert list(lines.values()) == [["agent"] * 4] * CALLS, lines
    first = next(iter(lines.values()))
    assert sorted(postgres.query("SELECT call_id FROM tickets_ticket")) == [(pk,) for pk, _, _ in calls]
    log = stack.log_path("daphne").read_text()
    assert "call_record_write_retried" in log
    assert "call_record_write_failed" not in log
    print(f"postgres restart (down {outage_s:.1f} s): {CALLS} calls went on, {len(first)} lines each stored")
