"""EspeakTextToSpeech: WAV header parsing, streaming, cancellation."""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncGenerator

import numpy as np
import psutil
import pytest

from calls.pipeline.protocols import TextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech, EspeakUnavailableError, _read_wav_header

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")

LONG_TEXT = "Thanks for calling Acme Plumbing and Heating. " * 6


def wav_header(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(name + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2) for name, data in chunks)
    return b"RIFF" + struct.pack("<I", 0x7FFFFFFF) + b"WAVE" + body + b"data" + struct.pack("<I", 0x7FFFFFFF)


def fmt(rate: int, channels: int = 1, bits: int = 16, audio_format: int = 1) -> tuple[bytes, bytes]:
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", audio_format, channels, rate, rate * align, align, bits)


async def parse(data: bytes) -> tuple[int, bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    rate = await _read_wav_header(reader)
    return rate, await reader.read()


@pytest.mark.asyncio
async def test_header_parser_skips_unknown_chunks_and_leaves_the_samples() -> None:
    rate, rest = await parse(wav_header((b"LIST", b"odd"), fmt(22050)) + b"\x01\x02")
    assert (rate, rest) == (22050, b"\x01\x02")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFX" + bytes(8), "not a RIFF"),
        (wav_header(fmt(22050, channels=2)), "unsupported WAV format"),
        (wav_header(fmt(22050, audio_format=3, bits=32)), "unsupported WAV format"),
        (wav_header(), "data chunk before fmt"),
    ],
)
async def test_header_parser_rejects_what_it_cannot_play(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await parse(data)


@pytest.mark.asyncio
async def test_header_parser_needs_a_whole_header() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        await parse(b"RIFF\0\0")


def test_missing_program_raises_a_clear_error() -> None:
    with pytest.raises(EspeakUnavailableError, match="not found on PATH"):
        EspeakTextToSpeech(executable="no-such-espeak-binary")


@needs_espeak
@pytest.mark.asyncio
async def test_streams_speech_as_it_is_made() -> None:
    # Time to the first chunk is measured by bench/offline_speech.py, not asserted here.
    tts = EspeakTextToSpeech()
    assert isinstance(tts, TextToSpeech)
    chunks = [chunk async for chunk in tts.synthesize(LONG_TEXT)]
    assert all(chunk.dtype == np.int16 for chunk in chunks)
    assert len(chunks) > 10  # streamed as produced, not in one piece
    seconds = sum(chunk.size for chunk in chunks) / tts.sample_rate
    assert 10 < seconds < 25
    assert np.abs(np.concatenate(chunks)).max() > 3000


@needs_espeak
@pytest.mark.asyncio
async def test_speed_changes_duration_and_dashes_are_text() -> None:
    async def seconds(tts: EspeakTextToSpeech, text: str) -> float:
        return sum([chunk.size async for chunk in tts.synthesize(text)]) / tts.sample_rate

    text = "-v is not an option here, it is text."
    normal = await seconds(EspeakTextToSpeech(), text)
    fast = await seconds(EspeakTextToSpeech(speed=1.5), text)
    assert normal > 1.0
    assert fast < 0.8 * normal
    assert await seconds(EspeakTextToSpeech(), "   ") == 0


@needs_espeak
@pytest.mark.asyncio
async def test_closing_the_stream_kills_espeak() -> None:
    stream = EspeakTextToSpeech().synthesize(LONG_TEXT * 10)
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    assert any(child.name() == "espeak-ng" for child in psutil.Process().children())
    await stream.aclose()
    assert not any(child.name() == "espeak-ng" for child in psutil.Process().children())


@needs_espeak
@pytest.mark.asyncio
async def test_a_bad_voice_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="espeak-ng"):
        [chunk async for chunk in EspeakTextToSpeech(voice="xx-no-such-voice").synthesize("hello")]
