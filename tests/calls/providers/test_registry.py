"""Provider lookup by name."""

from __future__ import annotations

import pytest

from calls.pipeline.protocols import SpeechToText, StreamingSpeechToText, TextToSpeech, VoiceActivityDetector
from calls.providers import registry
from calls.providers.assemblyai_stt import AssemblyAISpeechToText
from calls.providers.cartesia_tts import CartesiaTextToSpeech
from calls.providers.elevenlabs_tts import ElevenLabsTextToSpeech
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
    with pytest.raises(ValueError, match=r"unknown speech-to-text provider 'deepgram'; known: assemblyai, whisper"):
        registry.stt_for("deepgram")
    with pytest.raises(
        ValueError,
        match=r"unknown text-to-speech provider 'Piper'; known: cartesia, elevenlabs, espeak, offline, piper",
    ):
        registry.tts_for("Piper")


def test_every_role_has_a_registry_of_names() -> None:
    assert sorted(registry.VAD_PROVIDERS) == ["silero"]
    assert sorted(registry.STT_PROVIDERS) == ["assemblyai", "whisper"]
    assert sorted(registry.TTS_PROVIDERS) == ["cartesia", "elevenlabs", "espeak", "offline", "piper"]
    assert sorted(registry.POLICY_PROVIDERS) == ["ollama", "openai", "receptionist"]
    assert sorted(registry.EMBEDDER_PROVIDERS) == ["minilm"]
    assert "whisper" in registry.STT_PROVIDERS
    assert "deepgram" not in registry.STT_PROVIDERS


def test_a_spec_is_a_name_and_sorted_options_and_keys_shared_engines() -> None:
    spec = registry.EngineSpec.of("espeak", {"voice": "en-gb", "speed": 1.2})
    assert spec == registry.EngineSpec.of("espeak", {"speed": 1.2, "voice": "en-gb"})
    assert spec != registry.EngineSpec.of("espeak", {"voice": "en-us", "speed": 1.2})
    assert spec.options == (("speed", 1.2), ("voice", "en-gb"))
    assert str(spec) == "espeak(speed=1.2, voice=en-gb)"
    engine = registry.TTS_PROVIDERS.build(spec)
    assert isinstance(engine, EspeakTextToSpeech)
    assert (engine.voice, engine.speed) == ("en-gb", 1.2)
    with pytest.raises(registry.ProviderConfigError, match="option 'voice' of 'espeak' must be"):
        registry.EngineSpec.of("espeak", {"voice": ["en-gb"]})


def test_a_key_reference_reaches_the_engine_as_the_key_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    received: dict[str, object] = {}

    def cloud_voice(**options: object) -> EspeakTextToSpeech:
        received.update(options)
        return EspeakTextToSpeech()

    tts = registry.ProviderRegistry("text-to-speech", {"cloud": cloud_voice})
    spec = registry.EngineSpec.of("cloud", {"voice": "rachel", "key_ref": "VOICEDESK_TEST_CLOUD_KEY"})
    with pytest.raises(registry.ProviderConfigError, match="no key stored under 'VOICEDESK_TEST_CLOUD_KEY'"):
        tts.build(spec)
    assert received == {}

    monkeypatch.setenv("VOICEDESK_TEST_CLOUD_KEY", "sk-123")
    tts.build(spec)
    assert received == {"voice": "rachel", "api_key": "sk-123"}
    # The spec, which keys shared engines and goes into logs, names the key but never holds it.
    assert "sk-123" not in str(spec)


def test_cloud_engines_get_their_key_from_the_variable_their_key_ref_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEDESK_TEST_CLOUD_KEY", "secret-1")
    stt = registry.STT_PROVIDERS.build(
        registry.EngineSpec.of("assemblyai", {"key_ref": "VOICEDESK_TEST_CLOUD_KEY", "api_host": "ws://127.0.0.1:9"})
    )
    voice = registry.tts_for("elevenlabs", key_ref="VOICEDESK_TEST_CLOUD_KEY", output_format="pcm_16000")
    other = registry.tts_for("cartesia", key_ref="VOICEDESK_TEST_CLOUD_KEY")

    assert isinstance(stt, AssemblyAISpeechToText)
    assert isinstance(stt, StreamingSpeechToText)
    assert (stt.name, stt.sample_rate, stt.api_host) == ("assemblyai", 8000, "ws://127.0.0.1:9")
    assert isinstance(voice, ElevenLabsTextToSpeech)
    assert (voice.name, voice.sample_rate) == ("elevenlabs", 16000)
    assert isinstance(other, CartesiaTextToSpeech)
    assert (other.name, other.sample_rate, other.encoding) == ("cartesia", 8000, "pcm_mulaw")
    # The spec, which is what gets logged and stored, names the variable and never holds the key.
    assert "secret-1" not in str(registry.EngineSpec.of("cartesia", {"key_ref": "VOICEDESK_TEST_CLOUD_KEY"}))
    with pytest.raises(registry.ProviderConfigError, match="no key stored under 'VOICEDESK_TEST_UNSET_KEY'"):
        registry.tts_for("cartesia", key_ref="VOICEDESK_TEST_UNSET_KEY")
    with pytest.raises(TypeError, match="api_key"):
        registry.tts_for("elevenlabs")


def test_streaming_engines_are_known_by_name() -> None:
    assert registry.is_streaming_stt("assemblyai") is True
    assert registry.is_streaming_stt("whisper") is False
    assert registry.is_streaming_stt("no-such-engine") is False


def test_a_tenant_key_spec_takes_the_key_it_is_given_and_never_a_platform_one(monkeypatch: pytest.MonkeyPatch) -> None:
    received: dict[str, object] = {}

    def cloud_voice(**options: object) -> EspeakTextToSpeech:
        received.update(options)
        return EspeakTextToSpeech()

    monkeypatch.setenv("VOICEDESK_TEST_CLOUD_KEY", "platform-key")
    tts = registry.ProviderRegistry("text-to-speech", {"cloud": cloud_voice})
    spec = registry.EngineSpec.of("cloud", {"voice": "ava", "tenant_key": True, "key_ref": "VOICEDESK_TEST_CLOUD_KEY"})

    with pytest.raises(registry.ProviderConfigError, match="no key of the business's own is stored for 'cloud'"):
        tts.build(spec)
    assert received == {}
    tts.build(spec, api_key="business-key")

    assert received == {"voice": "ava", "api_key": "business-key"}
    assert spec.uses_tenant_key() is True
    assert registry.EngineSpec.of("cloud", {"tenant_key": False}).uses_tenant_key() is False
    assert registry.EngineSpec.of("cloud", {"key_ref": "X"}).uses_tenant_key() is False
    assert str(spec) == "cloud(key_ref=VOICEDESK_TEST_CLOUD_KEY, tenant_key=True, voice=ava)"
