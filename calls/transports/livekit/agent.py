"""The LiveKit agent worker: takes dispatched jobs, joins each caller's room and runs the call session.

The worker speaks LiveKit's agent protocol (``GET {url}/agent`` websocket,
binary ``WorkerMessage``/``ServerMessage`` protobufs): it registers under
``LIVEKIT_AGENT_NAME``, answers each availability request (refusing jobs
past its capacity), takes assignments, and reports its load after every
change so the server spreads calls over the workers of every machine.

Each job finds its tenant (the job metadata our dispatch rule set, else the
dialled number), records the call exactly like the Twilio transport
(``call_start`` / ``call_admit`` / ``call_answer``) and runs the same
``CallSession`` with the same engines, policy and records. Room media goes
through ``room.AgentRoom``: the caller's 48 kHz frames in, the agent's
frames out, the queue cleared on barge-in. A caller the receptionist puts
through to a person is transferred by LiveKit SIP (``transfer.LiveKitTransferer``);
if that fails the conversation goes on in the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import structlog
from channels.db import database_sync_to_async
from django_tenants.utils import tenant_context
from livekit import rtc
from livekit.api import AccessToken, VideoGrants
from livekit.protocol import agent as agent_pb

from calls.audio import AudioFormat, SampleChunker, WireCodec, resample
from calls.hooks import call_access_for
from calls.models import Call
from calls.pipeline.factory import session_deps_for_call
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.pipeline.records import DatabaseCallRecords
from calls.pipeline.session import CallSession
from calls.services import OVER_CAPACITY, CallStateError, call_admit, call_answer
from calls.transports.livekit.room import AgentRoom, RoomConnector, RoomParticipant
from calls.transports.livekit.rules import livekit_configured
from calls.transports.livekit.services import livekit_call_open
from calls.transports.livekit.transfer import LiveKitTransferer
from calls.transports.livekit.transport import AUDIO
from calls.transports.twilio.twiml import turned_away_text
from tenants.models import Tenant
from voicedesk.core.metrics import CALLS_IN_PROGRESS

logger = structlog.get_logger(__name__)

PING_INTERVAL_S = 15.0
RECONNECT_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
WORKER_VERSION = "voicedesk"
# After the last frame of a message, how long the room's queue takes to play out before we leave.
PLAYOUT_TAIL_S = 1.0


# -- one call ------------------------------------------------------------------------------------


class _RoomSink:
    """The session's outbound audio as frames on the agent's published track."""

    def __init__(self, room: AgentRoom) -> None:
        self._room = room
        self._codec = WireCodec(AUDIO)
        # The resampler's output is a few samples short at first: frames leave whole.
        self._frames = SampleChunker(AUDIO.frame_samples, np.int16)

    async def send_frame(self, frame: Pcm16) -> None:
        wire = np.frombuffer(self._codec.encode(frame), dtype="<i2").astype(np.int16)
        for whole in self._frames.push(wire):
            await self._room.publish_frame(rtc.AudioFrame(whole.tobytes(), AUDIO.sample_rate, 1, len(whole)))

    async def send_mark(self, name: str) -> None:
        """Rooms report no playback; the session keeps time on its own clock."""

    async def clear(self) -> None:
        self._frames.clear()
        self._room.clear_queue()


class _CallerAudio:
    """The caller's frames to pipeline PCM, whatever rate and channels the room delivers."""

    def __init__(self) -> None:
        self._codecs: dict[int, WireCodec] = {}

    def decode(self, frame: rtc.AudioFrame) -> Pcm16:
        samples = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        codec = self._codecs.get(frame.sample_rate)
        if codec is None:
            codec = self._codecs[frame.sample_rate] = WireCodec(AudioFormat("pcm16", frame.sample_rate))
        return codec.decode(samples.tobytes())


@dataclass(frozen=True, slots=True)
class JobResult:
    call_id: int | None
    status: str  # answered | turned_away | unrouted


@dataclass(frozen=True, slots=True)
class _Begun:
    tenant: Tenant
    call: Call
    admitted: bool
    turned_away_text: str = ""


@database_sync_to_async
def _call_begin(room_name: str, caller: RoomParticipant, metadata: str, job_id: str) -> _Begun:
    """Open (or find) the call, decide admission and answer it: the same writes as the Twilio webhook and stream."""
    opened = livekit_call_open(
        room_name=room_name, attributes=caller.attributes, metadata=metadata, prefer_metadata=True
    )
    if opened is None:
        raise LookupError("no business for this call")
    tenant, call = opened
    admission = call_admit(tenant=tenant, call_id=call.pk, access=call_access_for(tenant))
    if not admission.admitted:
        text = turned_away_text(
            business_name=tenant.name, busy=admission.reason == OVER_CAPACITY, caller_known=bool(call.from_number)
        )
        return _Begun(tenant, call, admitted=False, turned_away_text=text)
    with tenant_context(tenant):
        call = call_answer(call_id=call.pk, stream_id=job_id)
    return _Begun(tenant, call, admitted=True)


