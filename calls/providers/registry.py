"""Provider lookup by name: the only place that maps config strings to engines.

Tenant and platform settings name their engines ("whisper", "piper", ...);
the pipeline asks here and gets back an object satisfying the protocol.
Cloud adapters register by adding an entry to ``STT_PROVIDERS`` or
``TTS_PROVIDERS``. Engines import their heavy libraries on first use, so
importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from calls.pipeline.protocols import SpeechToText, TextToSpeech, VoiceActivityDetector
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.providers.silero_vad import SileroVoiceActivityDetector
from calls.providers.whisper_stt import WhisperSpeechToText


def _offline_tts(**opts: Any) -> TextToSpeech:
    # Piper sounds far better; espeak-ng needs no model and is always there.
    # Only options both accept (``speed``) are portable across the choice.
    if piper_available():
        return PiperTextToSpeech(**opts)
    return EspeakTextToSpeech(**opts)


STT_PROVIDERS: dict[str, Callable[..., SpeechToText]] = {
    "whisper": WhisperSpeechToText,
}

TTS_PROVIDERS: dict[str, Callable[..., TextToSpeech]] = {
    "piper": PiperTextToSpeech,
    "espeak": EspeakTextToSpeech,
    "offline": _offline_tts,
}


def stt_for(name: str, **opts: Any) -> SpeechToText:
    """Build the speech-to-text engine called ``name`` with engine-specific ``opts``."""
    return _lookup(STT_PROVIDERS, "speech-to-text", name)(**opts)


def tts_for(name: str, **opts: Any) -> TextToSpeech:
    """Build the text-to-speech engine called ``name`` with engine-specific ``opts``."""
    return _lookup(TTS_PROVIDERS, "text-to-speech", name)(**opts)


def vad_for(sample_rate: int) -> VoiceActivityDetector:
    """A fresh per-call voice activity detector for ``sample_rate`` (8000 or 16000)."""
    return SileroVoiceActivityDetector(sample_rate)


def _lookup(table: dict[str, Callable[..., Any]], kind: str, name: str) -> Callable[..., Any]:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ValueError(f"unknown {kind} provider {name!r}; known: {known}") from None
