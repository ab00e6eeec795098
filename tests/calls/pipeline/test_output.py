"""Pacing, marks, pause/resume and cancel of agent audio, against a recording sink."""

import asyncio
import time

import numpy as np
import pytest

from calls.pipeline.output import FRAME_S, PacedOutput
from calls.pipeline.protocols import Pcm16


class RecordingSink:
    """A transport stand-in that timestamps what the output sends."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, int | str]] = []

    async def send_frame(self, frame: Pcm16) -> None:
        # The frame's tag: every sample of a test frame holds it.
        self.events.append((time.monotonic(), "frame", int(frame[0])))

    async def send_mark(self, name: str) -> None:
        self.events.append((time.monotonic(), "mark", name))

    async def clear(self) -> None:
        self.events.append((time.monotonic(), "clear", ""))

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.events]


def _frames(n: int, tag: int) -> list[Pcm16]:
    return [np.full(160, tag, dtype=np.int16) for _ in range(n)]


@pytest.mark.asyncio
async def test_frames_go_out_in_real_time_with_a_small_lead_and_a_mark_per_segment() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    started = time.monotonic()
    segment = output.segment_open("Hello there.", turn=1)
    output.segment_feed(segment, _frames(25, 1))
    output.segment_close(segment)
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    frame_times = [t - started for t, kind, _ in sink.events if kind == "frame"]
    assert len(frame_times) == 25
    assert sink.kinds()[-1] == "mark"
    assert sink.events[-1][2] == segment.mark
    # Frame n may leave at most the lead before its play time n * 20 ms.
    for n, sent in enumerate(frame_times):
        assert sent >= n * FRAME_S - 0.08 - 0.005
    assert frame_times[-1] == pytest.approx(24 * FRAME_S - 0.08, abs=0.03)
    assert output.stats.frames_sent == 25
    assert output.stats.frames_late == 0


@pytest.mark.asyncio
async def test_pause_clears_the_carrier_and_resume_resends_what_was_not_heard() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    segment = output.segment_open("A sentence long enough to interrupt.", turn=1)
    output.segment_feed(segment, [np.full(160, i, dtype=np.int16) for i in range(50)])
    output.segment_close(segment)
    await asyncio.sleep(0.3)
    await output.pause()
    sent_before = [frame for _, kind, frame in sink.events if kind == "frame"]
    heard = segment.cursor
    await asyncio.sleep(0.1)
    assert [kind for kind in sink.kinds() if kind != "frame"] == ["clear"]
    output.resume()
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    resent = [frame for _, kind, frame in sink.events[len(sent_before) + 1 :] if kind == "frame"]
    # Everything from the first unheard frame is sent again, in order, to the end.
    assert resent == list(range(heard, 50))
    assert len(sent_before) - heard in range(3, 6)  # the frames inside the 80 ms lead


@pytest.mark.asyncio
async def test_cancel_drops_the_rest_and_reports_how_much_was_heard() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    first = output.segment_open("First sentence.", turn=1)
    output.segment_feed(first, _frames(10, 1))
    output.segment_close(first)
    second = output.segment_open("Second sentence here.", turn=1)
    output.segment_feed(second, _frames(100, 2))
    output.segment_close(second)
    await asyncio.sleep(0.6)

    cut = await output.cancel()
    await asyncio.sleep(0.1)
    runner.cancel()

    assert [segment for segment, _ in cut] == [second]
    assert 0.1 < cut[0][1] < 0.5
    assert sink.kinds()[-1] == "clear"
    assert not output.busy


@pytest.mark.asyncio
async def test_mark_echo_confirms_a_segment_except_while_paused() -> None:
    output = PacedOutput(RecordingSink())
    segment = output.segment_open("Hi.", turn=1)
    output.segment_close(segment)
    assert output.mark_confirm(segment.mark) is segment
    assert segment.confirmed is True
    await output.pause()
    other = output.segment_open("Again.", turn=2)
    output.segment_close(other)
    assert output.mark_confirm(other.mark) is None
    assert other.confirmed is False


@pytest.mark.asyncio
async def test_a_stall_mid_sentence_counts_the_frame_times_the_carrier_went_without() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    segment = output.segment_open("Thanks for calling.", turn=1)
    output.segment_feed(segment, _frames(5, 1))
    # The rest of the sentence comes 300 ms late: 100 ms of audio and the 80 ms lead cover 180 ms of it.
    await asyncio.sleep(0.3)
    output.segment_feed(segment, _frames(5, 2))
    output.segment_close(segment)
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    assert output.stats.frames_sent == 10
    # About 200 ms dry at the carrier: 10 frame times (the loop's timers add a frame at most).
    assert output.stats.frames_late in (9, 10, 11)
    assert output.stats.reply_gaps == 0


@pytest.mark.asyncio
async def test_a_pause_and_resume_mid_sentence_is_not_late() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    segment = output.segment_open("Thanks for calling, how can I help?", turn=1)
    output.segment_feed(segment, _frames(20, 1))
    output.segment_close(segment)
    await asyncio.sleep(0.1)
    await output.pause()
    await asyncio.sleep(0.3)
    output.resume()
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    assert output.stats.frames_late == 0


@pytest.mark.asyncio
async def test_a_silence_inside_one_reply_is_counted_but_one_between_replies_is_not() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08)
    runner = asyncio.create_task(output.run())
    first = output.segment_open("Thank you.", turn=1)
    output.segment_feed(first, _frames(5, 1))
    output.segment_close(first)
    # The next sentence of the same reply is late: the line goes quiet mid-reply.
    second = output.segment_open("Let me read that back.", turn=1, opens_reply=False)
    waited = time.monotonic()
    await asyncio.sleep(0.4)
    waited = time.monotonic() - waited  # more than 0.4 s on a busy machine
    output.segment_feed(second, _frames(5, 2))
    output.segment_close(second)
    assert await output.wait_idle(timeout=3)
    # A new reply after a pause (in the same turn: a re-prompt after silence) is not a gap.
    await asyncio.sleep(0.3)
    third = output.segment_open("Hello? Are you still there?", turn=1)
    output.segment_feed(third, _frames(5, 3))
    output.segment_close(third)
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    assert output.stats.reply_gaps == 1
    # The first sentence filled 100 ms of the 400 ms wait.
    assert 250 <= output.stats.reply_gap_max_ms <= 1000 * waited


@pytest.mark.asyncio
async def test_without_playback_reports_no_mark_is_sent_and_the_clock_tells_what_was_heard() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08, reports_playback=False)
    runner = asyncio.create_task(output.run())
    first = output.segment_open("First sentence.", turn=1)
    output.segment_feed(first, _frames(10, 1))
    output.segment_close(first)
    second = output.segment_open("Second sentence here.", turn=1)
    output.segment_feed(second, _frames(50, 2))
    output.segment_close(second)
    await asyncio.sleep(10 * FRAME_S + 0.4)

    cut = await output.cancel()
    runner.cancel()

    assert "mark" not in sink.kinds()
    assert first.confirmed is False
    # The first sentence played out by the clock; about 0.4 s of the 1 s second one was heard.
    assert [segment for segment, _ in cut] == [second]
    assert 0.3 < cut[0][1] < 0.55
    assert sink.kinds().count("frame") >= 30


@pytest.mark.asyncio
async def test_with_playback_reports_each_segment_sends_its_mark() -> None:
    sink = RecordingSink()
    output = PacedOutput(sink, lead_s=0.08, reports_playback=True)
    runner = asyncio.create_task(output.run())
    for tag in (1, 2):
        segment = output.segment_open(f"Sentence {tag}.", turn=1)
        output.segment_feed(segment, _frames(3, tag))
        output.segment_close(segment)
    assert await output.wait_idle(timeout=3)
    runner.cancel()

    assert [kind for kind in sink.kinds() if kind != "frame"] == ["mark", "mark"]
    assert [value for _, kind, value in sink.events if kind == "mark"] == ["t1-1", "t1-2"]
