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
environment variable that holds it, or ``tenant_key: true`` says the
business stored its own key for the provider (``calls.models.ProviderKey``,
which the pipeline's factory decrypts and passes in); the engine receives
the key itself as ``api_key`` when it is built.
"""

from __future__ import annotations

import asyncio
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
from calls.providers.assemblyai_stt import AssemblyAISpeechToText, assemblyai_key_check
from calls.providers.cartesia_tts import CartesiaTextToSpeech, cartesia_voices
from calls.providers.elevenlabs_tts import ElevenLabsTextToSpeech, elevenlabs_voices
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.minilm import MiniLMEmbedder
from calls.providers.piper_tts import PiperTextToSpeech, piper_available, piper_voices
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice
from calls.providers.silero_vad import SileroVoiceActivityDetector
from calls.providers.whisper_stt import WhisperSpeechToText

T = TypeVar("T")
OptionValue = str | int | float | bool
KEY_REF_OPTION = "key_ref"
TENANT_KEY_OPTION = "tenant_key"


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

    def uses_tenant_key(self) -> bool:
        """True if the engine takes the business's own stored key for its provider."""
        return any(key == TENANT_KEY_OPTION and value is True for key, value in self.options)

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
        """A new engine for ``spec``; ``context`` adds per-call arguments (e.g. a VAD's sample rate).

        A spec with ``tenant_key`` needs the business's key as ``api_key`` in
        ``context``; without it, ``ProviderConfigError``.
        """
        spec = EngineSpec.of(spec) if isinstance(spec, str) else spec
        try:
            factory = self._factories[spec.name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise ValueError(f"unknown {self.role} provider {spec.name!r}; known: {known}") from None
        options: dict[str, Any] = spec.kwargs()
        if options.pop(TENANT_KEY_OPTION, False):
            # The business's own key wins over any platform key named beside it.
            options.pop(KEY_REF_OPTION, None)
            if not context.get("api_key"):
                raise ProviderConfigError(f"no key of the business's own is stored for {spec.name!r}")
        elif KEY_REF_OPTION in options:
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
    # Only options both accept (``speed``) are portable across the choice; a
    # piper voice chosen on the agent page means nothing to espeak-ng.
    if piper_available():
        return PiperTextToSpeech(**opts)
    if str(opts.get("voice", "")).endswith("_piper_voice"):
        del opts["voice"]
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


# The cloud providers a business may bring its own key for, and the engine
# option that says where the provider's API is (the same server serves the
# voice listing and the key test).
KEYED_PROVIDERS: dict[str, str] = {"elevenlabs": "base_url", "cartesia": "base_url", "assemblyai": "api_host"}
# Voice listings by text-to-speech provider: ``(api_key, base_url, timeout_s) -> voices``.
VOICE_LISTINGS: dict[str, Callable[..., list[ProviderVoice]]] = {
    "elevenlabs": elevenlabs_voices,
    "cartesia": cartesia_voices,
}
# The engine option that takes a voice chosen from a listing, by text-to-speech provider.
VOICE_OPTIONS: dict[str, str] = {"elevenlabs": "voice_id", "cartesia": "voice_id", "piper": "voice", "offline": "voice"}


def local_voices(provider: str) -> list[ProviderVoice]:
    """The installed voices of an offline engine (piper's voice packages; "offline" speaks piper's when it can)."""
    if provider in ("piper", "offline") and piper_available():
        return piper_voices()
    return []


def provider_key_check(provider: str, *, api_key: str, url: str, timeout_s: float) -> KeyCheck:
    """Ask ``provider`` (at ``url``; empty: its own API) whether it accepts ``api_key``.

    A TTS provider is asked for its voices; AssemblyAI opens a streaming
    session and ends it at once (on an event loop of its own: call this from
    synchronous code, e.g. a view).
    """
    if provider == "assemblyai":
        return asyncio.run(assemblyai_key_check(api_key=api_key, api_host=url, timeout_s=timeout_s))
    listing = VOICE_LISTINGS.get(provider)
    if listing is None:
        raise ProviderConfigError(f"{provider!r} takes no key of a business's own")
    try:
        voices = listing(api_key=api_key, base_url=url, timeout_s=timeout_s)
    except ProviderCallError as exc:
        return exc.check
    return KeyCheck("ok", f"The key works: {len(voices)} voice{'s' if len(voices) != 1 else ''} available.")
