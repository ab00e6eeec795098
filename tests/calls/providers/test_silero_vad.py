"""SileroVoiceActivityDetector on phone-line speech, silence and noise, at 8 and 16 kHz."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from calls.audio import mulaw_decode, mulaw_encode, pcm16_to_float32, resample
from calls.pipeline.protocols import VoiceActivityDetector
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.providers.silero_vad import SileroVoiceActivityDetector


@pytest.fixture(scope="module")
def phone_speech() -> np.ndarray:
    """Half a second of silence, a piper sentence through the μ-law line, half a second of silence (8 kHz)."""
    if not piper_available():
        pytest.skip("piper-tts makes the test speech")

    async def speak() -> tuple[np.ndarray, int]:
        tts = PiperTextToSpeech(variation=0)
        return np.concatenate([c async for c in tts.synthesize("Hi, my heating is broken.")]), tts.sample_rate

    pcm, rate = asyncio.run(speak())
    line = mulaw_decode(mulaw_encode(resample(pcm, rate, 8000)))
    silence = np.zeros(4000, dtype=np.int16)
    return np.concatenate((silence, line, silence))


def frames_of(signal: np.ndarray, size: int) -> np.ndarray:
    usable = signal.size // size * size
    return signal[:usable].reshape(-1, size)


def probabilities(vad: SileroVoiceActivityDetector, pcm: np.ndarray) -> np.ndarray:
    return np.array([vad.speech_probability(frame) for frame in frames_of(pcm16_to_float32(pcm), vad.frame_samples)])


@pytest.mark.parametrize(("rate", "frame_samples"), [(8000, 256), (16000, 512)])
def test_speech_scores_high_and_silence_low(phone_speech: np.ndarray, rate: int, frame_samples: int) -> None:
    vad = SileroVoiceActivityDetector(rate)
    assert isinstance(vad, VoiceActivityDetector)
    assert vad.frame_samples == frame_samples
    audio = phone_speech if rate == 8000 else resample(phone_speech, 8000, 16000)
    scores = probabilities(vad, audio)
    loudness = np.sqrt(np.mean(frames_of(pcm16_to_float32(audio), frame_samples) ** 2, axis=1))
    voiced = scores[loudness > 0.03]
    assert voiced.size > 20
    assert np.mean(voiced > 0.5) > 0.9
    lead_in = 4000 * rate // 8000 // frame_samples - 1  # frames of pure silence before the speech
    assert scores[:lead_in].max() < 0.5


@pytest.mark.parametrize("rate", [8000, 16000])
def test_noise_scores_low(rate: int) -> None:
    rng = np.random.default_rng(3)
    white = rng.normal(0, 1000, 2 * rate).astype(np.int16)
    hum = (3000 * np.sin(2 * np.pi * 60 * np.arange(2 * rate) / rate)).astype(np.int16)
    for noise in (white, hum):
        vad = SileroVoiceActivityDetector(rate)
        assert probabilities(vad, noise).max() < 0.5


def test_reset_forgets_the_past(phone_speech: np.ndarray) -> None:
    frame = pcm16_to_float32(phone_speech[8000 : 8000 + 256])
    fresh = SileroVoiceActivityDetector(8000).speech_probability(frame)
    used = SileroVoiceActivityDetector(8000)
    probabilities(used, phone_speech[:8000])
    used.reset()
    assert used.speech_probability(frame) == pytest.approx(fresh, abs=1e-6)


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="supports"):
        SileroVoiceActivityDetector(44100)
    vad = SileroVoiceActivityDetector(8000)
    with pytest.raises(ValueError, match="expected 256 samples"):
        vad.speech_probability(np.zeros(160, dtype=np.float32))
    # Read-only buffers (e.g. straight from the websocket's bytes) are fine.
    read_only = np.frombuffer(np.zeros(256, dtype=np.float32).tobytes(), dtype=np.float32)
    assert 0.0 <= vad.speech_probability(read_only) < 0.5
    vad.close()
    with pytest.raises(RuntimeError, match="closed"):
        vad.speech_probability(np.zeros(256, dtype=np.float32))


def test_detectors_are_pooled_so_each_call_starts_cheaply() -> None:
    first = SileroVoiceActivityDetector(16000)
    native = first._native
    first.close()
    started = time.perf_counter()
    second = SileroVoiceActivityDetector(16000)
    assert time.perf_counter() - started < 0.01  # a new native detector takes ~50 ms
    assert second._native is native
    del second  # garbage collection returns it too
    assert SileroVoiceActivityDetector(16000)._native is native
