"""Paced agent audio: we pace, not the carrier.

Frames go out on a monotonic clock, at most ``lead_s`` ahead of real time,
so the carrier never holds more than that. What the caller has heard is
known locally (frames whose play time has passed) and, on transports that
report playback, confirmed by the carrier's mark echoes; without such
reports the local clock is the only measure. A barge-in pauses output and takes back the frames
still in the carrier's buffer, so a false alarm (a cough, an "uh-huh")
resumes exactly where the caller stopped hearing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from calls.audio import CALL_FRAME_SAMPLES, CALL_RATE
from calls.pipeline.protocols import Pcm16
from voicedesk.core.metrics import FRAMES_LATE

FRAME_S = CALL_FRAME_SAMPLES / CALL_RATE


class AudioSink(Protocol):
    """The transport side of the output: one call's outbound channel."""

    async def send_frame(self, frame: Pcm16) -> None:
        """Send one 20 ms frame of ``CALL_RATE`` PCM; the transport codes it for its wire."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask the far end to report when playback reaches this point.

        Only called on transports that report playback.
        """
        ...

    async def clear(self) -> None:
        """Drop whatever the far end has buffered but not played."""
        ...


@dataclass(eq=False, slots=True)
class Segment:
    """One sentence of agent speech: its frames, and how far they were sent."""

    text: str
    turn: int
    # Opens a reply: silence before it is the caller's turn or a re-prompt's
    # wait, never a gap inside what the agent is saying.
    opens_reply: bool = True
    frames: list[Pcm16] = field(default_factory=list)
    cursor: int = 0  # index of the next frame to send
    complete: bool = False  # synthesis finished; no more frames will come
    mark: str = ""
    mark_sent: bool = False
    confirmed: bool = False  # the carrier echoed our mark: fully heard
    first_sent_at: float | None = None
    play_end_at: float = 0.0  # when its last sent frame finishes playing

    def heard_fraction(self, now: float) -> float:
        if self.confirmed or not self.frames:
            return 1.0 if self.confirmed else 0.0
        unplayed = max(0.0, (self.play_end_at - now) / FRAME_S)
        return max(0.0, min(1.0, (self.cursor - unplayed) / len(self.frames)))


@dataclass(slots=True)
class OutputStats:
    frames_sent: int = 0
    frames_late: int = 0  # frame times the carrier went without audio mid-sentence (sent after it needed them)
    # Silences inside one reply because the next sentence was not synthesized
    # in time: the caller hears a pause the agent did not mean.
    reply_gaps: int = 0
    reply_gap_max_ms: float = 0.0


