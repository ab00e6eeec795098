"""The call recording: caller on the left channel, agent on the right, as pipeline PCM."""

from __future__ import annotations

import numpy as np

from calls.pipeline.protocols import Pcm16

# Audio this recent is not handed out yet: an agent frame is placed at the
# time it was sent, which can run a little ahead of the caller's stream.
SETTLE_S = 1.0


class StereoRecorder:
    """Collects both sides of a call and hands them out as interleaved stereo frames, a stretch at a time.

    The caller's audio arrives as a continuous stream, so its position is its
    sample count. Agent frames are placed at the time they were sent. Only
    what has not been taken yet is held in memory, so a call's recording can
    go to disk as the call runs.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._caller: list[Pcm16] = []  # caller audio from sample ``_taken`` on
        self._caller_total = 0  # caller samples received
        self._agent: list[tuple[int, Pcm16]] = []
        self._taken = 0  # stereo frames handed out

    def caller(self, pcm: Pcm16) -> None:
        self._caller.append(pcm)
        self._caller_total += len(pcm)

    def agent(self, pcm: Pcm16, at_seconds: float) -> None:
        self._agent.append((int(at_seconds * self.sample_rate), pcm))

    @property
    def taken_seconds(self) -> float:
        return self._taken / self.sample_rate

    def take_settled(self) -> bytes:
        """The frames from the last take up to a second behind the caller's stream (may be empty)."""
        return self._take(max(self._taken, self._caller_total - int(SETTLE_S * self.sample_rate)))

    def take_rest(self) -> bytes:
        """Everything not taken yet: the end of the call."""
        agent_end = max((start + len(pcm) for start, pcm in self._agent), default=0)
        return self._take(max(self._taken, self._caller_total, agent_end))

    def _take(self, upto: int) -> bytes:
        start = self._taken
        length = upto - start
        if length <= 0:
            return b""
        stereo = np.zeros((length, 2), dtype=np.int16)
        caller = np.concatenate(self._caller) if self._caller else np.zeros(0, dtype=np.int16)
        head = caller[:length]
        stereo[: len(head), 0] = head
        self._caller = [caller[length:]] if len(caller) > length else []
        kept: list[tuple[int, Pcm16]] = []
        for at, pcm in self._agent:
            end = at + len(pcm)
            lo, hi = max(at, start), min(end, upto)
            if lo < hi:
                stereo[lo - start : hi - start, 1] = pcm[lo - at : hi - at]
            if end > upto:
                kept.append((at, pcm))
        self._agent = kept
        self._taken = upto
        return stereo.tobytes()
