"""What every vendor emulator shares: a server on a thread with its own event loop, and the faults.

``LoopbackEmulator`` is the lifecycle: ``start`` serves on 127.0.0.1 (port 0
picks a free one) from a daemon thread's event loop, so the emulator keeps
serving while the test's own loop (or none) runs; ``stop`` closes the server
and every connection in flight; ``fault`` switches a failure on or off at
any time. ``WebsocketEmulator`` serves a websocket endpoint with
``websockets``; ``HttpEmulator`` serves HTTP routes, streamed bodies and
websockets with ``aiohttp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from calls.audio import Resampler, mulaw_encode
from calls.pipeline.protocols import Pcm16, SpeechToText, TextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.piper_tts import PiperTextToSpeech, piper_available

# ``reject_key``: every key is refused as the vendor refuses a wrong one.
# ``http_500``: the request (or websocket handshake) gets a 500.
# ``stall``: the server accepts and then says nothing more.
# ``drop``: the TCP connection is cut without a close frame once audio flows.
# ``slow_first_byte``: the first audio (or the session start) comes ``slow_first_byte_s`` late.
Fault = Literal["reject_key", "http_500", "stall", "drop", "slow_first_byte"]
FAULTS: tuple[Fault, ...] = ("reject_key", "http_500", "stall", "drop", "slow_first_byte")
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class LoopThread:
    """An event loop on a daemon thread: the emulator serves while the caller's own loop (or none) runs."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the emulator's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        async def cancel_the_rest() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            if others:
                # A connection handler may still be closing its socket; it does not hold up the stop.
                await asyncio.wait(others, timeout=1.0)

        self.run(cancel_the_rest(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class LoopbackEmulator:
    """A vendor's server on loopback: its own thread and event loop, a port, faults on demand.

    Subclasses say how to serve (``_serve``, returning the bound port) and how
    to close (``_close``). ``slow_first_byte_s`` and ``stall_s`` are how long
    those faults hold things up.
    """

    name: ClassVar[str] = "vendor"
    scheme: ClassVar[str] = "ws"

    def __init__(self, *, port: int = 0, slow_first_byte_s: float = 2.0, stall_s: float = 30.0) -> None:
        self.fault: Fault | None = None
        self.slow_first_byte_s = slow_first_byte_s
        self.stall_s = stall_s
        self.url = ""
        self.port = 0
        self._requested_port = port
        self._loop: LoopThread | None = None

    def start(self) -> Self:
        """Serve until ``stop``; ``url`` is then the address to give the vendor's SDK."""
        if self._loop is not None:
            raise RuntimeError(f"the {self.name} emulator is already running")
        self._loop = LoopThread(f"{self.name}-emulator")
        try:
            self.port = self._loop.run(self._serve(self._requested_port))
        except BaseException:
            self._loop.stop()
            self._loop = None
            raise
        self.url = f"{self.scheme}://{LOOPBACK}:{self.port}"
        return self

    def stop(self) -> None:
        """Close the server and every connection in flight; a second stop does nothing."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            loop.run(self._close(), timeout=5)
        loop.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the emulator's loop (a test reaching into the server's state)."""
        if self._loop is None:
            raise RuntimeError(f"the {self.name} emulator is not running")
        return self._loop.run(coro, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def first_byte_delay(self) -> None:
        """Hold the first byte back while the ``slow_first_byte`` fault is on."""
        if self.fault == "slow_first_byte":
            await asyncio.sleep(self.slow_first_byte_s)

    async def _serve(self, port: int) -> int:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError


class WebsocketEmulator(LoopbackEmulator):
    """An emulator whose API is one websocket endpoint: ``_handle`` serves each connection,
    ``_process_request`` may answer the handshake with an HTTP error instead."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server: Server | None = None

    async def _serve(self, port: int) -> int:
        self._server = await serve(
            self._handle,
            LOOPBACK,
            port,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=0.5,
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 3)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError


class HttpEmulator(LoopbackEmulator):
    """An emulator with an HTTP API (and websockets on the same port): ``routes`` lists its endpoints."""

    scheme: ClassVar[str] = "http"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runner: web.AppRunner | None = None

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def _serve(self, port: int) -> int:
        app = web.Application()
        app.add_routes(self.routes())
        # No access log: request lines carry nothing a test needs.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, port, shutdown_timeout=0.5)
        await site.start()
        return site.port

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner.cleanup(), 3)


def offline_listener(stt: SpeechToText | None = None) -> SpeechToText:
    """What an STT emulator hears audio with: ``stt``, else the offline Whisper (loaded only if needed)."""
    if stt is not None:
        return stt
    from calls.providers.whisper_stt import WhisperSpeechToText

    return WhisperSpeechToText()


class OfflineVoice:
    """Speech for the TTS emulators: piper when installed, else espeak-ng, in the format a request asks for.

    ``encoding`` is ``pcm_s16le``, ``pcm_mulaw`` or ``pcm_f32le``; audio is
    resampled to ``sample_rate`` on the way, chunk by chunk, so the first
    bytes leave as soon as the engine has them.
    """

    def __init__(self, engine: TextToSpeech | None = None) -> None:
        if engine is None:
            engine = PiperTextToSpeech(variation=0) if piper_available() else EspeakTextToSpeech()
        self.engine = engine

    async def speak(self, text: str, *, encoding: str, sample_rate: int) -> AsyncIterator[bytes]:
        resampler = Resampler(self.engine.sample_rate, sample_rate) if self.engine.sample_rate != sample_rate else None
        async for chunk in self.engine.synthesize(text):
            pcm = chunk if resampler is None else resampler.process(chunk)
            if pcm.size:
                yield encode(pcm, encoding)
        if resampler is not None:
            tail = resampler.flush()
            if tail.size:
                yield encode(tail, encoding)


def encode(pcm: Pcm16, encoding: str) -> bytes:
    """``pcm`` in one of the raw encodings the vendors offer."""
    if encoding == "pcm_mulaw":
        return mulaw_encode(pcm)
    if encoding == "pcm_f32le":
        return (pcm.astype("<f4") / np.float32(32768.0)).tobytes()
    if encoding == "pcm_s16le":
        return pcm.astype("<i2").tobytes()
    raise ValueError(f"unsupported encoding {encoding!r}")


@dataclass(frozen=True, slots=True)
class EmulatedVoice:
    """A voice in an emulator's library: what its voice listing returns."""

    voice_id: str
    name: str
    description: str = ""
    language: str = "en"
    gender: str = "female"


# What an emulator lists when a test names no voices of its own.
DEFAULT_LIBRARY: tuple[EmulatedVoice, ...] = (
    EmulatedVoice("voice-ava", "Ava", "Warm and calm, for customer care", gender="female"),
    EmulatedVoice("voice-ben", "Ben", "Clear and steady", gender="male"),
    EmulatedVoice("voice-cleo", "Cleo", "Bright and quick", gender="female"),
)
