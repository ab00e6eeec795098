"""Shared pieces for benchmarks that run call sessions in this process, without a server.

An instant synthesizer (a tone: no provider time), an outbound sink that
notes when each frame left, and call records that keep nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for annotations: ``make bench`` runs this module on its own too
    from calls.pipeline.protocols import Pcm16


class InstantTone:
    """A synthesizer that costs nothing: ``frames`` frames of 20 ms of tone per sentence, at once."""

    name = "instant"
    sample_rate = 8000

    def __init__(self, frames: int = 25) -> None:
        self.frames = frames
        self._tone = (np.sin(np.arange(160) * 0.3) * 3000).astype(np.int16)

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        for _ in range(self.frames):
            yield self._tone


class Sink:
    """The carrier side of a call: the time each outbound frame was handed over."""

    def __init__(self) -> None:
        self.frames: list[float] = []

    async def send_frame(self, frame: Pcm16) -> None:
        self.frames.append(time.monotonic())

    async def send_mark(self, name: str) -> None:
        return None

    async def clear(self) -> None:
        return None


class Records:
    """Call records that keep nothing: the bench measures the session, not the database."""

    def utterance(self, **_: Any) -> None:
        return None

    def turn_latency(self, **_: Any) -> None:
        return None

    def checkpoint(self, **_: Any) -> None:
        return None

    async def transfer(self, **_: Any) -> None:
        return None

    async def finish(self, **_: Any) -> None:
        return None


async def no_hangup() -> None:
    return None