async def _say_and_leave(room: AgentRoom, tts: TextToSpeech, text: str) -> None:
    """Speak ``text`` into the room in real time, let it play out, and leave."""
    frames = SampleChunker(AUDIO.frame_samples, np.int16)
    started = time.monotonic()
    sent = 0
    async for chunk in tts.synthesize(text):
        wire = resample(chunk, tts.sample_rate, AUDIO.sample_rate)
        for whole in frames.push(wire):
            await room.publish_frame(rtc.AudioFrame(whole.tobytes(), AUDIO.sample_rate, 1, len(whole)))
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * AUDIO.frame_ms / 1000 - time.monotonic()))
    await asyncio.sleep(PLAYOUT_TAIL_S)
    await room.disconnect()


async def run_call(*, room: AgentRoom, job: agent_pb.Job) -> JobResult:
    """Run one dispatched call in ``room`` from the caller's arrival to the end; the call is always finished."""
    log = logger.bind(transport="livekit", job_id=job.id, room=room.name)
    caller = await room.wait_for_sip_participant()
    try:
        begun = await _call_begin(room.name, caller, job.metadata, job.id)
    except LookupError:
        log.warning("livekit_job_unrouted")
        await room.disconnect()
        return JobResult(call_id=None, status="unrouted")
    except CallStateError as exc:
        log.warning("livekit_job_call_state", error=str(exc))
        await room.disconnect()
        return JobResult(call_id=None, status="unrouted")
    tenant, call = begun.tenant, begun.call
    log = log.bind(tenant=tenant.schema_name, call_id=call.pk)
    if not begun.admitted:
        # Turned away: the call is already finished with its ticket and callback; the caller hears why.
        log.info("livekit_call_turned_away")
        deps = await session_deps_for_call(tenant=tenant, call=call)
        await _say_and_leave(room, deps.tts, begun.turned_away_text)
        return JobResult(call_id=call.pk, status="turned_away")

    hung_up = asyncio.Event()

    async def agent_hangup() -> None:
        hung_up.set()

    # The caller can be put through to a person with LiveKit's SIP transfer (the API must be reachable).
    can_transfer = livekit_configured()
    deps = await session_deps_for_call(tenant=tenant, call=call, can_transfer=can_transfer)
    session = CallSession(
        deps=deps,
        sink=_RoomSink(room),
        records=DatabaseCallRecords(tenant=tenant, call_id=call.pk),
        hangup=agent_hangup,
        reports_playback=False,
        transferer=LiveKitTransferer(room_name=room.name, participant_identity=caller.identity)
        if can_transfer
        else None,
    )
    session.start({"tenant": tenant.schema_name, "call_id": call.pk})
    CALLS_IN_PROGRESS.labels(transport="livekit").inc()
    log.info("livekit_call_started")
    reason = "caller_hangup"
    listen = asyncio.create_task(_feed(session, room, caller), name="livekit-caller-audio")
    hangup_wait = asyncio.create_task(hung_up.wait(), name="livekit-agent-hangup")
    try:
        done, _ = await asyncio.wait({listen, hangup_wait}, return_when=asyncio.FIRST_COMPLETED)
        if hangup_wait in done:
            reason = "agent_hangup"
        elif listen.exception() is not None:
            reason = "media_error"
            log.error("livekit_caller_audio_failed", error=repr(listen.exception()))
    except asyncio.CancelledError:
        reason = "job_terminated"
        raise
    finally:
        for task in (listen, hangup_wait):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(listen, hangup_wait, return_exceptions=True)
        if not session.finished:
            await asyncio.shield(session.finish(reason))
        CALLS_IN_PROGRESS.labels(transport="livekit").dec()
        with contextlib.suppress(Exception):
            await room.disconnect()
        log.info("livekit_call_ended", reason=reason)
    return JobResult(call_id=call.pk, status="answered")


async def _feed(session: CallSession, room: AgentRoom, caller: RoomParticipant) -> None:
    audio = _CallerAudio()
    async for frame in room.caller_frames(caller):
        session.feed(audio.decode(frame))


# -- the worker ----------------------------------------------------------------------------------


