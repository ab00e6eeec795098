"""Recordings of demo calls: espeak-ng voices mixed into the pipeline's stereo WAV."""

from __future__ import annotations

import io
import subprocess
import wave

import numpy as np

from calls.models import Utterance
from voicedesk.demo.story import Line

RECORDING_RATE = 8000
ESPEAK_RATE = 22050


def espeak(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng: int16 mono samples at ``ESPEAK_RATE``."""
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "165", "--stdout", "--", text],
        capture_output=True,
        check=True,
        timeout=30,
    )
    # espeak streams, so its header sizes are placeholders: the samples run from "data" to the end.
    start = result.stdout.index(b"data") + 8
    data = result.stdout[start:]
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


def stereo_wav(utterances: list[Utterance], lines: list[Line]) -> bytes:
    """The call as the pipeline records it: caller left, agent right, 8 kHz 16-bit."""
    length = int((max(u.end_s for u in utterances) + 0.5) * RECORDING_RATE)
    stereo = np.zeros((length, 2), dtype=np.int16)
    for utterance, line in zip(utterances, lines, strict=True):
        if line.audio is None or len(line.audio) == 0:
            continue
        samples = _resample(line.audio)
        begin = int(utterance.start_s * RECORDING_RATE)
        end = min(begin + len(samples), length)
        stereo[begin:end, 0 if line.speaker == "caller" else 1] = samples[: end - begin]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RECORDING_RATE)
        wav.writeframes(stereo.tobytes())
    return buffer.getvalue()


def _resample(samples: np.ndarray) -> np.ndarray:
    """espeak's 22050 Hz down to the phone's 8000 Hz (linear: good enough for a demo voice)."""
    count = int(len(samples) * RECORDING_RATE / ESPEAK_RATE)
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples.astype(np.float32)).astype(np.int16)
