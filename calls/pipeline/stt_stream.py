"""One call's recognition stream, as the session uses it.

The session's voice activity detector still marks when the caller starts
and pauses (barge-in must not wait for a vendor); the stream supplies the
words of each turn and, where the engine has them, its end-of-turn events.
If the stream breaks or stalls, the switch is recorded and the session
carries on with its batch chain.
"""

from __future__ import annotations

import asyncio
import contextlib

from calls.audio import CALL_RATE, Resampler
from calls.pipeline.fallback import EngineError, SwitchLog
from calls.pipeline.protocols import (
    Pcm16,
    SpeechStream,
    StreamingSpeechToText,
    SttEvent,
    SttEventKind,
    SttHints,
    Transcript,
)

# A streaming engine's final transcript normally follows the end of speech
# within a few hundred ms; one this late means the stream has stalled.
STREAM_FINAL_WAIT_S = 3.0


class TurnStream:
    """Feeds a ``StreamingSpeechToText`` and gathers each turn's finals.

    ``run`` is the task that opens the stream and reads its events;
    ``active`` stays True until the stream fails, after which the session
    transcribes with its batch engines. ``fallback`` names the engine that
    takes over, for the switch record.
    """

    def __init__(self, engine: StreamingSpeechToText, *, switches: SwitchLog, fallback: str) -> None:
        self.engine = engine
        self.switches = switches
        self.fallback = fallback
        self.end_of_turn = False  # the engine said the current turn is over
        self._stream: SpeechStream | None = None
        self._resampler = None if engine.sample_rate == CALL_RATE else Resampler(CALL_RATE, engine.sample_rate)
        self._finals: list[Transcript] = []
        self._final_ready = asyncio.Event()
        self._failed = False

    @property
    def active(self) -> bool:
        return not self._failed

    async def run(self, hints: SttHints) -> None:
        """Open the stream and read its events until the call's end cancels this or the stream fails."""
        try:
            self._stream = await self.engine.open(hints)
            async for event in self._stream.events():
                self._on_event(event)
            raise EngineError(self.engine.name, "error", "the stream ended mid-call")
        except Exception as exc:  # noqa: BLE001 - whatever breaks a provider's stream, the batch chain takes over
            self.fail(exc)
        finally:
            if self._stream is not None:
                with contextlib.suppress(Exception):
                    await self._stream.close()

    def feed(self, pcm: Pcm16) -> None:
        """Caller audio at ``CALL_RATE``; dropped until the stream is open."""
        if self._stream is not None and not self._failed:
            self._stream.feed(pcm if self._resampler is None else self._resampler.process(pcm))

    def update_hints(self, hints: SttHints) -> None:
        if self._stream is not None and not self._failed:
            self._stream.update_hints(hints)

    def turn_started(self) -> None:
        # Finals from before the caller's speech are noise the engine heard.
        self._finals.clear()
        self.end_of_turn = False

    async def transcript(self) -> Transcript | None:
        """The finals since the turn started, joined; None if the stream failed (go batch)."""
        if not self._finals and not self._failed:
            self._final_ready.clear()
            try:
                await asyncio.wait_for(self._final_ready.wait(), STREAM_FINAL_WAIT_S)
            except TimeoutError:
                self.fail(EngineError(self.engine.name, "deadline", f"no final within {STREAM_FINAL_WAIT_S} s"))
        if self._failed:
            return None
        finals, self._finals = [t for t in self._finals if t.text.strip()], []
        if not finals:
            return Transcript(text="", confidence=0.0)
        return Transcript(
            text=" ".join(t.text.strip() for t in finals),
            confidence=min(t.confidence for t in finals),
            words=tuple(word for t in finals for word in t.words),
            alternatives=finals[-1].alternatives,
        )

    def fail(self, exc: BaseException) -> None:
        """Give up on the stream once, and record the switch to the batch engine."""
        if self._failed:
            return
        self._failed = True
        self._final_ready.set()  # a turn waiting for a final goes batch
        reason = exc.reason if isinstance(exc, EngineError) else "error"
        detail = exc.detail if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        self.switches.record("stt", self.engine.name, self.fallback, reason, detail)

    def _on_event(self, event: SttEvent) -> None:
        if self._failed:
            return
        if event.kind is SttEventKind.FINAL:
            self._finals.append(event.transcript)
            self._final_ready.set()
        elif event.kind is SttEventKind.END_OF_TURN:
            self.end_of_turn = True
        # Partials are not used yet: turns are decided on finals.
