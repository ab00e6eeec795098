"""The simulator's caller on a LiveKit phone line: SIP into an emulated room instead of Twilio Media Streams.

``RoomLine`` stands where ``CarrierStream`` stands for ``SimulatedCaller``:
a 20 ms clock sends the caller's μ-law line audio into the room as 48 kHz
``rtc.AudioFrame``s (what LiveKit SIP forwards) and plays the agent's
published frames back as μ-law, dropping what is queued when the agent
clears it (barge-in). ``LiveKitCaller`` dials through the emulator's SIP
entry instead of the Twilio webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
from livekit import rtc

from calls.audio import MULAW_FRAME_BYTES, MULAW_RATE, Resampler, mulaw_decode, mulaw_encode
from calls.transports.livekit.agent import AgentWorker
from calls.transports.livekit.emulator import EmulatedRoom, EmulatedRoomConnector, LiveKitEmulator
from voicedesk.simulator.caller import ConversationResult, SimulatedCaller
from voicedesk.simulator.carrier import CarrierError, PlayedFrame, StreamStats

FRAME_S = 0.02
CALLER = "+15557654321"
NUMBER = "+15550001001"
ROOM_RATE = 48000
SILENCE = bytes([0xFF]) * MULAW_FRAME_BYTES


async def ring_in(
    worker: AgentWorker, connector: EmulatedRoomConnector, livekit: LiveKitEmulator, *, to_number: str = NUMBER
) -> tuple[str, EmulatedRoom]:
    """Once ``worker`` is registered, a SIP caller rings ``to_number``.

    Returns the room's name, and the room the agent joined.
    """
    await asyncio.wait_for(worker.registered.wait(), 10)
    room_name = await asyncio.to_thread(livekit.sip_call_inbound, from_number=CALLER, to_number=to_number)
    room = await asyncio.wait_for(connector.joined.get(), 10)
    return room_name, room


class RoomLine:
    """The caller's phone, on a LiveKit room. Duck-types ``CarrierStream`` for ``SimulatedCaller``."""

    def __init__(
        self,
        room: EmulatedRoom,
        *,
        hang_up: Callable[[], None],
        on_tick: Callable[[PlayedFrame], None],
        on_media: Callable[[bytes, float], None],
        idle: Iterator[bytes] | None = None,
    ) -> None:
        self.room = room
        self._hang_up = hang_up
        self.on_tick, self.on_media, self._idle = on_tick, on_media, idle
        self.stats = StreamStats()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.started_at = 0.0
        self.last_speech_sent_at = 0.0
        self._outbound: deque[bytes] = deque()
        self._speech_done: deque[tuple[int, asyncio.Future[float]]] = deque()
        self._queued = self._sent = 0
        self._playback: deque[bytes] = deque()
        self._pending = np.zeros(0, dtype=np.int16)
        self._up = Resampler(MULAW_RATE, ROOM_RATE)
        self._down = Resampler(ROOM_RATE, MULAW_RATE)
        self._clock_task: asyncio.Task[None] | None = None
        room.on_publish = self._on_publish
        room.on_clear = self._on_clear
        room.on_disconnect = lambda: self._finish("server_closed")

    async def open(self) -> None:
        self.started_at = time.monotonic()
        self._clock_task = asyncio.create_task(self._clock(), name="room-line-clock")

    async def hang_up(self) -> None:
        if self.closed.is_set():
            return
        self._finish("caller_hangup")
        await asyncio.to_thread(self._hang_up)
        await self._stop_clock()

    async def wait_closed(self) -> None:
        await self.closed.wait()
        await self._stop_clock()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at if self.started_at else 0.0

    def speak(self, mulaw: bytes) -> asyncio.Future[float]:
        frames = [mulaw[i : i + MULAW_FRAME_BYTES] for i in range(0, len(mulaw), MULAW_FRAME_BYTES)]
        if frames and len(frames[-1]) < MULAW_FRAME_BYTES:
            frames[-1] = frames[-1].ljust(MULAW_FRAME_BYTES, b"\xff")
        self._outbound.extend(frames)
        self._queued += len(frames)
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if not frames:
            done.set_result(time.monotonic())
        else:
            self._speech_done.append((self._queued, done))
        return done

    @property
    def caller_speaking(self) -> bool:
        return bool(self._outbound)

    def stereo_wav(self) -> bytes:
        return b""

    # -- the agent's track, as the phone hears it -------------------------------------------
    def _on_publish(self, frame: rtc.AudioFrame) -> None:
        narrow = self._down.process(np.frombuffer(frame.data, dtype=np.int16).copy())
        self._pending = np.concatenate([self._pending, narrow])
        while self._pending.size >= MULAW_FRAME_BYTES:
            payload = mulaw_encode(self._pending[:MULAW_FRAME_BYTES])
            self._pending = self._pending[MULAW_FRAME_BYTES:]
            self._playback.append(payload)
            self.stats.frames_received += 1
            self.on_media(payload, time.monotonic())

    def _on_clear(self) -> None:
        self.stats.clears += 1
        self._playback.clear()

    # -- the 20 ms clock -----------------------------------------------------------------------
    async def _clock(self) -> None:
        tick = 0
        try:
            while not self.closed.is_set():
                due = self.started_at + tick * FRAME_S
                now = time.monotonic()
                if now < due:
                    await asyncio.sleep(due - now)
                    continue
                self._tick(tick, due)
                tick += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a dead clock must end the call, not hang it
            self._finish(f"clock_failed: {exc!r}")

    def _tick(self, tick: int, due: float) -> None:
        speaking = bool(self._outbound)
        if speaking:
            caller = self._outbound.popleft()
        else:
            caller = next(self._idle, SILENCE) if self._idle is not None else SILENCE
        wide = self._up.process(mulaw_decode(caller))
        if wide.size:
            self.room.caller_frame(rtc.AudioFrame(wide.tobytes(), ROOM_RATE, 1, wide.size))
        self.stats.ticks += 1
        if speaking:
            self.last_speech_sent_at = time.monotonic()
            self._sent += 1
            while self._speech_done and self._speech_done[0][0] <= self._sent:
                _, done = self._speech_done.popleft()
                if not done.done():
                    done.set_result(time.monotonic())
        agent = self._playback.popleft() if self._playback else None
        if agent is not None:
            self.stats.frames_played += 1
        self.on_tick(PlayedFrame(tick=tick, at=due, caller=caller, agent=agent))

    def _finish(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            for _, future in self._speech_done:
                if not future.done():
                    future.set_exception(CarrierError(f"the call ended ({reason}) while the caller was speaking"))
                    future.exception()
            self._speech_done.clear()
            self._outbound.clear()

    async def _stop_clock(self) -> None:
        task, self._clock_task = self._clock_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class LiveKitCaller(SimulatedCaller):
    """``SimulatedCaller`` dialling through LiveKit SIP (the emulator) into a room our agent joins."""

    def __init__(
        self, *args: object, emulator: LiveKitEmulator, connector: EmulatedRoomConnector, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.emulator, self.connector = emulator, connector
        self.room_name = ""

    async def _room(self) -> EmulatedRoom:
        """The room of this call, once the agent has joined it (other calls may be joining theirs)."""
        while self.room_name not in self.connector.rooms:
            await asyncio.sleep(0.02)
        return self.connector.rooms[self.room_name]

    async def run(self) -> ConversationResult:
        started = time.monotonic()
        try:
            self.room_name = await asyncio.to_thread(
                self.emulator.sip_call_inbound, from_number=self.caller.phone, to_number=self.to_number
            )
            self.result.call_sid = self.room_name
            room = await asyncio.wait_for(self._room(), 20)
            await room.wait_for_sip_participant()
            await self.talk_on(
                RoomLine(
                    room,
                    hang_up=lambda: self.emulator.sip_call_hangup(self.room_name),
                    on_tick=self._on_tick,
                    on_media=self._on_media,
                    idle=self.models.idle_noise(key=self.result.scenario_id),
                )
            )
        except CarrierError as exc:
            self.result.error = str(exc)
            self.result.end_reason = "carrier_error"
        finally:
            self.result.duration_s = round(time.monotonic() - started, 3)
        return self.result
