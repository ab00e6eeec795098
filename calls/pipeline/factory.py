"""Builds a call's pipeline from its tenant's configuration.

Engines are created once per process and shared by every call; the FAQ
index is cached per tenant until the agent configuration changes.
"""

from __future__ import annotations

import threading
from functools import cache

from channels.db import database_sync_to_async
from django.conf import settings
from django_tenants.utils import tenant_context

from calls.audio import CALL_RATE
from calls.dialogue.faq import FaqEntry, FaqIndex
from calls.dialogue.names import name_lexicon
from calls.dialogue.policy import STOCK_PHRASES, AgentSettings, ReceptionistPolicy
from calls.dialogue.summary import summary
from calls.models import AgentConfig, Call
from calls.models import FaqEntry as FaqEntryRow
from calls.pipeline.protocols import SpeechToText, TextEmbedder, TextToSpeech
from calls.pipeline.session import FILLER, SessionDeps, speech_chunks
from calls.pipeline.tts_cache import CachingTextToSpeech
from calls.pipeline.turns import TurnDetector
from calls.providers.minilm import MiniLMEmbedder
from calls.providers.registry import stt_for, tts_for, vad_for
from tenants.models import Tenant

_faq_cache: dict[tuple[str, str], FaqIndex] = {}
_faq_lock = threading.Lock()


@cache
def shared_stt(name: str) -> SpeechToText:
    return stt_for(name)


@cache
def shared_tts(name: str) -> TextToSpeech:
    return CachingTextToSpeech(tts_for(name))


@cache
def shared_embedder() -> TextEmbedder:
    return MiniLMEmbedder()


def agent_settings_load(config: AgentConfig, faqs: list[FaqEntry]) -> AgentSettings:
    return AgentSettings(
        business_name=config.business_name,
        greeting=config.greeting,
        collect=list(config.collect),
        categories=list(config.categories),
        urgent_keywords=list(config.urgent_keywords),
        faqs=faqs,
        vocabulary=list(config.vocabulary),
    )


def faq_index_for(schema_name: str, faqs: list[FaqEntry]) -> FaqIndex:
    """The tenant's FAQ index; rebuilt only when an entry changes."""
    version = "|".join(f"{f.id}:{f.question}:{f.answer}" for f in faqs)
    key = (schema_name, version)
    with _faq_lock:
        index = _faq_cache.get(key)
    if index is None:
        index = FaqIndex(faqs, shared_embedder())
        with _faq_lock:
            for stale in [k for k in _faq_cache if k[0] == schema_name]:
                del _faq_cache[stale]
            _faq_cache[key] = index
    return index


def _build(tenant: Tenant, call: Call) -> SessionDeps:
    with tenant_context(tenant):
        config = AgentConfig.objects.get()
        faqs = [
            FaqEntry(id=str(row.pk), question=row.question, answer=row.answer)
            for row in FaqEntryRow.objects.filter(is_active=True)
        ]
    agent = agent_settings_load(config, faqs)
    policy = ReceptionistPolicy(
        agent, caller_id=call.from_number, embedder=shared_embedder(), faq_index=faq_index_for(tenant.schema_name, faqs)
    )
    prompt = (
        f"{config.business_name}. {', '.join(config.vocabulary)}." if config.vocabulary else f"{config.business_name}."
    )
    return SessionDeps(
        stt=shared_stt(config.stt_provider or settings.VOICEDESK_STT),
        tts=shared_tts(config.tts_provider or settings.VOICEDESK_TTS),
        turn_detector=TurnDetector(vad_for(CALL_RATE)),
        policy=policy,
        summarize=summary,
        stt_prompt=prompt,
    )


async def session_deps_for_call(*, tenant: Tenant, call: Call) -> SessionDeps:
    """Everything a ``CallSession`` needs for ``call``, configured for ``tenant``."""
    return await database_sync_to_async(_build)(tenant, call)


def engines_warm_up() -> None:
    """Load the default engines now, so the first caller does not wait for them.

    Runs in a background thread of each ASGI process; failures only mean the
    first call loads them itself.
    """
    import asyncio

    import structlog

    log = structlog.get_logger(__name__)
    try:
        stt = shared_stt(settings.VOICEDESK_STT)
        tts = shared_tts(settings.VOICEDESK_TTS)

        async def warm() -> None:
            for engine in (stt, tts):
                warm_engine = getattr(engine, "warm_up", None)
                if warm_engine is not None:
                    await warm_engine()
            # Into the process-wide TTS cache, exactly as calls will ask for them.
            for phrase in (*STOCK_PHRASES, FILLER):
                for chunk in speech_chunks(phrase):
                    async for _ in tts.synthesize(chunk):
                        pass

        asyncio.run(warm())
        shared_embedder().embed(["warm up"])
        name_lexicon()
        log.info("engines_warmed_up", stt=stt.name, tts=tts.name, stock_phrases=len(STOCK_PHRASES))
    except Exception:
        log.exception("engines_warm_up_failed")
