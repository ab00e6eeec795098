import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import tenant_context

from calls.dialogue.policy import STOCK_PHRASES, ReceptionistPolicy
from calls.models import AgentConfig
from calls.pipeline.factory import (
    SESSION_PHRASES,
    engines_warm_up,
    session_deps_for_call,
    shared_engines_clear,
    shared_tts,
)
from calls.pipeline.fallback import DeadlineTextToSpeech, FallbackTextToSpeech
from calls.pipeline.protocols import SttHints
from calls.pipeline.session import speech_chunks
from calls.pipeline.tts_cache import CachingTextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.registry import TTS_PROVIDERS, EngineSpec
from calls.services import call_start


@pytest.fixture
def fresh_tts_cache():
    shared_engines_clear()
    yield
    shared_engines_clear()


@pytest.mark.usefixtures("fresh_tts_cache")
@override_settings(VOICEDESK_TTS="espeak")
def test_warm_up_synthesizes_every_stock_phrase_as_calls_will_ask_for_it() -> None:
    tts = shared_tts("espeak")
    assert isinstance(tts, CachingTextToSpeech)
    chunks = [chunk for phrase in (*STOCK_PHRASES, *SESSION_PHRASES) for chunk in speech_chunks(phrase)]
    # A read-back is longer than one clause, so its lead is a chunk of its own.
    assert speech_chunks("Let me read that back: Maria Gonzalez; five five five, two zero one.")[0] in chunks
    assert not any(chunk in tts for chunk in chunks)

    engines_warm_up()

    assert [chunk for chunk in chunks if chunk not in tts] == []


@pytest.fixture
def ringing_call(tenant_a):
    call = call_start(
        tenant=tenant_a.tenant,
        carrier="twilio",
        carrier_call_id="CA-factory-1",
        from_number="+15557654321",
        to_number="+15550001001",
    )
    return tenant_a.tenant, call


def _configure(tenant, **fields) -> None:
    with tenant_context(tenant):
        AgentConfig.objects.update(**fields)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_policy_hears_whether_the_transport_carries_key_presses(ringing_call) -> None:
    tenant, call = ringing_call
    keyed = await session_deps_for_call(tenant=tenant, call=call, keypad=True)
    spoken = await session_deps_for_call(tenant=tenant, call=call)

    assert isinstance(keyed.policy, ReceptionistPolicy)
    assert isinstance(spoken.policy, ReceptionistPolicy)
    assert (keyed.policy.context.keypad, spoken.policy.context.keypad) == (True, False)
    assert keyed.policy.context.caller_id == call.from_number


@pytest.mark.usefixtures("fresh_tts_cache")
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_tenants_voice_options_reach_its_own_engine_with_the_offline_one_behind(ringing_call) -> None:
    tenant, call = ringing_call
    await database_sync_to_async(_configure)(
        tenant, tts_provider="espeak", tts_options={"voice": "en-gb", "speed": 1.1}, vocabulary=["Rheem"]
    )

    deps = await session_deps_for_call(tenant=tenant, call=call)

    assert isinstance(deps.tts, FallbackTextToSpeech)
    first, last = deps.tts.engines
    assert isinstance(first, DeadlineTextToSpeech)
    assert isinstance(last, DeadlineTextToSpeech)
    tenant_voice = first.inner
    assert isinstance(tenant_voice, CachingTextToSpeech)
    assert isinstance(tenant_voice.inner, EspeakTextToSpeech)
    assert (tenant_voice.inner.voice, tenant_voice.inner.speed) == ("en-gb", 1.1)
    # Shared per process by name and options: the next call gets the same engine.
    assert tenant_voice is shared_tts(EngineSpec.of("espeak", {"speed": 1.1, "voice": "en-gb"}))
    assert tenant_voice is not shared_tts("espeak")
    assert last.inner is shared_tts(settings.VOICEDESK_TTS)
    assert [engine.name for engine in deps.stt.engines] == ["whisper"]
    assert deps.stt_hints == SttHints(business_name="Alpha Plumbing", vocabulary=("Rheem",))
    assert deps.streaming_stt is None
    assert isinstance(deps.policy, ReceptionistPolicy)
    assert deps.switches.entries == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_engine_that_cannot_be_built_is_a_switch_before_the_first_word(ringing_call) -> None:
    tenant, call = ringing_call
    TTS_PROVIDERS.register("cloud-voice", lambda **options: EspeakTextToSpeech(**options))
    try:
        await database_sync_to_async(_configure)(
            tenant, tts_provider="cloud-voice", tts_options={"key_ref": "VOICEDESK_TEST_MISSING_KEY"}
        )
        deps = await session_deps_for_call(tenant=tenant, call=call)
    finally:
        TTS_PROVIDERS.unregister("cloud-voice")

    assert [(s.role, s.from_engine, s.reason) for s in deps.switches.entries] == [
        ("tts", "cloud-voice(key_ref=VOICEDESK_TEST_MISSING_KEY)", "unavailable")
    ]
    assert "no key stored under 'VOICEDESK_TEST_MISSING_KEY'" in deps.switches.entries[0].detail
    assert [engine.name for engine in deps.tts.engines] == [shared_tts(settings.VOICEDESK_TTS).name]
