"""Provider lookup by name."""

from __future__ import annotations

import pytest

from calls.pipeline.protocols import SpeechToText, TextToSpeech, VoiceActivityDetector
from calls.providers import registry
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.providers.silero_vad import SileroVoiceActivityDetector
from calls.providers.whisper_stt import WhisperSpeechToText


def test_stt_by_name() -> None:
    stt = registry.stt_for("whisper", cpu_threads=2, num_workers=1)
    assert isinstance(stt, WhisperSpeechToText)
    assert isinstance(stt, SpeechToText)


def test_tts_by_name_with_options() -> None:
    espeak = registry.tts_for("espeak", voice="en-gb", speed=1.2)
    assert isinstance(espeak, EspeakTextToSpeech)
    assert isinstance(espeak, TextToSpeech)
    assert (espeak.voice, espeak.speed) == ("en-gb", 1.2)


@pytest.mark.skipif(not piper_available(), reason="piper-tts is not installed")
def test_offline_prefers_piper() -> None:
    assert isinstance(registry.tts_for("piper"), PiperTextToSpeech)
    offline = registry.tts_for("offline", speed=0.9)
    assert isinstance(offline, PiperTextToSpeech)
    assert offline.speed == 0.9


def test_offline_falls_back_to_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "piper_available", lambda: False)
    assert isinstance(registry.tts_for("offline", speed=0.9), EspeakTextToSpeech)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_vad_for_a_rate(rate: int) -> None:
    vad = registry.vad_for(rate)
    assert isinstance(vad, SileroVoiceActivityDetector)
    assert isinstance(vad, VoiceActivityDetector)
    assert vad.sample_rate == rate


def test_unknown_names_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown speech-to-text provider 'deepgram'; known: whisper"):
        registry.stt_for("deepgram")
    with pytest.raises(ValueError, match=r"unknown text-to-speech provider 'Piper'; known: espeak, offline, piper"):
        registry.tts_for("Piper")
