"""The test call websocket: a member talks to their business's agent from the dashboard.

The page (``calls/test/``) sends the microphone as binary PCM16 frames and
two JSON messages (``start``, ``stop``); the server answers with the agent's
audio as binary PCM16 frames and JSON: ``started``, ``transcript`` lines as
they are said, each turn's ``latency``, ``clear`` on barge-in, and ``end``
with the ticket. The README ("The browser test call") is the protocol's
reference.

The consumer only speaks the protocol, as the Twilio one does: it checks who
is asking, validates each message and hands audio to the same
``CallSession`` and records a phone call gets. Anything malformed closes the
socket cleanly with 4008, and a call that had started is always finished,
so its record and ticket are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.urls import reverse
from django_tenants.utils import tenant_context

from calls.audio import AudioFormat, WireCodec
from calls.pipeline.factory import session_deps_for_call
from calls.pipeline.protocols import Pcm16, TransferStatus
from calls.pipeline.records import DatabaseCallRecords
from calls.pipeline.session import CallSession
from calls.selectors import call_ticket_id
from calls.services import TestCallRefusedError, call_finish, call_test_start
from calls.transports.capacity import VOICE_CAPACITY
from calls.transports.limits import CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, CLOSE_TRY_AGAIN, MessageBudget
from tenants.models import Membership, Tenant, User
from tenants.permissions import membership_has_role
from voicedesk.core.metrics import CALLS_IN_PROGRESS, STREAMS_REFUSED
from voicedesk.web.channels_tenancy import websocket_membership, websocket_same_origin

logger = structlog.get_logger(__name__)

WEBSOCKET_PATH = "ws/test-call/"
# Who may place a test call: the members who configure the agent.
ROLE = Membership.Role.ADMIN
# Rates a page may send; it states one in ``start``. The agent's audio comes back at the same rate.
SAMPLE_RATES = (8000, 16000, 24000, 48000)
DEFAULT_SAMPLE_RATE = 16000
AUDIO = AudioFormat(encoding="pcm16", sample_rate=DEFAULT_SAMPLE_RATE, frame_ms=20)
# The agent does not hear the browser's playback position: the session keeps time on its own clock.
REPORTS_PLAYBACK = False
# Control messages are a few dozen bytes.
MAX_TEXT_BYTES = 1_024
# A browser frame is 10-40 ms; anything over this is not live microphone audio.
MAX_FRAME_MS = 200
# The page sends "start" as soon as the socket opens.
START_DEADLINE_S = 10.0
# What the page shows when this voice process is running as many calls as it may.
NO_ROOM_MESSAGE = "Every line of the agent is busy right now; try again in a minute."
# 20 ms frames are 50 a second; room for a page that sends 10 ms frames and a catch-up burst.
MESSAGE_RATE = 120.0
MESSAGE_BURST = 300.0
# The ticket is made by a worker after the call ends; the page waits this long for its link.
TICKET_WAIT_S = 20.0
TICKET_POLL_S = 0.25
# Same meaning as the HTTP 404 the pages give: missing and forbidden look alike.
CLOSE_NOT_FOUND = 4404


class ProtocolError(Exception):
    """The page sent something the test call protocol does not allow."""


class BrowserTestCallConsumer(AsyncWebsocketConsumer):
    session: CallSession | None
    tenant: Tenant
    user: User

    async def connect(self) -> None:
        self.session = None
        self.call_id: int | None = None
        self.ended = False
        self.counted = False
        self.closed_by_peer = False
        self.log = logger.bind(transport="browser")
        self.budget = MessageBudget(rate=MESSAGE_RATE, burst=MESSAGE_BURST)
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.pump: asyncio.Task[None] | None = None
        tenant: Tenant | None = self.scope.get("tenant")
        user = self.scope.get("user")
        if (
            tenant is None
            or user is None
            or not user.is_authenticated
            or not websocket_same_origin(self.scope)
            or not membership_has_role(await websocket_membership(user.pk, tenant.pk), ROLE)
        ):
            # Refused before the handshake completes: the page gets no socket and nothing is made.
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.tenant, self.user = tenant, user
        self.log = self.log.bind(tenant=tenant.schema_name, user_id=user.pk)
        await self.accept()
        self.pump = asyncio.get_running_loop().create_task(self._pump(), name="test-call-outbox")
        self.start_deadline = asyncio.get_running_loop().create_task(self._start_deadline(), name="start-deadline")

    async def _start_deadline(self) -> None:
        await asyncio.sleep(START_DEADLINE_S)
        if self.session is None:
            await self._fail(f"no start within {START_DEADLINE_S:g} s")

    async def disconnect(self, code: int) -> None:
        if self.pump is None:
            return  # refused at connect
        self.closed_by_peer = True
        self.start_deadline.cancel()
        if self.session is not None and not self.session.finished:
            await self.session.finish("caller_hangup")
        self._uncount()
        self.outbox.put_nowait(None)

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            CALLS_IN_PROGRESS.labels(transport="browser").dec()
            VOICE_CAPACITY.release()

    # -- inbound -----------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.ended:
            return
        try:
            if not self.budget.take():
                raise ProtocolError(f"more than {MESSAGE_RATE:g} messages a second")
            if bytes_data is not None:
                self._on_audio(bytes_data)
            elif text_data is not None:
                await self._on_control(text_data)
        except ProtocolError as exc:
            await self._fail(str(exc))

    def _on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise ProtocolError("audio before start")
        limit = self.codec.wire.sample_rate * 2 * MAX_FRAME_MS // 1000
        if not data or len(data) % 2 or len(data) > limit:
            raise ProtocolError(f"audio frame of {len(data)} bytes; expected an even count up to {limit}")
        self.session.feed(self.codec.decode(data))

    async def _on_control(self, text: str) -> None:
        if len(text) > MAX_TEXT_BYTES:
            raise ProtocolError(f"message of {len(text)} bytes exceeds {MAX_TEXT_BYTES}")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"invalid JSON: {exc.msg}") from exc
        if not isinstance(message, dict):
            raise ProtocolError("message is not a JSON object")
        kind = message.get("type")
        if kind == "start":
            await self._on_start(message)
        elif kind == "stop":
            if self.session is None:
                raise ProtocolError("stop before start")
            await self._end("caller_hangup")
        else:
            raise ProtocolError(f"unknown message type {kind!r}")

    async def _on_start(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            raise ProtocolError("second start on one socket")
        rate = message.get("sample_rate", DEFAULT_SAMPLE_RATE)
        if isinstance(rate, bool) or rate not in SAMPLE_RATES:
            raise ProtocolError(f"sample_rate must be one of {SAMPLE_RATES}, not {rate!r}")
        self.codec = WireCodec(AudioFormat(encoding="pcm16", sample_rate=rate, frame_ms=AUDIO.frame_ms))
        # The start came in time; loading the agent (a cold process loads its models) may take longer.
        self.start_deadline.cancel()
        if not VOICE_CAPACITY.try_acquire():
            # A phone caller comes before a test call: nothing is made, the page may try again.
            self.ended = True
            STREAMS_REFUSED.labels(transport="browser").inc()
            self.outbox.put_nowait({"type": "error", "reason": NO_ROOM_MESSAGE})
            await self._close(code=CLOSE_TRY_AGAIN)
            return
        self.counted = True
        CALLS_IN_PROGRESS.labels(transport="browser").inc()
        try:
            call = await database_sync_to_async(call_test_start)(tenant=self.tenant, actor=self.user)
        except TestCallRefusedError as exc:
            self.ended = True
            self._uncount()
            self.outbox.put_nowait({"type": "error", "reason": str(exc)})
            await self._close(code=CLOSE_TRY_AGAIN)
            return
        self.call_id = call.pk
        self.log = self.log.bind(call_id=call.pk)
        try:
            deps = await session_deps_for_call(tenant=self.tenant, call=call)
        except Exception:
            # No session to finish it: the call is closed here, so no test call is left in progress.
            self.log.exception("test_call_setup_failed")
            self.ended = True
            self._uncount()
            await _call_close_unanswered(self.tenant, call.pk)
            self.outbox.put_nowait({"type": "error", "reason": "The agent could not be started; try again."})
            await self._close(code=CLOSE_INTERNAL_ERROR)
            return
        self.session = CallSession(
            deps=deps,
            sink=_BrowserSink(self),
            records=_LiveRecords(DatabaseCallRecords(tenant=self.tenant, call_id=call.pk), self.outbox.put_nowait),
            hangup=self._agent_hangup,
            reports_playback=REPORTS_PLAYBACK,
            checkpoint_s=settings.CALL_HEARTBEAT_S,
        )
        self.outbox.put_nowait(
            {"type": "started", "call_id": call.pk, "sample_rate": rate, "frame_ms": self.codec.wire.frame_ms}
        )
        self.session.start({"tenant": self.tenant.schema_name, "call_id": call.pk, "test_call": True})
        self.log.info("test_call_started")

    # -- ending --------------------------------------------------------------
    async def _end(self, reason: str) -> None:
        """Finish the call once, tell the page where its ticket is, and close."""
        if self.ended:
            return
        self.ended = True
        assert self.session is not None
        assert self.call_id is not None
        await self.session.finish(reason)
        self._uncount()
        ticket_id = await self._ticket_wait()
        self.outbox.put_nowait(
            {
                "type": "end",
                "reason": reason,
                "call_id": self.call_id,
                "call_url": reverse("calls:detail", args=[self.call_id]),
                "ticket_id": ticket_id,
                "ticket_url": reverse("tickets:detail", args=[ticket_id]) if ticket_id is not None else None,
            }
        )
        await self._close(code=1000)

    async def _ticket_wait(self) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TICKET_WAIT_S
        while not self.closed_by_peer:
            ticket_id = await _ticket_id(self.tenant, self.call_id)
            if ticket_id is not None or loop.time() >= deadline:
                return ticket_id
            await asyncio.sleep(TICKET_POLL_S)
        return None

    async def _fail(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.log.error("test_call_protocol_error", reason=reason)
        self.outbox.put_nowait({"type": "error", "reason": reason})
        if self.session is not None and not self.session.finished:
            await self.session.finish("protocol_error")
        self._uncount()
        await self._close(code=CLOSE_PROTOCOL_ERROR)

    async def _agent_hangup(self) -> None:
        await self._end("agent_hangup")

    async def _close(self, *, code: int) -> None:
        """Send what is queued for the page, then close."""
        if self.start_deadline is not asyncio.current_task():
            self.start_deadline.cancel()
        self.outbox.put_nowait(None)
        if self.pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.pump), timeout=5)
        await self.close(code=code)

    async def _pump(self) -> None:
        """JSON messages to the page, in the order they happened."""
        while (message := await self.outbox.get()) is not None:
            if not self.closed_by_peer:
                await self.send(text_data=json.dumps(message))


class _LiveRecords:
    """The call's records, stored as for any call, and shown on the page as they happen."""

    def __init__(self, stored: DatabaseCallRecords, show: Callable[[dict[str, Any]], None]) -> None:
        self._stored = stored
        self._show = show

    def utterance(
        self, *, speaker: str, text: str, start_s: float, end_s: float, confidence: float | None, interrupted: bool
    ) -> None:
        self._stored.utterance(
            speaker=speaker, text=text, start_s=start_s, end_s=end_s, confidence=confidence, interrupted=interrupted
        )
        self._show(
            {
                "type": "transcript",
                "speaker": speaker,
                "text": text,
                "start_s": round(start_s, 2),
                "end_s": round(end_s, 2),
                "interrupted": interrupted,
            }
        )

    def turn_latency(self, *, turn_index: int, **stages_ms: float) -> None:
        self._stored.turn_latency(turn_index=turn_index, **stages_ms)
        self._show({"type": "latency", "turn": turn_index, **{stage: round(ms) for stage, ms in stages_ms.items()}})

    def checkpoint(self, *, captured: dict[str, Any] | None, recording: bytes) -> None:
        self._stored.checkpoint(captured=captured, recording=recording)

    async def transfer(self, *, to: str, status: TransferStatus, captured: dict[str, Any] | None) -> None:
        await self._stored.transfer(to=to, status=status, captured=captured)

    async def finish(self, *, end_reason: str, outcome: dict[str, Any], completed: bool, recording: bytes) -> None:
        await self._stored.finish(end_reason=end_reason, outcome=outcome, completed=completed, recording=recording)


class _BrowserSink:
    """The session's outbound audio as binary PCM16 frames at the page's rate; barge-in tells the page to clear."""

    def __init__(self, consumer: BrowserTestCallConsumer) -> None:
        self._consumer = consumer

    async def send_frame(self, frame: Pcm16) -> None:
        if not self._consumer.closed_by_peer:
            await self._consumer.send(bytes_data=self._consumer.codec.encode(frame))

    async def send_mark(self, name: str) -> None:
        return None  # the page reports no playback

    async def clear(self) -> None:
        # Straight out, not behind the transcript: the page must stop playing now.
        if not self._consumer.closed_by_peer:
            await self._consumer.send(text_data=json.dumps({"type": "clear"}))


@database_sync_to_async
def _ticket_id(tenant: Tenant, call_id: int | None) -> int | None:
    if call_id is None:
        return None
    with tenant_context(tenant):
        return call_ticket_id(tenant=tenant, call_id=call_id)


@database_sync_to_async
def _call_close_unanswered(tenant: Tenant, call_id: int) -> None:
    with tenant_context(tenant):
        call_finish(call_id=call_id, end_reason="setup_failed", outcome={"completed": False}, completed=False)
