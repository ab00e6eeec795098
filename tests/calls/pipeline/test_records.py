"""A call's records survive the database going away mid-call: writes wait, reconnect and land in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from calls.models import Call, Utterance
from calls.pipeline.records import DatabaseCallRecords
from calls.services import call_answer, call_start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _admin_connection() -> psycopg.Connection[Any]:
    """A connection of our own to the server's maintenance database, outside Django."""
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    )  # fmt: skip


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    conn = _admin_connection()
    name = connection.settings_dict["NAME"]
    try:
        yield conn
    finally:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        conn.close()


@pytest.fixture
def answered(tenant_a, settings, tmp_path) -> tuple[Any, Call]:
    settings.MEDIA_ROOT = tmp_path
    call = call_start(
        tenant=tenant_a.tenant, carrier="twilio", carrier_call_id="CA-db-1", from_number="+15557654321",
        to_number="+15550001001",
    )  # fmt: skip
    with tenant_context(tenant_a.tenant):
        call_answer(call_id=call.pk, stream_id="MZ-db-1")
    return tenant_a.tenant, call


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@database_sync_to_async
def _stored(tenant: Any, call_id: int) -> tuple[list[tuple[str, str]], Call]:
    with tenant_context(tenant):
        said = list(Utterance.objects.filter(call_id=call_id).order_by("start_s").values_list("speaker", "text"))
        return said, Call.objects.get(pk=call_id)


def _say(records: DatabaseCallRecords, speaker: str, text: str, at: float) -> None:
    records.utterance(speaker=speaker, text=text, start_s=at, end_s=at + 1, confidence=None, interrupted=False)


async def test_writes_made_while_the_database_is_gone_land_in_order_when_it_is_back(answered, admin, caplog) -> None:
    tenant, call = answered
    name = connection.settings_dict["NAME"]
    records = DatabaseCallRecords(tenant=tenant, call_id=call.pk)
    _say(records, "agent", "Thanks for calling, how can I help?", 0.0)
    while not (await _stored(tenant, call.pk))[0]:
        await asyncio.sleep(0.05)

    # The server goes away: the records' connection is cut and no new one is let in for 1.5 s.
    pid = await database_sync_to_async(_backend_pid)()
    admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    reopen = threading.Timer(
        1.5, lambda: _admin_connection().execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    )
    reopen.start()
    _say(records, "caller", "my boiler is leaking", 2.0)
    records.checkpoint(captured={"fields": {"reason": "my boiler is leaking"}}, recording=b"\x01\x00" * 2 * 160)
    _say(records, "agent", "Sorry to hear that. What is your name?", 4.0)
    _say(records, "caller", "Maria Gonzalez", 6.0)
    await records.finish(
        end_reason="caller_hangup", outcome={"fields": {"name": "Maria Gonzalez"}}, completed=False, recording=b""
    )
    reopen.join()

    said, stored = await _stored(tenant, call.pk)
    assert said == [
        ("agent", "Thanks for calling, how can I help?"),
        ("caller", "my boiler is leaking"),
        ("agent", "Sorry to hear that. What is your name?"),
        ("caller", "Maria Gonzalez"),
    ]
    assert (stored.status, stored.end_reason, stored.captured) == (
        "abandoned",
        "caller_hangup",
        {"fields": {"name": "Maria Gonzalez"}},
    )
    assert stored.heartbeat_at is not None
    assert stored.heartbeat_at > stored.answered_at
    assert "call_record_write_retried" in caplog.text
    assert "call_record_write_failed" not in caplog.text
