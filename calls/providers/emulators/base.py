"""What every vendor emulator shares: a server thread with its own event loop, and the faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

import numpy as np

from calls.audio import Resampler, mulaw_encode
from calls.pipeline.protocols import Pcm16, TextToSpeech
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
