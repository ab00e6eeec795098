"""PiperTextToSpeech and its worker process: latency, multiplexing, cancellation, restarts."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator

import numpy as np
import pytest

from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.providers import piper_tts, piper_worker
from calls.providers.piper_tts import (
    PiperTextToSpeech,
    PiperUnavailableError,
    PiperWorkerError,
    piper_available,
    worker_stats,
)

needs_piper = pytest.mark.skipif(not piper_available(), reason="piper-tts is not installed")

LONG_TEXT = " ".join(f"This is sentence number {n} of a rather long reply." for n in range(1, 9))


async def collect(stream: AsyncIterator[Pcm16]) -> list[Pcm16]:
    return [chunk async for chunk in stream]


def test_wire_frames_round_trip() -> None:
    buffer = io.BytesIO()
    piper_worker.write_frame(buffer, piper_worker.AUDIO, 7, b"\x01\x02")
    piper_worker.write_frame(buffer, piper_worker.END, 2**32 - 1)
    buffer.seek(0)
    assert piper_worker.read_frame(buffer) == (b"A", 7, b"\x01\x02")
    assert piper_worker.read_frame(buffer) == (b"E", 2**32 - 1, b"")
    assert piper_worker.read_frame(buffer) is None


def test_wire_rejects_truncated_and_oversized_frames() -> None:
    with pytest.raises(ValueError, match="inside a frame"):
        piper_worker.read_frame(io.BytesIO(piper_worker.HEADER.pack(b"A", 1, 10) + b"short"))
    with pytest.raises(ValueError, match="exceeds"):
        piper_worker.read_frame(io.BytesIO(piper_worker.HEADER.pack(b"A", 1, piper_worker.MAX_PAYLOAD + 1)))


def test_the_application_process_never_imports_piper() -> None:
    code = "import sys, calls.providers.piper_tts, calls.providers.registry; sys.exit('piper' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_piper_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(piper_tts, "piper_available", lambda: False)
    with pytest.raises(PiperUnavailableError, match="not installed"):
        PiperTextToSpeech()


@needs_piper
@pytest.mark.asyncio
async def test_one_chunk_per_sentence() -> None:
    # Time to the first chunk is measured by bench/offline_speech.py, not asserted here.
    tts = PiperTextToSpeech()
    assert isinstance(tts, TextToSpeech)
    assert (tts.name, tts.sample_rate) == ("piper", 22050)
    await tts.warm_up()
    stream = tts.synthesize("Thanks for calling. How can I help you today?")
    first = await anext(stream)
    rest = await collect(stream)
    assert first.dtype == np.int16
    assert len(rest) == 1  # two sentences, two chunks
    assert 0.5 < (first.size + rest[0].size) / tts.sample_rate < 5.0
    assert np.abs(first).max() > 10000  # piper normalises each sentence to full scale


@needs_piper
@pytest.mark.asyncio
async def test_concurrent_requests_get_their_own_audio() -> None:
    tts = PiperTextToSpeech()
    texts = ["Yes.", "One moment please. Let me check.", "Your booking is confirmed. We will call you back. Goodbye."]
    results = await asyncio.gather(*(collect(tts.synthesize(text)) for text in texts))
    # Each request gets exactly its own sentences, and longer texts take longer to say.
    assert [len(chunks) for chunks in results] == [1, 2, 3]
    seconds = [sum(chunk.size for chunk in chunks) / tts.sample_rate for chunks in results]
    assert seconds[0] < 1.0 < seconds[1] < seconds[2]
    assert worker_stats().in_flight == 0


@needs_piper
@pytest.mark.asyncio
async def test_closing_the_stream_makes_the_worker_skip_the_rest() -> None:
    tts = PiperTextToSpeech()
    await tts.warm_up()
    dropped_before = worker_stats().dropped_chunks
    stream = aiter(tts.synthesize(LONG_TEXT))
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()
    assert worker_stats().in_flight == 0
    # Give the worker time to have spoken all 8 sentences had it not been told:
    # 7 would be dropped then; now only what it made before the cancel landed.
    await asyncio.sleep(0.8)
    assert worker_stats().dropped_chunks - dropped_before <= 2
    assert len(await collect(tts.synthesize("Still here."))) == 1


@needs_piper
@pytest.mark.asyncio
async def test_cancelling_the_consumer_task_releases_the_request() -> None:
    tts = PiperTextToSpeech()
    await tts.warm_up()
    first_chunk = asyncio.Event()

    async def speak() -> None:
        async for _chunk in tts.synthesize(LONG_TEXT):
            first_chunk.set()

    task = asyncio.create_task(speak())
    await asyncio.wait_for(first_chunk.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert worker_stats().in_flight == 0


@needs_piper
@pytest.mark.asyncio
async def test_a_dead_worker_fails_its_requests_and_is_restarted() -> None:
    tts = PiperTextToSpeech()
    await tts.warm_up()
    before = worker_stats()
    assert before.pid is not None
    stream = tts.synthesize(LONG_TEXT)
    await anext(stream)
    os.kill(before.pid, signal.SIGKILL)
    with pytest.raises(PiperWorkerError, match="exited"):
        await collect(stream)
    assert len(await collect(tts.synthesize("Back again."))) == 1
    after = worker_stats()
    assert after.starts == before.starts + 1
    assert after.pid not in (None, before.pid)


@needs_piper
@pytest.mark.asyncio
async def test_blank_text_yields_nothing() -> None:
    assert await collect(PiperTextToSpeech().synthesize("  ")) == []


@needs_piper
@pytest.mark.asyncio
async def test_oversized_text_is_refused_without_harming_the_worker() -> None:
    tts = PiperTextToSpeech()
    await tts.warm_up()
    pid = worker_stats().pid
    with pytest.raises(ValueError, match="too long"):
        await collect(tts.synthesize("a" * (piper_worker.MAX_PAYLOAD + 1)))
    assert worker_stats().pid == pid


@needs_piper
@pytest.mark.asyncio
async def test_no_variation_gives_the_same_samples_every_time_and_the_voice_default_does_not() -> None:
    text = "Your reference number is four two seven."
    steady = PiperTextToSpeech(variation=0)
    first, second = await collect(steady.synthesize(text)), await collect(steady.synthesize(text))
    natural = PiperTextToSpeech()
    third, fourth = await collect(natural.synthesize(text)), await collect(natural.synthesize(text))

    assert np.array_equal(np.concatenate(first), np.concatenate(second))
    assert not np.array_equal(np.concatenate(third), np.concatenate(fourth))


@pytest.mark.parametrize("variation", [-0.1, 2.5])
def test_variation_outside_its_range_is_refused(variation: float) -> None:
    with pytest.raises(ValueError, match="variation must be between 0 and 2"):
        PiperTextToSpeech(variation=variation)
