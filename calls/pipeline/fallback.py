"""Guards around engines: a deadline per engine, and a fallback chain per role.

They compose like ``CachingTextToSpeech``: each wraps engines and is itself
an engine of the same protocol. A chain is built per call from engines
shared by the process (``calls.pipeline.factory``); the offline engine is
its last link, so a failing cloud engine costs the caller a short apology,
never silence. Every switch is recorded in the call's ``SwitchLog`` and
stored with the call.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from calls.audio import Resampler, resample
from calls.pipeline.protocols import Pcm16, SpeechToText, SttHints, TextToSpeech, Transcript
from voicedesk.core.metrics import PROVIDER_ERRORS, PROVIDER_FALLBACKS

# Said by the last engine of the chain (cached at start-up) while the call
# moves to the next engine, so the line is never silent.
APOLOGY = "Sorry, one moment."
# Said when no engine can hear the caller any more: the call closes and its
# ticket keeps what was captured.
LINE_TROUBLE_GOODBYE = "Sorry, I'm having trouble with this line. We have your details and will call you back. Goodbye."

Role = Literal["stt", "tts"]
FailureReason = Literal["error", "deadline", "garbage", "unavailable"]


class EngineError(RuntimeError):
    """An engine failed one request in a way a fallback should react to."""

    def __init__(self, engine: str, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{engine}: {reason}: {detail}")
        self.engine = engine
        self.reason = reason
        self.detail = detail


class EnginesExhaustedError(RuntimeError):
    """Every engine of a chain failed; nothing is left to switch to."""


@dataclass(frozen=True, slots=True)
class ProviderSwitch:
    """One move from a failing engine to the next, as stored on the call."""

    role: Role
    from_engine: str
    to_engine: str
    reason: FailureReason
    detail: str
    at: str  # ISO 8601, UTC


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SwitchLog:
    """The engine switches of one call; listeners hear of each as it happens."""

    entries: list[ProviderSwitch] = field(default_factory=list)
    listeners: list[Callable[[ProviderSwitch], None]] = field(default_factory=list)
    clock: Callable[[], datetime] = _utc_now

    def record(self, role: Role, from_engine: str, to_engine: str, reason: FailureReason, detail: str) -> None:
        switch = ProviderSwitch(
            role=role,
            from_engine=from_engine,
            to_engine=to_engine,
            reason=reason,
            detail=detail[:200],
            at=self.clock().isoformat(),
        )
        self.entries.append(switch)
        PROVIDER_ERRORS.labels(role=role, provider=from_engine).inc()
        PROVIDER_FALLBACKS.labels(role=role, provider=to_engine).inc()
        for listener in self.listeners:
            listener(switch)


def _failure(engine: str, exc: BaseException) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, TimeoutError):
        return EngineError(engine, "deadline", "no result in time")
    return EngineError(engine, "error", f"{type(exc).__name__}: {exc}")


class DeadlineTextToSpeech:
    """``TextToSpeech`` that fails a synthesis whose first (or next) chunk is late."""

    def __init__(self, inner: TextToSpeech, *, first_chunk_s: float, next_chunk_s: float | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.first_chunk_s = first_chunk_s
        self.next_chunk_s = next_chunk_s if next_chunk_s is not None else first_chunk_s

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        chunks = self.inner.synthesize(text)
        limit = self.first_chunk_s
        try:
            while True:
                try:
                    async with asyncio.timeout(limit):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise EngineError(self.name, "deadline", f"no audio within {limit} s") from exc
                limit = self.next_chunk_s
                yield chunk
        finally:
            await _close(chunks)


class DeadlineSpeechToText:
    """``SpeechToText`` that fails a transcription not ready within ``result_s``.

    An engine running in a thread finishes its decode in the background; the
    call does not wait for it.
    """

    def __init__(self, inner: SpeechToText, *, result_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.result_s = result_s

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        try:
            async with asyncio.timeout(self.result_s):
                return await self.inner.transcribe(audio, hints=hints)
        except TimeoutError as exc:
            raise EngineError(self.name, "deadline", f"no transcript within {self.result_s} s") from exc

    async def warm_up(self) -> None:
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            await warm()


async def _close(chunks: AsyncIterator[Pcm16]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _check_chunk(engine: str, chunk: object) -> Pcm16:
    if not isinstance(chunk, np.ndarray) or chunk.dtype != np.int16 or chunk.ndim != 1:
        raise EngineError(engine, "garbage", f"audio chunk of type {type(chunk).__name__}")
    return chunk


def _check_transcript(engine: str, transcript: object) -> Transcript:
    if (
        not isinstance(transcript, Transcript)
        or not isinstance(transcript.text, str)
        or not isinstance(transcript.confidence, int | float)
        or math.isnan(transcript.confidence)
        or not 0.0 <= transcript.confidence <= 1.0
    ):
        raise EngineError(engine, "garbage", f"transcript {transcript!r:.80}")
    return transcript


class FallbackTextToSpeech:
    """``TextToSpeech`` over a chain of engines, for one call.

    Synthesis runs on the current engine. When it raises, misses its
    deadline or yields something that is not audio, the switch is recorded,
    the caller hears ``APOLOGY`` from the last engine and the sentence is
    spoken again by the next engine, which serves the rest of the call.
    Chunks come at the first engine's rate; a later engine's audio is
    resampled to it.
    """

    def __init__(self, engines: Sequence[TextToSpeech], *, switches: SwitchLog, apology: str = APOLOGY) -> None:
        if not engines:
            raise ValueError("a fallback chain needs at least one engine")
        self.engines = list(engines)
        self.switches = switches
        self.apology = apology
        self.name = self.engines[0].name
        self.sample_rate = self.engines[0].sample_rate
        self._active = 0

    @property
    def active(self) -> TextToSpeech:
        return self.engines[self._active]

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        while True:
            engine = self.active
            try:
                produced = False
                async for chunk in self._from(engine, text):
                    produced = True
                    yield chunk
                if not produced and any(ch.isalnum() for ch in text):
                    raise EngineError(engine.name, "garbage", "no audio for the text")
                return
            except Exception as exc:
                failure = _failure(engine.name, exc)
                if self._active + 1 >= len(self.engines):
                    raise EnginesExhaustedError(f"every text-to-speech engine failed; last: {failure}") from exc
                self._active += 1
                self.switches.record("tts", engine.name, self.active.name, failure.reason, failure.detail)
            async for chunk in self._from(self.engines[-1], self.apology):
                yield chunk

    async def _from(self, engine: TextToSpeech, text: str) -> AsyncIterator[Pcm16]:
        resampler = None if engine.sample_rate == self.sample_rate else Resampler(engine.sample_rate, self.sample_rate)
        chunks = engine.synthesize(text)
        try:
            async for chunk in chunks:
                checked = _check_chunk(engine.name, chunk)
                yield checked if resampler is None else resampler.process(checked)
        finally:
            # Also when a chunk was refused: the engine's process or request ends now.
            await _close(chunks)
        if resampler is not None:
            yield resampler.flush()


class FallbackSpeechToText:
    """``SpeechToText`` over a chain of engines, for one call.

    A transcription that raises, misses its deadline or returns something
    that is not a transcript is recorded as a switch and retried on the next
    engine, which serves the rest of the call. Audio comes at the first
    engine's rate and is resampled for a later engine that wants another.
    """

    def __init__(self, engines: Sequence[SpeechToText], *, switches: SwitchLog) -> None:
        if not engines:
            raise ValueError("a fallback chain needs at least one engine")
        self.engines = list(engines)
        self.switches = switches
        self.name = self.engines[0].name
        self.sample_rate = self.engines[0].sample_rate
        self._active = 0

    @property
    def active(self) -> SpeechToText:
        return self.engines[self._active]

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        while True:
            engine = self.active
            wide = (
                audio
                if engine.sample_rate == self.sample_rate
                else resample(audio, self.sample_rate, engine.sample_rate)
            )
            try:
                return _check_transcript(engine.name, await engine.transcribe(wide, hints=hints))
            except Exception as exc:
                failure = _failure(engine.name, exc)
                if self._active + 1 >= len(self.engines):
                    raise EnginesExhaustedError(f"every speech-to-text engine failed; last: {failure}") from exc
                self._active += 1
                self.switches.record("stt", engine.name, self.active.name, failure.reason, failure.detail)
