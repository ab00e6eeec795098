"""A call's recognition stream: finals per turn, end-of-turn, and giving up on a broken stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from calls.pipeline import stt_stream
from calls.pipeline.fallback import SwitchLog
from calls.pipeline.protocols import Pcm16, SpeechStream, SttEvent, SttEventKind, SttHints, Transcript
from calls.pipeline.stt_stream import TurnStream


class ScriptedStream:
    """A vendor stream that answers what the test tells it to, at 16 kHz."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SttEvent | None] = asyncio.Queue()
        self.fed: list[Pcm16] = []
        self.hints: list[SttHints] = []
        self.closed = False

    def feed(self, pcm: Pcm16) -> None:
        self.fed.append(pcm)

    def update_hints(self, hints: SttHints) -> None:
        self.hints.append(hints)

    async def events(self) -> AsyncIterator[SttEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def close(self) -> None:
        self.closed = True


class ScriptedEngine:
    name = "scripted"
    sample_rate = 16000

    def __init__(self) -> None:
        self.stream = ScriptedStream()

    async def open(self, hints: SttHints) -> SpeechStream:
        self.stream.hints.append(hints)
        return self.stream


def _final(text: str, confidence: float) -> SttEvent:
    return SttEvent(SttEventKind.FINAL, Transcript(text=text, confidence=confidence, words=tuple(text.split())))


@pytest.mark.asyncio
async def test_finals_of_a_turn_are_joined_and_end_of_turn_is_reported() -> None:
    engine = ScriptedEngine()
    switches = SwitchLog()
    turns = TurnStream(engine, switches=switches, fallback="whisper")
    runner = asyncio.create_task(turns.run(SttHints(expect="digits")))
    await asyncio.sleep(0)
    turns.feed(np.zeros(160, dtype=np.int16))
    engine.stream.queue.put_nowait(_final("noise", 0.2))
    await asyncio.sleep(0.01)

    turns.turn_started()
    for event in (_final("six one seven", 0.9), _final("five five five", 0.7), SttEvent(SttEventKind.END_OF_TURN)):
        engine.stream.queue.put_nowait(event)
    await asyncio.sleep(0.01)
    transcript = await turns.transcript()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)

    assert transcript == Transcript(
        text="six one seven five five five", confidence=0.7, words=("six", "one", "seven", "five", "five", "five")
    )
    assert turns.end_of_turn is True
    assert engine.stream.hints == [SttHints(expect="digits")]
    # 20 ms at the call rate reaches the 16 kHz engine resampled, less the filter's 3 ms look-ahead.
    assert sum(len(pcm) for pcm in engine.stream.fed) == 320 - 48
    assert engine.stream.closed is True
    assert switches.entries == []


@pytest.mark.asyncio
async def test_a_stream_without_a_final_is_given_up_and_the_switch_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stt_stream, "STREAM_FINAL_WAIT_S", 0.2)
    engine = ScriptedEngine()
    switches = SwitchLog()
    turns = TurnStream(engine, switches=switches, fallback="whisper")
    runner = asyncio.create_task(turns.run(SttHints()))
    await asyncio.sleep(0)
    turns.turn_started()

    assert await turns.transcript() is None
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)

    assert turns.active is False
    assert [(s.role, s.from_engine, s.to_engine, s.reason) for s in switches.entries] == [
        ("stt", "scripted", "whisper", "deadline")
    ]
    # Later events of the abandoned stream change nothing.
    engine.stream.queue.put_nowait(_final("too late", 0.9))
    assert await turns.transcript() is None
    assert len(switches.entries) == 1


@pytest.mark.asyncio
async def test_a_stream_that_ends_mid_call_is_a_switch() -> None:
    engine = ScriptedEngine()
    switches = SwitchLog()
    turns = TurnStream(engine, switches=switches, fallback="whisper")
    engine.stream.queue.put_nowait(None)

    await turns.run(SttHints())

    assert turns.active is False
    assert [(s.from_engine, s.reason, s.detail) for s in switches.entries] == [
        ("scripted", "error", "the stream ended mid-call")
    ]
