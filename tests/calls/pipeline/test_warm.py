"""Warming a business's voice: the sentences it will say, synthesized by a worker in its schema
into the shared TTS cache after a change to what the agent says or how it sounds commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import tenant_context
from dramatiq.brokers.redis import RedisBroker

from calls.dialogue.policy import STOCK_PHRASES
from calls.models import AgentConfig, FaqEntry
from calls.pipeline import factory
from calls.pipeline.factory import SESSION_PHRASES, shared_engines_clear, tts_shared_store, tts_voice_key
from calls.pipeline.session import speech_chunks
from calls.pipeline.warm import tts_cache_warm, tts_cache_warm_job, tts_warm_phrases
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.registry import EngineSpec
from calls.services import agent_config_update, faq_entry_create
from tests.brokers import private_broker, work_off

ANSWER = "We open at eight on weekdays. We are closed on Sundays."


def _cuts(text: str) -> list[str]:
    """Both ways a text is cut: opening a reply, and following in one."""
    return [*speech_chunks(text, opening=True), *speech_chunks(text)]


def _stock() -> list[str]:
    return [chunk for text in (*STOCK_PHRASES, *SESSION_PHRASES) for chunk in _cuts(text)]


def test_the_phrases_are_the_greeting_the_stock_lines_and_the_answers_as_calls_ask_for_them(in_tenant_a) -> None:
    AgentConfig.objects.update(greeting="Hello from Alpha! How can we help?")
    config = AgentConfig.objects.get()

    phrases = tts_warm_phrases(config, [ANSWER, ANSWER])

    assert phrases == list(
        dict.fromkeys(
            [
                *_cuts("Hello from Alpha! How can we help?"),
                *_stock(),
                *_cuts(ANSWER),
            ]
        )
    )
    assert phrases[:2] == ["Hello from Alpha!", "How can we help?"]
    assert phrases[-2:] == ["We open at eight on weekdays.", "We are closed on Sundays."]
    AgentConfig.objects.update(greeting="")
    assert tts_warm_phrases(AgentConfig.objects.get(), [])[:2] == [
        "Thanks for calling Alpha Plumbing.",
        "How can I help?",
    ]


@pytest.fixture
def shared_cache() -> Iterator[None]:
    """The shared level on, under a prefix of this test's own (the run's prefix, which the run clears)."""
    prefix = f"{settings.CACHES['default']['KEY_PREFIX']}-{uuid.uuid4().hex[:8]}"
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    shared_engines_clear()
    with override_settings(TTS_CACHE_REDIS=True, CACHES=caches):
        yield
    shared_engines_clear()
    factory._shared_store = None


def _stored(phrases: list[str]) -> list[bool]:
    store = tts_shared_store()
    assert store is not None
    voice_key = tts_voice_key(EngineSpec.of("espeak"), EspeakTextToSpeech())

    async def look() -> list[bool]:
        found = [await store.get(voice_key, phrase) is not None for phrase in phrases]
        await store.aclose()
        return found

    return asyncio.run(look())


@pytest.mark.usefixtures("shared_cache")
def test_warming_puts_every_phrase_in_the_shared_cache(in_tenant_a) -> None:
    AgentConfig.objects.update(tts_provider="espeak", tts_options={})
    FaqEntry.objects.all().delete()
    FaqEntry.objects.create(question="When are you open?", answer=ANSWER)
    FaqEntry.objects.create(question="Old?", answer="This answer is switched off.", is_active=False)
    phrases = tts_warm_phrases(AgentConfig.objects.get(), [ANSWER])

    warmed = tts_cache_warm()

    assert warmed == len(phrases)
    assert _stored(phrases) == [True] * len(phrases)
    assert _stored(["This answer is switched off."]) == [False]


def test_with_the_shared_level_off_nothing_is_warmed(in_tenant_a) -> None:
    assert settings.TTS_CACHE_REDIS is False
    assert tts_cache_warm() == 0


@pytest.fixture
def broker() -> Iterator[RedisBroker]:
    with private_broker(tts_cache_warm_job) as broker:
        yield broker


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_cache")
def test_a_new_greeting_is_warmed_by_a_worker_in_the_business_schema(broker, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        AgentConfig.objects.update(tts_provider="espeak", tts_options={})
        agent_config_update(config=AgentConfig.objects.get(), greeting="Alpha here, what can we fix today?")
        queued = broker.client.llen(f"{broker.namespace}:default")
    work_off(broker, threads=1, timeout_ms=60_000)

    assert queued == 1
    assert _stored(["Alpha here, what can we fix today?"]) == [True]
    # Beta's greeting was not asked for.
    assert _stored(["Thanks for calling Beta Dental."]) == [False]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_cache")
def test_changes_that_do_not_touch_what_is_said_send_nothing(broker, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        config = AgentConfig.objects.get()
        agent_config_update(config=config, timezone="Europe/Dublin")
        agent_config_update(config=config, greeting=config.greeting)  # unchanged
        faq_entry_create(actor=None, question="Do you do boilers?", answer="Yes, every make.", is_active=False)

    assert broker.client.llen(f"{broker.namespace}:default") == 0


@pytest.mark.django_db(transaction=True)
def test_with_the_shared_level_off_no_warming_is_sent(broker, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        agent_config_update(config=AgentConfig.objects.get(), greeting="Alpha, at your service.")
        faq_entry_create(actor=None, question="Do you do boilers?", answer="Yes, every make.")

    assert broker.client.llen(f"{broker.namespace}:default") == 0
