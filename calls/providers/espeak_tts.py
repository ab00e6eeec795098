"""Offline text-to-speech with the espeak-ng command-line program.

Robotic but tiny, instant (first audio in ~10-30 ms) and needs no model
weights, so it is the fallback when piper is not installed, and the voice CI
uses. espeak-ng is GPL-3.0; it runs as a separate program, never linked.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncIterator

import numpy as np

from calls.pipeline.protocols import Pcm16

# espeak-ng writes in pipe-buffer-sized pieces; reading up to 8 KB at a time
# passes each piece on as soon as it is written (~90 ms of audio).
_READ_BYTES = 8192
# Speaking rate (words per minute) at speed 1.0; espeak's own default is 175,
# a little fast for reading phone numbers to callers.
_BASE_WORDS_PER_MINUTE = 165


class EspeakUnavailableError(RuntimeError):
    """espeak-ng is not installed, so this engine cannot speak."""


class EspeakTextToSpeech:
    """Streams espeak-ng speech: one short-lived ``espeak-ng --stdout`` process per text.

    ``voice`` is an espeak-ng voice name (``espeak-ng --voices``), ``speed`` a
    multiplier of 165 words per minute and ``pitch`` 0..99 (espeak default 50).
    Chunks are int16 at :attr:`sample_rate` (22050 Hz), yielded as espeak
    writes them; closing or cancelling the iterator kills the process.
    """

    name = "espeak"
    sample_rate = 22050

    def __init__(
        self, *, voice: str = "en-us", speed: float = 1.0, pitch: int = 50, executable: str = "espeak-ng"
    ) -> None:
        path = shutil.which(executable)
        if path is None:
            raise EspeakUnavailableError(
                f"{executable!r} not found on PATH; install it with `apt-get install espeak-ng`"
            )
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if not 0 <= pitch <= 99:
            raise ValueError(f"pitch must be 0..99, got {pitch}")
        self.voice = voice
        self.speed = speed
        self.pitch = pitch
        self._executable = path

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Yield int16 PCM chunks for ``text`` as espeak-ng produces them."""
        if not text.strip():
            return
        words_per_minute = max(80, round(_BASE_WORDS_PER_MINUTE * self.speed))
        process = await asyncio.create_subprocess_exec(
            self._executable,
            "-v",
            self.voice,
            "-s",
            str(words_per_minute),
            "-p",
            str(self.pitch),
            "--stdout",
            # Everything after "--" is text, even if it starts with a dash.
            "--",
            text,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            try:
                rate = await _read_wav_header(process.stdout)
            except (asyncio.IncompleteReadError, ValueError) as error:
                stderr = (await process.stderr.read()).decode(errors="replace").strip()
                raise RuntimeError(f"espeak-ng produced no usable audio: {stderr or error}") from error
            if rate != self.sample_rate:
                raise RuntimeError(f"espeak-ng wrote {rate} Hz audio, expected {self.sample_rate} Hz")
            odd_byte = b""
            while data := await process.stdout.read(_READ_BYTES):
                data = odd_byte + data
                usable = len(data) - len(data) % 2
                odd_byte = data[usable:]
                if usable:
                    yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
            if await process.wait() != 0:
                stderr = (await process.stderr.read()).decode(errors="replace").strip()
                raise RuntimeError(f"espeak-ng exited with {process.returncode}: {stderr}")
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _read_wav_header(stream: asyncio.StreamReader) -> int:
    """Consume a RIFF/WAVE header up to the start of the samples; return the sample rate.

    espeak-ng streams, so its RIFF and data sizes are placeholders: the data
    chunk is taken to run until end of stream. Only mono 16-bit PCM is accepted.
    """
    riff, _size, wave = struct.unpack("<4sI4s", await stream.readexactly(12))
    if riff != b"RIFF" or wave != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    rate: int | None = None
    while True:
        chunk_id, chunk_size = struct.unpack("<4sI", await stream.readexactly(8))
        if chunk_id == b"data":
            if rate is None:
                raise ValueError("WAV data chunk before fmt chunk")
            return rate
        body = await stream.readexactly(chunk_size + chunk_size % 2)  # chunks are word-aligned
        if chunk_id == b"fmt ":
            audio_format, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
            if (audio_format, channels, bits) != (1, 1, 16):
                raise ValueError(f"unsupported WAV format {audio_format}, {channels} ch, {bits} bit")
