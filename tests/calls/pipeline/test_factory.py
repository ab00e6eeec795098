import gc

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import tenant_context

from calls.dialogue.llm import OLLAMA_BASE_URL, LlmReceptionistPolicy
from calls.dialogue.policy import STOCK_PHRASES, ReceptionistPolicy
from calls.dialogue.reply import reply_collect
from calls.models import AgentConfig
from calls.pipeline.factory import (
    SESSION_PHRASES,
    engines_warm_up,
    session_deps_for_call,
    shared_engines_clear,
    shared_tts,
    warm_objects_freeze,
)
from calls.pipeline.fallback import DeadlineTextToSpeech, FallbackTextToSpeech
from calls.pipeline.protocols import SttHints, Transcript
from calls.pipeline.session import speech_chunks
from calls.pipeline.tts_cache import CachingTextToSpeech
from calls.providers.emulators.openai_chat import OpenAiChatEmulator
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.registry import TTS_PROVIDERS, EngineSpec
from calls.services import call_start
from tests.calls.dialogue.llm_models import ReceptionistModel


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
    # The business's words, then what its FAQ asks about (the default FAQ: hours and where it is).
    assert deps.stt_hints == SttHints(
        business_name="Alpha Plumbing", vocabulary=("Rheem", "opening", "hours", "located")
    )
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


@pytest.fixture
def chat_server():
    emulator = OpenAiChatEmulator(ReceptionistModel(), api_key="sk-factory-test", models=("gpt-4o-mini",)).start()
    yield emulator
    emulator.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_tenant_configured_for_a_model_gets_the_llm_receptionist_and_talks_to_its_server(
    ringing_call, chat_server, monkeypatch
) -> None:
    monkeypatch.setenv("VOICEDESK_TEST_OPENAI_KEY", "sk-factory-test")
    tenant, call = ringing_call
    await database_sync_to_async(_configure)(
        tenant,
        dialogue_provider="openai",
        dialogue_options={
            "model": "gpt-4o-mini",
            "base_url": chat_server.base_url,
            "key_ref": "VOICEDESK_TEST_OPENAI_KEY",
            "first_token_s": 2.0,
        },
        business_hours={"sat": ["09:00", "13:00"]},
    )

    deps = await session_deps_for_call(tenant=tenant, call=call)
    policy = deps.policy
    greeting = await reply_collect(policy.greet())
    first = await reply_collect(policy.respond(Transcript(text="My kitchen sink is leaking.", confidence=0.99)))

    assert isinstance(policy, LlmReceptionistPolicy)
    assert policy.first_token_s == 2.0
    assert greeting.text == "Thanks for calling Alpha Plumbing. How can I help?"
    assert first.text == "Could I have your name, please?"
    request = chat_server.requests[0]
    assert request["model"] == "gpt-4o-mini"
    assert request["stream"] is True
    assert "You are the phone receptionist of Alpha Plumbing." in request["messages"][0]["content"]
    assert "Business hours (UTC): sat 09:00-13:00." in request["messages"][0]["content"]
    assert [t["function"]["name"] for t in request["tools"]] == [
        "record_caller_details",
        "answer_from_faq",
        "log_unanswered_question",
        "request_callback",
        "mark_urgent",
        "transfer_to_human",
        "end_call",
    ]
    assert policy.outcome().reason == "My kitchen sink is leaking"
    assert policy.usage.prompt > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ollama_needs_no_key_and_a_model_without_its_key_leaves_the_deterministic_receptionist(
    ringing_call,
) -> None:
    tenant, call = ringing_call
    await database_sync_to_async(_configure)(tenant, dialogue_provider="ollama", dialogue_options={"model": "llama3.1"})
    ollama = (await session_deps_for_call(tenant=tenant, call=call)).policy

    await database_sync_to_async(_configure)(
        tenant, dialogue_provider="openai", dialogue_options={"key_ref": "VOICEDESK_TEST_MISSING_KEY"}
    )
    keyless = (await session_deps_for_call(tenant=tenant, call=call)).policy

    assert isinstance(ollama, LlmReceptionistPolicy)
    assert (ollama.name, ollama.model, ollama.base_url) == ("ollama", "llama3.1", OLLAMA_BASE_URL)
    assert isinstance(keyless, ReceptionistPolicy)


def test_what_is_alive_when_warm_is_left_out_of_full_collections() -> None:
    warm = [[index] for index in range(1000)]
    try:
        frozen = warm_objects_freeze()
        later = [[index] for index in range(10)]
        tracked = {id(o) for o in gc.get_objects()}

        assert frozen == gc.get_freeze_count() >= 1000
        assert not any(id(o) in tracked for o in warm)
        assert all(id(o) in tracked for o in later)  # made afterwards: collected as before
    finally:
        gc.unfreeze()