@dataclass
class AgentWorker:
    """One worker process's connection to LiveKit; ``capacity`` calls at once."""

    url: str
    api_key: str
    api_secret: str
    agent_name: str
    capacity: int
    connector: RoomConnector
    worker_id: str = ""
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    jobs: dict[str, asyncio.Task[JobResult]] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)
    results: list[JobResult] = field(default_factory=list)
    refused: int = 0
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _seq: int = 0

    @property
    def load(self) -> float:
        return (len(self.jobs) + len(self.reserved)) / self.capacity if self.capacity else 1.0

    def _token(self) -> str:
        grants = VideoGrants(agent=True)
        return AccessToken(self.api_key, self.api_secret).with_grants(grants).to_jwt()

    def _agent_url(self) -> str:
        base = self.url.rstrip("/")
        for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
            if base.startswith(plain):
                base = secure + base.removeprefix(plain)
        return f"{base}/agent"

    async def run_forever(self) -> None:
        """Stay registered: reconnect with back-off when the server goes away."""
        attempt = 0
        while True:
            try:
                await self.run_once()
                attempt = 0
            except (aiohttp.ClientError, OSError) as exc:
                logger.warning("livekit_worker_disconnected", error=type(exc).__name__)
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            attempt += 1
            await asyncio.sleep(delay)

    async def run_once(self) -> None:
        """One connection: register, then serve the server's messages until it closes."""
        headers = {"Authorization": f"Bearer {self._token()}"}
        async with aiohttp.ClientSession() as http, http.ws_connect(self._agent_url(), headers=headers) as ws:
            self._ws = ws
            register = agent_pb.RegisterWorkerRequest(
                type=agent_pb.JT_ROOM, agent_name=self.agent_name, version=WORKER_VERSION
            )
            await self._send(agent_pb.WorkerMessage(register=register))
            pinger = asyncio.create_task(self._ping(), name="livekit-worker-ping")
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        await self._on_message(agent_pb.ServerMessage.FromString(msg.data))
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                        break
            finally:
                pinger.cancel()
                self._ws = None
                self.registered.clear()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            await self._send(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=int(time.time() * 1000))))

    async def _send(self, message: agent_pb.WorkerMessage) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_bytes(message.SerializeToString())

    async def _on_message(self, message: agent_pb.ServerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "register":
            self.worker_id = message.register.worker_id
            self.registered.set()
            await self._status()
            logger.info("livekit_worker_registered", worker_id=self.worker_id, capacity=self.capacity)
        elif kind == "availability":
            await self._on_availability(message.availability.job)
        elif kind == "assignment":
            self._on_assignment(message.assignment)
        elif kind == "termination":
            task = self.jobs.get(message.termination.job_id)
            if task is not None:
                task.cancel()

    async def _on_availability(self, job: agent_pb.Job) -> None:
        available = self.load < 1.0
        if available:
            self.reserved.add(job.id)
        else:
            self.refused += 1
            logger.info("livekit_job_refused", job_id=job.id, load=self.load)
        answer = agent_pb.AvailabilityResponse(
            job_id=job.id, available=available, participant_identity=f"agent-{job.id}", participant_name="Receptionist"
        )
        await self._send(agent_pb.WorkerMessage(availability=answer))
        await self._status()

    def _on_assignment(self, assignment: agent_pb.JobAssignment) -> None:
        job = assignment.job
        self.reserved.discard(job.id)
        url = assignment.url or self.url
        task = asyncio.create_task(self._job(job, url, assignment.token), name=f"livekit-job-{job.id}")
        self.jobs[job.id] = task

    async def _job(self, job: agent_pb.Job, url: str, token: str) -> JobResult:
        status, error = agent_pb.JS_SUCCESS, ""
        room: AgentRoom | None = None
        try:
            await self._job_status(job.id, agent_pb.JS_RUNNING)
            room = await self.connector.connect(url, token)
            result = await run_call(room=room, job=job)
            self.results.append(result)
            return result
        except asyncio.CancelledError:
            status, error = agent_pb.JS_CANCELLED, "terminated"
            raise
        except Exception as exc:
            # No caller came, or the room failed before the call began (a begun call is always finished).
            status, error = agent_pb.JS_FAILED, type(exc).__name__
            logger.exception("livekit_job_failed", job_id=job.id)
            return JobResult(call_id=None, status="failed")
        finally:
            self.jobs.pop(job.id, None)
            if room is not None and status != agent_pb.JS_SUCCESS:
                with contextlib.suppress(Exception):
                    await room.disconnect()
            with contextlib.suppress(Exception):
                await self._job_status(job.id, status, error)
                await self._status()

    async def _job_status(self, job_id: str, status: int, error: str = "") -> None:
        update = agent_pb.UpdateJobStatus(job_id=job_id, status=status, error=error)  # type: ignore[arg-type]
        await self._send(agent_pb.WorkerMessage(update_job=update))

    async def _status(self) -> None:
        """Report load: the server sends no new jobs to a full worker."""
        self._seq += 1
        full = self.load >= 1.0
        update = agent_pb.UpdateWorkerStatus(
            status=agent_pb.WS_FULL if full else agent_pb.WS_AVAILABLE,
            load=self.load,
            job_count=len(self.jobs),
            seq=self._seq,
        )
        await self._send(agent_pb.WorkerMessage(update_worker=update))
