"""Provider lookup by role and name: the only place that maps config strings to engines.

There is one registry per role: voice activity detection, speech-to-text,
text-to-speech, the dialogue policy and the FAQ embedder. Tenant and
platform settings name an engine and its options (an ``EngineSpec``); the
pipeline asks the role's registry and gets back an object satisfying the
role's protocol. A cloud adapter registers with one line in its role's
table below. Engines import their heavy libraries on first use, so
importing this module stays cheap.

Options are what the engine's constructor takes (a voice id, a model, a
speed). A secret never sits in a tenant's options: ``key_ref`` names the
environment variable that holds it, and the engine receives the key itself
as ``api_key`` when it is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from calls.dialogue.llm import llm_policy, ollama_policy
from calls.dialogue.policy import ReceptionistPolicy
from calls.pipeline.protocols import (
    DialoguePolicy,
    SpeechToText,
    StreamingSpeechToText,
    TextEmbedder,
    TextToSpeech,
    VoiceActivityDetector,
)
from calls.providers.assemblyai_stt import AssemblyAISpeechToText
from calls.providers.cartesia_tts import CartesiaTextToSpeech
from calls.providers.elevenlabs_tts import ElevenLabsTextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.minilm import MiniLMEmbedder
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.providers.silero_vad import SileroVoiceActivityDetector
from calls.providers.whisper_stt import WhisperSpeechToText

T = TypeVar("T")
OptionValue = str | int | float | bool
KEY_REF_OPTION = "key_ref"


class ProviderConfigError(ValueError):
    """An engine is named or configured in a way that cannot work."""


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """An engine by name and options: what a tenant configures, and the key shared engines are kept by."""

    name: str
    options: tuple[tuple[str, OptionValue], ...] = ()

    @classmethod
    def of(cls, name: str, options: Mapping[str, Any] | None = None) -> EngineSpec:
        """A spec from a name and an options mapping (e.g. a JSON field); values must be scalars."""
        items: list[tuple[str, OptionValue]] = []
        for key, value in sorted((options or {}).items()):
            if not isinstance(value, str | int | float | bool):
                raise ProviderConfigError(f"option {key!r} of {name!r} must be a string, number or boolean")
            items.append((str(key), value))
        return cls(name=name, options=tuple(items))

    def kwargs(self) -> dict[str, OptionValue]:
        return dict(self.options)

    def __str__(self) -> str:
        # Safe to log: a key reference names a variable, never holds a secret.
        return self.name if not self.options else f"{self.name}({', '.join(f'{k}={v}' for k, v in self.options)})"


def provider_key(ref: str) -> str:
    """The secret a ``key_ref`` names, from the process environment."""
    key = os.environ.get(ref, "")
    if not key:
        raise ProviderConfigError(f"no key stored under {ref!r}")
    return key


class ProviderRegistry(Generic[T]):
    """Engine factories of one role, by name. ``name in registry`` and iteration give the names."""

    def __init__(self, role: str, factories: Mapping[str, Callable[..., T]]) -> None:
        self.role = role
        self._factories: dict[str, Callable[..., T]] = dict(factories)

    def register(self, name: str, factory: Callable[..., T]) -> None:
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        del self._factories[name]

    def factory(self, name: str) -> Callable[..., T] | None:
        """What builds the engine called ``name`` (None if there is none)."""
        return self._factories.get(name)

    def build(self, spec: EngineSpec | str, **context: Any) -> T:
        """A new engine for ``spec``; ``context`` adds per-call arguments (e.g. a VAD's sample rate)."""
        spec = EngineSpec.of(spec) if isinstance(spec, str) else spec
        try:
            factory = self._factories[spec.name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise ValueError(f"unknown {self.role} provider {spec.name!r}; known: {known}") from None
        options: dict[str, Any] = spec.kwargs()
        if KEY_REF_OPTION in options:
            options["api_key"] = provider_key(str(options.pop(KEY_REF_OPTION)))
        return factory(**options, **context)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def _offline_tts(**opts: Any) -> TextToSpeech:
    # Piper sounds far better; espeak-ng needs no model and is always there.
    # Only options both accept (``speed``) are portable across the choice.
    if piper_available():
        return PiperTextToSpeech(**opts)
    return EspeakTextToSpeech(**opts)


VAD_PROVIDERS: ProviderRegistry[VoiceActivityDetector] = ProviderRegistry(
    "voice-activity", {"silero": SileroVoiceActivityDetector}
)
# Batch engines (``SpeechToText``) and streaming ones (``StreamingSpeechToText``) share one table.
STT_PROVIDERS: ProviderRegistry[SpeechToText | StreamingSpeechToText] = ProviderRegistry(
    "speech-to-text", {"whisper": WhisperSpeechToText, "assemblyai": AssemblyAISpeechToText}
)
TTS_PROVIDERS: ProviderRegistry[TextToSpeech] = ProviderRegistry(
    "text-to-speech",
    {
        "piper": PiperTextToSpeech,
        "espeak": EspeakTextToSpeech,
        "offline": _offline_tts,
        "elevenlabs": ElevenLabsTextToSpeech,
        "cartesia": CartesiaTextToSpeech,
    },
)
# "openai" is any OpenAI-compatible chat server (options: model, base_url, key_ref); "ollama" needs no key.
POLICY_PROVIDERS: ProviderRegistry[DialoguePolicy] = ProviderRegistry(
    "dialogue", {"receptionist": ReceptionistPolicy, "openai": llm_policy, "ollama": ollama_policy}
)
EMBEDDER_PROVIDERS: ProviderRegistry[TextEmbedder] = ProviderRegistry("embedder", {"minilm": MiniLMEmbedder})


def stt_for(name: str, **opts: Any) -> SpeechToText:
    """Build the batch speech-to-text engine called ``name`` with engine-specific ``opts``."""
    engine = STT_PROVIDERS.build(EngineSpec.of(name, opts))
    if not isinstance(engine, SpeechToText):
        raise ProviderConfigError(f"{name!r} is a streaming engine; open a stream on it instead")
    return engine


def tts_for(name: str, **opts: Any) -> TextToSpeech:
    """Build the text-to-speech engine called ``name`` with engine-specific ``opts``."""
    return TTS_PROVIDERS.build(EngineSpec.of(name, opts))


def is_streaming_stt(name: str) -> bool:
    """True if the speech-to-text engine called ``name`` opens a stream per call
    (and hears, and bills, the whole call) rather than transcribing turns."""
    return callable(getattr(STT_PROVIDERS.factory(name), "open", None))


def vad_for(sample_rate: int, name: str = "silero") -> VoiceActivityDetector:
    """A fresh per-call voice activity detector for ``sample_rate`` (8000 or 16000)."""
    return VAD_PROVIDERS.build(name, sample_rate=sample_rate)