class PacedOutput:
    """Sends queued speech segments in real time, with pause, resume and cancel."""

    def __init__(self, sink: AudioSink, *, lead_s: float = 0.08, reports_playback: bool = True) -> None:
        self._sink = sink
        self._lead_s = lead_s
        # Without playback reports no marks are sent: what was heard is
        # known from our own clock only (frames whose play time has passed).
        self.reports_playback = reports_playback
        self._queue: deque[Segment] = deque()  # not yet fully sent (or mark not sent)
        self._sent: deque[Segment] = deque()  # fully sent, maybe still playing
        self._wake = asyncio.Event()
        self._paused = False
        self._next_play_at = 0.0  # when the next frame starts playing at the carrier
        # A pause, resume or cancel starts a fresh schedule: the silence it makes is meant.
        self._rescheduled = False
        self._mark_seq = 0
        self.stats = OutputStats()
        self.first_frame_at: float | None = None  # the session reads and resets it per turn

    # -- producer side -------------------------------------------------
    def segment_open(self, text: str, turn: int, *, opens_reply: bool = True) -> Segment:
        segment = Segment(text=text, turn=turn, opens_reply=opens_reply)
        self._queue.append(segment)
        return segment

    def segment_feed(self, segment: Segment, frames: list[Pcm16]) -> None:
        segment.frames.extend(frames)
        self._wake.set()

    def segment_close(self, segment: Segment) -> None:
        self._mark_seq += 1
        segment.mark = f"t{segment.turn}-{self._mark_seq}"
        segment.complete = True
        self._wake.set()

    def mark_confirm(self, name: str) -> Segment | None:
        """The carrier played up to ``name``; ignored while paused (a clear flushes marks)."""
        if self._paused:
            return None
        for segment in (*self._sent, *self._queue):
            if segment.mark == name:
                segment.confirmed = True
                return segment
        return None

    # -- control -------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while anything is queued or still playing at the carrier."""
        return bool(self._queue) or time.monotonic() < self._next_play_at

    @property
    def paused(self) -> bool:
        return self._paused

    async def pause(self) -> None:
        """Stop at once; the frames the carrier has not played are sent again on resume."""
        if self._paused:
            return
        self._paused = True
        await self._sink.clear()
        now = time.monotonic()
        # Walk back over segments whose tail is still unplayed.
        while self._sent and self._sent[-1].play_end_at > now:
            self._queue.appendleft(self._sent.pop())
        for segment in self._queue:
            if segment.cursor and segment.play_end_at > now:
                unplayed = round((segment.play_end_at - now) / FRAME_S)
                segment.cursor = max(0, segment.cursor - unplayed)
                segment.play_end_at = now
                segment.mark_sent = False
        self._next_play_at = now

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._rescheduled = True
            self._wake.set()

    async def cancel(self) -> list[tuple[Segment, float]]:
        """Drop everything not yet heard; return the cut segments with the fraction heard."""
        if not self._paused:
            await self._sink.clear()
        now = time.monotonic()
        cut = [(s, s.heard_fraction(now)) for s in (*self._sent, *self._queue) if s.heard_fraction(now) < 1.0]
        self._queue.clear()
        self._sent.clear()
        self._paused = False
        self._rescheduled = True
        self._next_play_at = now
        return cut

    def pending_segments(self) -> list[Segment]:
        return [*self._sent, *self._queue]

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until everything queued has played; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.busy:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(FRAME_S)
        return True

    # -- the pacing loop ---------------------------------------------------
    async def run(self) -> None:
        while True:
            segment = self._queue[0] if self._queue else None
            waiting = segment is None or (segment.cursor >= len(segment.frames) and not segment.complete)
            if self._paused or waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            assert segment is not None
            if segment.cursor >= len(segment.frames):  # complete and fully sent
                self._queue.popleft()
                self._sent.append(segment)
                if not segment.mark_sent:
                    segment.mark_sent = True
                    if self.reports_playback:
                        await self._sink.send_mark(segment.mark)
                self._sent_prune()
                continue
            now = time.monotonic()
            if self._next_play_at < now:
                behind_s = now - self._next_play_at
                if segment.cursor == 0 and not segment.opens_reply and self.stats.frames_sent:
                    gap_ms = behind_s * 1000
                    if gap_ms >= 100:
                        self.stats.reply_gaps += 1
                        self.stats.reply_gap_max_ms = max(self.stats.reply_gap_max_ms, round(gap_ms, 1))
                elif segment.cursor > 0 and not self._rescheduled and behind_s > FRAME_S:
                    # Mid-sentence the carrier ran out of audio (this process was too busy to
                    # send, or synthesis fell behind): each frame time it went without is late.
                    late = int(behind_s / FRAME_S)
                    self.stats.frames_late += late
                    FRAMES_LATE.inc(late)
                self._next_play_at = now  # the line went quiet: a fresh schedule
            self._rescheduled = False
            send_at = self._next_play_at - self._lead_s
            if send_at > now:
                await asyncio.sleep(send_at - now)
                continue  # re-check: a pause or cancel may have come meanwhile
            frame = segment.frames[segment.cursor]
            await self._sink.send_frame(frame)
            self.stats.frames_sent += 1
            segment.cursor += 1
            if segment.first_sent_at is None:
                segment.first_sent_at = now
            if self.first_frame_at is None:
                self.first_frame_at = now
            self._next_play_at += FRAME_S
            segment.play_end_at = self._next_play_at

    def _sent_prune(self) -> None:
        now = time.monotonic()
        while len(self._sent) > 1 and self._sent[0].play_end_at < now - 5:
            self._sent.popleft()
