"""Writes a call's records from the event loop, in order, in the tenant's schema.

Writes go through one queue per call and run in a worker thread, so the
audio path never waits on the database or the disk, and each utterance is
stored as soon as it is final: a crash loses at most the one in flight. The
recording file is created when the call starts and grows at each
checkpoint, which is also the call's heartbeat.

The database may go away mid-call (a restart, a failover): a write that
fails on the connection is tried again, on a fresh connection, with growing
pauses for up to ``DB_RETRY_DEADLINE_S``, and the writes behind it wait in
order. The call itself never waits: the caller goes on talking to the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError, connection
from django_tenants.utils import tenant_context

from calls import services
from calls.audio import CALL_RATE
from calls.pipeline.protocols import TransferStatus
from calls.recordings import wav_append
from tenants.models import Tenant

logger = structlog.get_logger(__name__)

# How long a call's writes wait for the database to come back before one is given up (and logged).
DB_RETRY_DEADLINE_S = 120.0
DB_RETRY_FIRST_S = 0.25
DB_RETRY_MAX_S = 2.0


def _connection_drop() -> None:
    """Forget this thread's broken database connection, so the next query opens a fresh one."""
    # Django forgets the connection even when closing the dead socket fails.
    with contextlib.suppress(Exception):
        connection.close()


async def database_write_retrying(write: Callable[[], Any], *, call_id: int) -> Any:
    """Run ``write`` in the database thread; on a lost connection, reconnect and run it again until the deadline.

    Only connection failures are retried: a write the database refused (a
    constraint, bad data) fails at once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DB_RETRY_DEADLINE_S
    pause = DB_RETRY_FIRST_S
    attempt = 1
    while True:
        try:
            return await database_sync_to_async(write)()
        except (OperationalError, InterfaceError):
            if loop.time() + pause > deadline:
                raise
            logger.warning("call_record_write_retried", call_id=call_id, attempt=attempt, pause_s=pause)
            await database_sync_to_async(_connection_drop)()
            await asyncio.sleep(pause)
            pause = min(pause * 2, DB_RETRY_MAX_S)
            attempt += 1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class DatabaseCallRecords:
    """The ``CallRecords`` of a real call: services run under ``tenant_context``."""

    def __init__(self, *, tenant: Tenant, call_id: int, sample_rate: int = CALL_RATE) -> None:
        self.tenant = tenant
        self.call_id = call_id
        self._recording: Path | None = None
        self._queue: asyncio.Queue[Callable[[], Any] | None] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="call-records")
        self._queue.put_nowait(self._in_tenant(functools.partial(self._recording_start, sample_rate)))

    def _recording_start(self, sample_rate: int) -> None:
        self._recording = services.call_recording_start(call_id=self.call_id, sample_rate=sample_rate)

    def _recording_append(self, frames: bytes) -> None:
        # No file (its creation failed and was logged): the call goes on without one.
        if frames and self._recording is not None:
            wav_append(self._recording, frames)

    def _in_tenant(self, write: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with tenant_context(self.tenant):
                return write()

        return run

    async def _write_loop(self) -> None:
        while (write := await self._queue.get()) is not None:
            try:
                await database_write_retrying(self._in_tenant(write), call_id=self.call_id)
            except Exception:
                logger.exception("call_record_write_failed", call_id=self.call_id)

    def _write(self, service: Callable[..., Any], **fields: Any) -> None:
        """Queue ``service(call_id=..., **fields)``; writes run in order, off the event loop."""
        self._queue.put_nowait(functools.partial(service, call_id=self.call_id, **fields))

    def utterance(
        self, *, speaker: str, text: str, start_s: float, end_s: float, confidence: float | None, interrupted: bool
    ) -> None:
        self._write(
            services.utterance_record,
            speaker=speaker, text=text, start_s=start_s, end_s=end_s, confidence=confidence, interrupted=interrupted,
        )  # fmt: skip

    def turn_latency(self, *, turn_index: int, **stages_ms: float) -> None:
        self._write(services.turn_latency_record, turn_index=turn_index, **stages_ms)

    def checkpoint(self, *, captured: dict[str, Any] | None, recording: bytes) -> None:
        """Append ``recording`` to the file and write the heartbeat (with ``captured`` when it changed).

        Two writes: a heartbeat retried after a lost connection must not append the audio twice.
        """
        self._queue.put_nowait(functools.partial(self._recording_append, recording))
        self._write(services.call_heartbeat, captured=captured)

    async def transfer(self, *, to: str, status: TransferStatus, captured: dict[str, Any] | None) -> None:
        """Store the transfer in order with the other writes, and wait until it is stored.

        The transfer hooks run in the same write (``tickets`` makes the
        ticket), so it exists when this returns.
        """
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()

        def write() -> None:
            try:
                services.call_transfer_update(call_id=self.call_id, status=status, to=to, captured=captured)
            finally:
                loop.call_soon_threadsafe(_resolve, stored)

        self._queue.put_nowait(self._in_tenant(write))
        await stored

    async def finish(self, *, end_reason: str, outcome: dict[str, Any], completed: bool, recording: bytes) -> None:
        self._queue.put_nowait(self._in_tenant(lambda: self._recording_append(recording)))
        self._queue.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=10)
        await database_write_retrying(
            self._in_tenant(
                lambda: services.call_finish(
                    call_id=self.call_id,
                    end_reason=end_reason,
                    outcome=outcome,
                    completed=completed,
                )
            ),
            call_id=self.call_id,
        )
