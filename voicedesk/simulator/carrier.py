"""The carrier side of a Twilio call: the signed voice webhook and the Media Stream.

``dial`` POSTs the voice webhook exactly as Twilio does (form params signed
with the auth token over the full URL) and reads the TwiML answer.
``CarrierStream`` then plays the Media Streams protocol (see
``shared/reference/protocols.md`` §6) from Twilio's side:

* it sends ``connected``, ``start`` (with the TwiML ``<Parameter>`` values as
  ``customParameters``), one ``media`` message every 20 ms on a monotonic
  clock (caller speech when there is some, μ-law silence otherwise) and
  ``stop`` on hang-up, numbering every message like Twilio
  (``sequenceNumber``, ``media.chunk``, ``media.timestamp``);
* it emulates Twilio's playback buffer for the agent's audio: frames are
  queued and played out in real time, one per tick; a ``mark`` is echoed when
  playback reaches it; ``clear`` drops the queued audio and echoes the marks
  that were still pending.

What the caller "hears" is what the buffer plays, tick by tick, so agent
turns, latencies and the recording are measured the way a phone would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import secrets
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from calls.audio import MULAW_FRAME_BYTES, MULAW_RATE, MULAW_SILENCE, mulaw_decode

FRAME_S: Final = 0.02
SILENCE_FRAME: Final = bytes([MULAW_SILENCE]) * MULAW_FRAME_BYTES
VOICE_WEBHOOK_PATH: Final = "/twilio/voice"
# Inbound gaps longer than this are pauses between turns, not jitter.
_BURST_GAP_S: Final = 0.5
# If the event loop stalls, catch up by at most this many ticks at once
# rather than flooding the server with a long backlog.
_MAX_CATCH_UP_TICKS: Final = 50


def _server_closed(code: int | str | None) -> str:
    """How a stream the server ended is reported: with its close code unless it was a normal close."""
    return f"server_closed ({code})" if code not in (None, 1000) else "server_closed"


class CarrierError(Exception):
    """The product did not answer the call the way a carrier needs."""


def new_sid(prefix: str) -> str:
    """A Twilio-style id: two-letter prefix and 32 hex digits (CA... calls, MZ... streams)."""
    return prefix + secrets.token_hex(16)


# -- the voice webhook ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamInstructions:
    """What the TwiML ``<Connect><Stream>`` tells the carrier to do."""

    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    # ``<Connect action>``: where the carrier asks what next once the stream has ended.
    action: str = ""


def webhook_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def parse_twiml(document: str) -> StreamInstructions:
    """The stream URL and parameters of a ``<Connect><Stream>`` answer.

    Raises ``CarrierError`` for any other answer, quoting a ``<Say>`` if the
    product spoke instead (e.g. an unknown number).
    """
    try:
        root = ET.fromstring(document)  # noqa: S314 - our own server's answer, on loopback
    except ET.ParseError as exc:
        raise CarrierError(f"the voice webhook did not answer TwiML: {exc}: {document[:200]!r}") from exc
    stream = root.find("./Connect/Stream")
    if stream is None:
        said = " ".join((say.text or "").strip() for say in root.iter("Say"))
        detail = f" (it said: {said!r})" if said else ""
        raise CarrierError(f"the TwiML has no <Connect><Stream>{detail}")
    url = stream.get("url", "")
    if not url.startswith(("ws://", "wss://")):
        raise CarrierError(f"<Stream url={url!r}> is not a websocket URL")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    connect = root.find("./Connect")
    action = connect.get("action", "") if connect is not None else ""
    return StreamInstructions(url=url, parameters=parameters, action=action)


async def dial(
    base_url: str,
    *,
    call_sid: str,
    from_number: str,
    to_number: str,
    account_sid: str,
    auth_token: str,
    timeout_s: float = 15.0,
) -> StreamInstructions:
    """POST the signed voice webhook for a new call; return the stream to connect."""
    url = base_url.rstrip("/") + VOICE_WEBHOOK_PATH
    params = _call_params(call_sid=call_sid, from_number=from_number, to_number=to_number, account_sid=account_sid)
    return parse_twiml(await _post_signed(url, params, auth_token=auth_token, timeout_s=timeout_s))


async def stream_ended(
    base_url: str,
    action: str,
    *,
    call_sid: str,
    from_number: str,
    to_number: str,
    account_sid: str,
    auth_token: str,
    timeout_s: float = 15.0,
) -> str:
    """POST the signed ``<Connect action>`` request Twilio makes once the stream has ended; return the TwiML."""
    url = urllib.parse.urljoin(base_url.rstrip("/") + VOICE_WEBHOOK_PATH, action)
    params = _call_params(call_sid=call_sid, from_number=from_number, to_number=to_number, account_sid=account_sid)
    params["CallStatus"] = "in-progress"
    return await _post_signed(url, params, auth_token=auth_token, timeout_s=timeout_s)


def _call_params(*, call_sid: str, from_number: str, to_number: str, account_sid: str) -> dict[str, str]:
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": from_number,
        "To": to_number,
    }


async def _post_signed(url: str, params: dict[str, str], *, auth_token: str, timeout_s: float) -> str:
    # The server validates against the URL it sees, which is this one as long
    # as the Host header is the base URL's host (urllib sends exactly that).
    headers = {
        "X-Twilio-Signature": webhook_signature(url, params, auth_token),
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
    }
    body = urllib.parse.urlencode(params).encode()

    def post() -> str:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return str(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")[:300]
            raise CarrierError(f"POST {url} answered HTTP {exc.code}: {text!r}") from exc
        except OSError as exc:
            raise CarrierError(f"POST {url} failed: {exc}") from exc

    return await asyncio.to_thread(post)


# -- Twilio's playback buffer --------------------------------------------------------


@dataclass(slots=True)
class _Mark:
    name: str


class PlaybackBuffer:
    """Agent audio queued at the carrier, played 20 ms per tick, with marks in between.

    Not thread-safe; one per stream, used from its event loop.
    """

    def __init__(self) -> None:
        self._items: deque[bytes | _Mark] = deque()
        self._frames = 0
        self._partial = b""

    @property
    def buffered_frames(self) -> int:
        """Frames queued and not yet played."""
        return self._frames

    def push_media(self, payload: bytes) -> None:
        """Queue agent audio; payloads of any length are played as 20 ms frames."""
        data = self._partial + payload
        usable = len(data) - len(data) % MULAW_FRAME_BYTES
        for i in range(0, usable, MULAW_FRAME_BYTES):
            self._items.append(data[i : i + MULAW_FRAME_BYTES])
            self._frames += 1
        self._partial = data[usable:]

    def push_mark(self, name: str) -> list[str]:
        """Queue a mark; return the marks to echo now (this one, if nothing is queued before it)."""
        self._flush_partial()
        if not self._frames:
            return [name]
        self._items.append(_Mark(name))
        return []

    def play(self) -> tuple[bytes | None, list[str]]:
        """Play one tick: the frame played (None if the buffer is empty) and the marks it reached."""
        frame: bytes | None = None
        reached: list[str] = []
        while self._items and isinstance(self._items[0], _Mark):
            reached.append(self._items.popleft().name)  # type: ignore[union-attr]
        if self._items:
            frame = self._items.popleft()  # type: ignore[assignment]
            self._frames -= 1
        elif self._partial:
            frame = self._partial.ljust(MULAW_FRAME_BYTES, bytes([MULAW_SILENCE]))
            self._partial = b""
        # Marks right behind the frame are reached the moment it finishes.
        while self._items and isinstance(self._items[0], _Mark):
            reached.append(self._items.popleft().name)  # type: ignore[union-attr]
        return frame, reached

    def clear(self) -> list[str]:
        """Drop all queued audio; return the marks that were pending, in order."""
        pending = [item.name for item in self._items if isinstance(item, _Mark)]
        self._items.clear()
        self._frames = 0
        self._partial = b""
        return pending

    def _flush_partial(self) -> None:
        if self._partial:
            self._items.append(self._partial.ljust(MULAW_FRAME_BYTES, bytes([MULAW_SILENCE])))
            self._frames += 1
            self._partial = b""


# -- the media stream ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayedFrame:
    """One 20 ms tick of the call, as the caller's phone experienced it."""

    tick: int
    at: float  # monotonic time the tick was due
    caller: bytes  # the μ-law frame sent to the server
    agent: bytes | None  # the agent frame played out, None when the buffer was empty


