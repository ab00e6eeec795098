"""The Twilio Media Streams websocket: carrier frames in, agent audio out.

The consumer only speaks the protocol: it validates each message, checks
the stream token, and hands audio to the call's ``CallSession``. Anything
malformed is logged and the stream is closed cleanly; a call that had
started is still finished, so its record and ticket are never lost.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core import signing
from django_tenants.utils import tenant_context

from calls.audio import AudioFormat, WireCodec
from calls.models import Call
from calls.pipeline.factory import session_deps_for_call
from calls.pipeline.protocols import Pcm16, TransferStatus
from calls.pipeline.records import DatabaseCallRecords
from calls.pipeline.session import CallSession
from calls.services import CallStateError, call_answer
from calls.transports.capacity import VOICE_CAPACITY
from calls.transports.limits import CLOSE_PROTOCOL_ERROR, CLOSE_TRY_AGAIN, MessageBudget
from calls.transports.twilio.twiml import stream_token_verify
from tenants.models import Tenant
from voicedesk.core.metrics import CALLS_IN_PROGRESS, STREAMS_REFUSED

logger = structlog.get_logger(__name__)

# Twilio's frames are ~300 bytes; anything near this is not a media stream.
MAX_MESSAGE_BYTES = 16_384
MAX_MEDIA_PAYLOAD_BYTES = 1_600  # 200 ms of μ-law: Twilio sends 20 ms
AUDIO = AudioFormat(encoding="mulaw", sample_rate=8000, frame_ms=20)
# Twilio echoes each mark when playback reaches it.
REPORTS_PLAYBACK = True
# Bidirectional streams carry the caller's key presses as "dtmf" events.
KEYPAD = True
EXPECTED_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": AUDIO.sample_rate, "channels": 1}
# Twilio sends "start" right after connecting; a socket that says nothing is not a call.
START_DEADLINE_S = 10.0
# Messages per second a stream may sustain (Twilio sends 50 media frames a
# second, plus marks), and the burst it may send after a stall. The budget is
# counted as messages are read, so a stall of our own (a busy process) turns
# the carrier's steady stream into a backlog read at once: the burst covers
# half a minute of audio, far from a flood yet enough for any stall a call survives.
MESSAGE_RATE = 120.0
MESSAGE_BURST = 1_500.0


class ProtocolError(Exception):
    """The carrier sent something the Media Streams protocol does not allow."""


class TwilioMediaStreamConsumer(AsyncWebsocketConsumer):
    session: CallSession | None
    stream_sid: str
    # A media stream talks only to its carrier. Subscribed to the Redis channel
    # layer, a Redis outage would end every call in progress with it.
    channel_layer_alias = "media-streams-use-no-channel-layer"

    async def connect(self) -> None:
        self.session = None
        self.stream_sid = ""
        self.seen_connected = False
        self.codec = WireCodec(AUDIO)
        self.budget = MessageBudget(rate=MESSAGE_RATE, burst=MESSAGE_BURST)
        self.counted = False
        # Refused for lack of room: whatever the carrier still sends is ignored.
        self.refused = False
        self.log = logger.bind(transport="twilio")
        await self.accept()
        self.start_deadline = asyncio.get_running_loop().create_task(self._start_deadline(), name="start-deadline")

    async def _start_deadline(self) -> None:
        await asyncio.sleep(START_DEADLINE_S)
        if self.session is None:
            await self._fail(f"no start within {START_DEADLINE_S:g} s")

    async def disconnect(self, code: int) -> None:
        self.start_deadline.cancel()
        if self.session is not None and not self.session.finished:
            await self.session.finish("socket_closed")
        self._uncount()

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            CALLS_IN_PROGRESS.labels(transport="twilio").dec()
            VOICE_CAPACITY.release()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.refused:
            return
        try:
            if text_data is None:
                raise ProtocolError("binary frame; Media Streams messages are JSON text")
            if len(text_data) > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"message of {len(text_data)} bytes exceeds {MAX_MESSAGE_BYTES}")
            if not self.budget.take():
                raise ProtocolError(f"more than {MESSAGE_RATE:g} messages a second")
            try:
                message = json.loads(text_data)
            except json.JSONDecodeError as exc:
                raise ProtocolError(f"invalid JSON: {exc.msg}") from exc
            if not isinstance(message, dict):
                raise ProtocolError("message is not a JSON object")
            await self._dispatch(message)
        except ProtocolError as exc:
            await self._fail(str(exc))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "connected":
            self.seen_connected = True
        elif event == "start":
            await self._on_start(message)
        elif event == "media":
            self._on_media(message)
        elif event == "mark":
            self._require_started("mark")
            name = _field(message, "mark", "name")
            assert self.session is not None
            self.session.on_mark(str(name))
        elif event == "dtmf":
            self._require_started("dtmf")
            assert self.session is not None
            self.session.on_dtmf(str(_field(message, "dtmf", "digit"))[:1])
        elif event == "stop":
            self._require_started("stop")
            assert self.session is not None
            await self.session.finish("caller_hangup")
            self._uncount()
            await self.close()
        else:
            raise ProtocolError(f"unknown event {event!r}")

    async def _on_start(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            raise ProtocolError("second start on one stream")
        start = message.get("start")
        if not isinstance(start, dict):
            raise ProtocolError("start without a start object")
        media_format = start.get("mediaFormat") or {}
        if {k: media_format.get(k) for k in EXPECTED_FORMAT} != EXPECTED_FORMAT:
            raise ProtocolError(f"unsupported media format {media_format!r}; expected {EXPECTED_FORMAT}")
        params = start.get("customParameters") or {}
        try:
            grant = stream_token_verify(str(params.get("token", "")))
        except signing.BadSignature as exc:
            raise ProtocolError("missing, forged or expired stream token") from exc
        call_sid = str(start.get("callSid", ""))
        self.stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")
        if not VOICE_CAPACITY.try_acquire():
            # Not answered: the call stays ringing, and the carrier asks the
            # <Connect> action what next (another process, or a busy message and a ticket).
            await self._refuse()
            return
        self.counted = True
        CALLS_IN_PROGRESS.labels(transport="twilio").inc()
        tenant, call = await _call_for_stream(grant.schema_name, grant.call_id, call_sid, self.stream_sid)
        self.log = self.log.bind(tenant=tenant.schema_name, call_id=call.pk, call_sid=call_sid)
        deps = await session_deps_for_call(tenant=tenant, call=call, keypad=KEYPAD, can_transfer=True)
        self.session = CallSession(
            deps=deps,
            sink=_TwilioSink(self),
            records=DatabaseCallRecords(tenant=tenant, call_id=call.pk),
            hangup=self._agent_hangup,
            reports_playback=REPORTS_PLAYBACK,
            checkpoint_s=settings.CALL_HEARTBEAT_S,
            transferer=_TwilioTransferer(),
        )
        self.session.start({"tenant": tenant.schema_name, "call_id": call.pk})
        self.start_deadline.cancel()
        self.log.info("media_stream_started")

    async def _refuse(self) -> None:
        self.refused = True
        self.start_deadline.cancel()
        STREAMS_REFUSED.labels(transport="twilio").inc()
        self.log.warning(
            "media_stream_refused_no_capacity", in_use=VOICE_CAPACITY.in_use, capacity=VOICE_CAPACITY.capacity()
        )
        await self.close(code=CLOSE_TRY_AGAIN)

    def _on_media(self, message: dict[str, Any]) -> None:
        self._require_started("media")
        assert self.session is not None
        media = message.get("media")
        if not isinstance(media, dict):
            raise ProtocolError("media without a media object")
        if media.get("track", "inbound") != "inbound":
            return
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise ProtocolError("media without a payload")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError("media payload is not base64") from exc
        if not audio or len(audio) > MAX_MEDIA_PAYLOAD_BYTES:
            raise ProtocolError(f"media payload of {len(audio)} bytes")
        self.session.feed(self.codec.decode(audio))

    def _require_started(self, event: str) -> None:
        if self.session is None:
            raise ProtocolError(f"{event} before start")

    async def _fail(self, reason: str) -> None:
        self.log.error("media_stream_protocol_error", reason=reason)
        if self.session is not None and not self.session.finished:
            await self.session.finish("protocol_error")
        self._uncount()
        await self.close(code=CLOSE_PROTOCOL_ERROR)

    async def _agent_hangup(self) -> None:
        if self.session is not None:
            await self.session.finish("agent_hangup")
        self._uncount()
        await self.close()


class _TwilioTransferer:
    """Twilio transfers in TwiML: the stream ends and ``<Connect action>`` answers with a ``<Dial>``.

    The transfer is recorded as dialing before this is asked, so the session
    hands the call over and hangs up; the stream-ended webhook finds the
    number on the call, and the dial-ended webhook records how it went.
    """

    async def transfer(self, to: str) -> TransferStatus:
        return "handed_off"


class _TwilioSink:
    """The session's outbound audio as Media Streams messages, μ-law coded here."""

    def __init__(self, consumer: TwilioMediaStreamConsumer) -> None:
        self._consumer = consumer

    async def send_frame(self, frame: Pcm16) -> None:
        payload = base64.b64encode(self._consumer.codec.encode(frame)).decode("ascii")
        await self._send({"event": "media", "media": {"payload": payload}})

    async def send_mark(self, name: str) -> None:
        await self._send({"event": "mark", "mark": {"name": name}})

    async def clear(self) -> None:
        await self._send({"event": "clear"})

    async def _send(self, message: dict[str, Any]) -> None:
        await self._consumer.send(text_data=json.dumps({**message, "streamSid": self._consumer.stream_sid}))


def _field(message: dict[str, Any], obj: str, key: str) -> Any:
    inner = message.get(obj)
    if not isinstance(inner, dict) or key not in inner:
        raise ProtocolError(f"{message.get('event')} without {obj}.{key}")
    return inner[key]


@database_sync_to_async
def _call_for_stream(schema_name: str, call_id: int, call_sid: str, stream_sid: str) -> tuple[Tenant, Call]:
    tenant = Tenant.objects.filter(schema_name=schema_name, is_template=False).first()
    if tenant is None:
        raise ProtocolError("stream token names no tenant")
    with tenant_context(tenant):
        call = Call.objects.filter(pk=call_id).first()
        if call is None or call.carrier_call_id != call_sid:
            raise ProtocolError("stream token does not match the call")
        try:
            call = call_answer(call_id=call.pk, stream_id=stream_sid)
        except CallStateError as exc:
            raise ProtocolError(str(exc)) from exc
    return tenant, call
