"""Writes a call's records from the event loop, in order, in the tenant's schema.

Writes go through one queue per call and run in a worker thread, so the
audio path never waits on the database or the disk, and each utterance is
stored as soon as it is final: a crash loses at most the one in flight. The
recording file is created when the call starts and grows at each
checkpoint, which is also the call's heartbeat.
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
from django_tenants.utils import tenant_context

from calls import services
from calls.audio import CALL_RATE
from calls.recordings import wav_append
from tenants.models import Tenant

logger = structlog.get_logger(__name__)


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
                await database_sync_to_async(self._in_tenant(write))()
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

    def turn_latency(
        self, *, turn_index: int, transcript_ms: float, decision_ms: float, first_audio_ms: float, first_frame_ms: float
    ) -> None:
        self._write(
            services.turn_latency_record,
            turn_index=turn_index, transcript_ms=transcript_ms, decision_ms=decision_ms,
            first_audio_ms=first_audio_ms, first_frame_ms=first_frame_ms,
        )  # fmt: skip

    def checkpoint(self, *, captured: dict[str, Any] | None, recording: bytes) -> None:
        """Append ``recording`` to the file and write the heartbeat (with ``captured`` when it changed)."""

        def write() -> None:
            self._recording_append(recording)
            services.call_heartbeat(call_id=self.call_id, captured=captured)

        self._queue.put_nowait(self._in_tenant(write))

    async def finish(self, *, end_reason: str, outcome: dict[str, Any], completed: bool, recording: bytes) -> None:
        self._queue.put_nowait(self._in_tenant(lambda: self._recording_append(recording)))
        self._queue.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=10)
        await database_sync_to_async(
            self._in_tenant(
                lambda: services.call_finish(
                    call_id=self.call_id,
                    end_reason=end_reason,
                    outcome=outcome,
                    completed=completed,
                )
            )
        )()