@dataclass(slots=True)
class StreamStats:
    """Timing of one stream from the carrier's side."""

    ticks: int = 0
    send_lateness_max_s: float = 0.0  # worst delay of our own clock (an overloaded simulator)
    send_late_ticks: int = 0  # ticks sent more than one frame late
    # Longest wait inside one websocket send: the server not reading (backpressure).
    send_block_max_s: float = 0.0
    frames_received: int = 0
    frames_played: int = 0
    clears: int = 0
    marks_received: int = 0
    marks_echoed: int = 0
    playback_gaps: int = 0  # the buffer ran dry for 20-500 ms mid-speech: a stutter
    arrival_jitter_s: list[float] = field(default_factory=list)  # |gap - 20 ms| within bursts

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers for reports."""
        jitter = sorted(self.arrival_jitter_s)

        def pct(q: float) -> float | None:
            if not jitter:
                return None
            return round(jitter[min(len(jitter) - 1, int(q * len(jitter)))] * 1000, 2)

        return {
            "ticks": self.ticks,
            "frames_received": self.frames_received,
            "frames_played": self.frames_played,
            "clears": self.clears,
            "marks_received": self.marks_received,
            "marks_echoed": self.marks_echoed,
            "playback_gaps": self.playback_gaps,
            "arrival_jitter_ms": {
                "mean": round(statistics.fmean(jitter) * 1000, 2) if jitter else None,
                "p50": pct(0.5),
                "p95": pct(0.95),
                "p99": pct(0.99),
                "max": round(jitter[-1] * 1000, 2) if jitter else None,
            },
            "send_lateness_max_ms": round(self.send_lateness_max_s * 1000, 2),
            "send_late_ticks": self.send_late_ticks,
            "send_block_max_ms": round(self.send_block_max_s * 1000, 2),
        }


class CarrierStream:
    """One Media Streams websocket, driven from the carrier's side.

    Use ``await stream.open()``, then ``speak`` caller audio and watch
    ``on_tick`` for what is played; ``await stream.hang_up()`` ends the call.
    ``closed`` is set when the stream is over, whoever ended it.
    """

    def __init__(
        self,
        instructions: StreamInstructions,
        *,
        call_sid: str,
        account_sid: str,
        stream_sid: str | None = None,
        on_tick: Callable[[PlayedFrame], None] | None = None,
        on_media: Callable[[bytes, float], None] | None = None,
        record: bool = False,
        connect_timeout_s: float = 10.0,
        idle: Iterator[bytes] | None = None,
    ) -> None:
        self.instructions = instructions
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = stream_sid or new_sid("MZ")
        self.on_tick = on_tick
        self.on_media = on_media
        self.stats = StreamStats()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.playback = PlaybackBuffer()
        self._connect_timeout_s = connect_timeout_s
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._sequence = 0
        self._outbound: deque[bytes] = deque()
        self._speech_done: deque[tuple[int, asyncio.Future[float]]] = deque()
        self._queued_frames = 0  # caller frames queued so far (for completion futures)
        self._sent_speech_frames = 0
        self.last_speech_sent_at = 0.0  # monotonic time the last caller speech frame went out
        self._tasks: list[asyncio.Task[None]] = []
        self.started_at = 0.0  # monotonic time ``start`` was sent; tick 0 is due then
        self._last_arrival = 0.0
        self._played_gap = -1  # ticks since the last played frame; -1 before any
        self._record = record
        self._caller_track = bytearray()
        self._agent_track = bytearray()
        # What the line carries while the caller is quiet: silence, or the
        # background noise of a noisy line (20 ms μ-law frames).
        self._idle = idle

    # -- lifecycle ------------------------------------------------------------
    async def open(self) -> None:
        """Connect and send ``connected`` and ``start``; the 20 ms clock starts now."""
        try:
            self._ws = await asyncio.wait_for(
                connect(self.instructions.url, max_size=2**20, open_timeout=None, ping_interval=None),
                timeout=self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise CarrierError(f"cannot connect to {self.instructions.url}: {exc!r}") from exc
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
        await self._send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": dict(self.instructions.parameters),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": MULAW_RATE, "channels": 1},
                },
            }
        )
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._clock(), name=f"carrier-clock-{self.call_sid}"),
            loop.create_task(self._receive(), name=f"carrier-receive-{self.call_sid}"),
        ]

    async def hang_up(self) -> None:
        """The caller hangs up: send ``stop`` and close the socket."""
        if self.closed.is_set() or self._ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._send(
                {"event": "stop", "streamSid": self.stream_sid,
                 "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}
            )  # fmt: skip
        self._finish("caller_hangup")
        # Twilio closes after stop; give the server a moment to close first.
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            await asyncio.wait_for(self._ws.wait_closed(), timeout=2.0)
        await self._ws.close()
        await self._cancel_tasks()

    async def wait_closed(self) -> None:
        """Wait until the call is over (either side hung up) and the tasks have stopped."""
        await self.closed.wait()
        await self._cancel_tasks()

    @property
    def elapsed_s(self) -> float:
        """Seconds since ``start`` was sent."""
        return time.monotonic() - self.started_at if self.started_at else 0.0

    # -- the caller's mouth -------------------------------------------------------
    def speak(self, mulaw: bytes) -> asyncio.Future[float]:
        """Queue caller speech; the future resolves with the monotonic time its last frame was sent.

        If the call ends first, the future fails with ``CarrierError``.
        """
        frames = [mulaw[i : i + MULAW_FRAME_BYTES] for i in range(0, len(mulaw), MULAW_FRAME_BYTES)]
        if frames and len(frames[-1]) < MULAW_FRAME_BYTES:
            frames[-1] = frames[-1].ljust(MULAW_FRAME_BYTES, bytes([MULAW_SILENCE]))
        self._outbound.extend(frames)
        self._queued_frames += len(frames)
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if not frames:
            done.set_result(time.monotonic())
        else:
            self._speech_done.append((self._queued_frames, done))
        return done

    async def press(self, keys: str) -> None:
        """The caller presses keys: one Media Streams ``dtmf`` message per key, as Twilio sends them."""
        for key in keys:
            await self._send(
                {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": key}}
            )

    @property
    def caller_speaking(self) -> bool:
        """True while caller speech is queued or being sent."""
        return bool(self._outbound)

    # -- recording --------------------------------------------------------------
    def stereo_wav(self) -> bytes:
        """The call as heard on the line: caller left, agent right, 8 kHz 16-bit (needs ``record``)."""
        caller = mulaw_decode(bytes(self._caller_track))
        agent = mulaw_decode(bytes(self._agent_track))
        stereo = np.empty(caller.size * 2, dtype=np.int16)
        stereo[0::2] = caller
        stereo[1::2] = agent[: caller.size]
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(MULAW_RATE)
            wav.writeframes(stereo.tobytes())
        return buffer.getvalue()

    # -- internals -----------------------------------------------------------------
    async def _send(self, message: dict[str, Any], *, numbered: bool = True) -> None:
        assert self._ws is not None
        async with self._send_lock:
            if numbered:
                # Twilio numbers every message after ``connected``, starting at 1.
                self._sequence += 1
                message = {"event": message["event"], "sequenceNumber": str(self._sequence), **message}
            await self._ws.send(json.dumps(message))

    async def _clock(self) -> None:
        try:
            tick = 0
            while not self.closed.is_set():
                due = self.started_at + tick * FRAME_S
                now = time.monotonic()
                if now < due:
                    await asyncio.sleep(due - now)
                    continue
                behind = int((now - due) / FRAME_S)
                if behind > _MAX_CATCH_UP_TICKS:
                    # Skip ahead: a stalled phone line does not replay the past.
                    tick += behind
                    continue
                lateness = now - due
                self.stats.send_lateness_max_s = max(self.stats.send_lateness_max_s, lateness)
                if lateness > FRAME_S:
                    self.stats.send_late_ticks += 1
                await self._tick(tick, due)
                tick += 1
        except ConnectionClosed as exc:
            # The clock's send can be first to see the close: report its code as the receiver would.
            self._finish(_server_closed(exc.rcvd.code if exc.rcvd else "no close frame"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a dead clock must end the call, not hang it
            self._finish(f"clock_failed: {exc!r}")

    async def _tick(self, tick: int, due: float) -> None:
        speaking = bool(self._outbound)
        if speaking:
            caller = self._outbound.popleft()
        else:
            caller = next(self._idle, SILENCE_FRAME) if self._idle is not None else SILENCE_FRAME
        sending = time.monotonic()
        await self._send(
            {
                "event": "media",
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(tick + 1),
                    "timestamp": str(tick * 20),
                    "payload": base64.b64encode(caller).decode("ascii"),
                },
            }
        )
        self.stats.ticks += 1
        self.stats.send_block_max_s = max(self.stats.send_block_max_s, time.monotonic() - sending)
        if speaking:
            self.last_speech_sent_at = time.monotonic()
            self._sent_speech_frames += 1
            while self._speech_done and self._speech_done[0][0] <= self._sent_speech_frames:
                _, done = self._speech_done.popleft()
                if not done.done():
                    done.set_result(time.monotonic())
        agent, reached = self.playback.play()
        if agent is not None:
            self.stats.frames_played += 1
            if 1 <= self._played_gap <= _BURST_GAP_S / FRAME_S:
                self.stats.playback_gaps += 1
            self._played_gap = 0
        elif self._played_gap >= 0:
            self._played_gap += 1
        if self._record:
            self._caller_track += caller
            self._agent_track += agent if agent is not None else SILENCE_FRAME
        if self.on_tick is not None:
            self.on_tick(PlayedFrame(tick=tick, at=due, caller=caller, agent=agent))
        for name in reached:
            await self._echo_mark(name)

    async def _echo_mark(self, name: str) -> None:
        self.stats.marks_echoed += 1
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    payload = base64.b64decode(message["media"]["payload"])
                    arrived = self._note_arrival(len(payload))
                    self.playback.push_media(payload)
                    if self.on_media is not None:
                        self.on_media(payload, arrived)
                elif event == "mark":
                    self.stats.marks_received += 1
                    for name in self.playback.push_mark(str(message["mark"]["name"])):
                        await self._echo_mark(name)
                elif event == "clear":
                    self.stats.clears += 1
                    for name in self.playback.clear():
                        await self._echo_mark(name)
            self._finish(_server_closed(self._ws.close_code))
        except ConnectionClosed as exc:
            self._finish(_server_closed(exc.rcvd.code if exc.rcvd else "no close frame"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any garbage from the server ends the call visibly
            self._finish(f"receive_failed: {exc!r}")

    def _note_arrival(self, size: int) -> float:
        now = time.monotonic()
        frames = max(1, round(size / MULAW_FRAME_BYTES))
        self.stats.frames_received += frames
        if self._last_arrival and now - self._last_arrival < _BURST_GAP_S:
            self.stats.arrival_jitter_s.append(abs(now - self._last_arrival - FRAME_S))
        self._last_arrival = now
        return now

    def _finish(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            for _, future in self._speech_done:
                if not future.done():
                    future.set_exception(CarrierError(f"the call ended ({reason}) while the caller was speaking"))
                    # Nobody may be waiting any more; do not warn about it.
                    future.exception()
            self._speech_done.clear()
            self._outbound.clear()

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            await self._ws.close()
