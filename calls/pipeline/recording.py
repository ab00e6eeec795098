"""The call recording: caller on the left channel, agent on the right, as pipeline PCM."""

from __future__ import annotations

import io
import wave

import numpy as np

from calls.pipeline.protocols import Pcm16


class StereoRecorder:
    """Collects both sides of a call in memory and writes one stereo WAV.

    The caller's audio arrives as a continuous stream, so its position is its
    sample count. Agent frames are placed at the time they were sent.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._caller: list[Pcm16] = []
        self._agent: list[tuple[int, Pcm16]] = []

    def caller(self, pcm: Pcm16) -> None:
        self._caller.append(pcm)

    def agent(self, pcm: Pcm16, at_seconds: float) -> None:
        self._agent.append((int(at_seconds * self.sample_rate), pcm))

    def wav_bytes(self) -> bytes:
        caller = np.concatenate(self._caller) if self._caller else np.zeros(0, dtype=np.int16)
        agent_end = max((start + len(pcm) for start, pcm in self._agent), default=0)
        length = max(len(caller), agent_end)
        stereo = np.zeros((length, 2), dtype=np.int16)
        stereo[: len(caller), 0] = caller
        for start, pcm in self._agent:
            stereo[start : start + len(pcm), 1] = pcm
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(stereo.tobytes())
        return buffer.getvalue()
