"""Warming a business's voice: its greeting, the stock phrases and its FAQ answers, synthesized
ahead of calls into the shared TTS cache, whenever what it says or how it sounds changes.

A worker runs ``tts_cache_warm`` in the business's schema (``tts_cache_warm_job``,
sent after the configuration's change commits); every voice process then
plays those sentences from Redis on their first call.
"""

from __future__ import annotations

import asyncio

import dramatiq
import structlog
from django.conf import settings

from calls.dialogue.policy import STOCK_PHRASES
from calls.models import AgentConfig, FaqEntry
from calls.pipeline.factory import SESSION_PHRASES, engine_specs, shared_tts, tenant_keys_load
from calls.pipeline.protocols import AgentSettings, TextToSpeech
from calls.pipeline.session import speech_chunks
from calls.pipeline.tts_cache import MAX_SHARED_CHARS
from voicedesk.core.tenancy import current_tenant

logger = structlog.get_logger(__name__)

# How long one sentence may take to warm before the rest go on without it.
WARM_SENTENCE_S = 30.0


def tts_warm_phrases(config: AgentConfig, answers: list[str]) -> list[str]:
    """The sentences to warm, as calls ask for them (``speech_chunks``), each once, in order.

    A text may open a reply or follow in one, which cut a long first
    sentence differently: both cuts are warmed.
    """
    greeting = AgentSettings(business_name=config.business_name, greeting=config.greeting).greeting_text()
    texts = [greeting, *STOCK_PHRASES, *SESSION_PHRASES, *answers]
    chunks = (chunk.strip() for text in texts for chunk in [*speech_chunks(text, opening=True), *speech_chunks(text)])
    return list(dict.fromkeys(chunk for chunk in chunks if chunk and len(chunk) <= MAX_SHARED_CHARS))


async def _warm(engine: TextToSpeech, phrases: list[str]) -> int:
    warmed = 0
    for phrase in phrases:
        try:
            async with asyncio.timeout(WARM_SENTENCE_S):
                async for _ in engine.synthesize(phrase):
                    pass
        except Exception as exc:  # noqa: BLE001 - a failing sentence must not stop the others
            logger.warning("tts_warm_sentence_failed", engine=engine.name, error=type(exc).__name__)
            continue
        warmed += 1
    return warmed


def tts_cache_warm() -> int:
    """Synthesize the current business's phrases with its first voice into the shared cache; how many.

    Does nothing (0) when the shared level is off: warming this process's
    memory would help no call. An engine that cannot be built (no key) is
    logged and skipped.
    """
    if not settings.TTS_CACHE_REDIS:
        return 0
    tenant = current_tenant()
    config = AgentConfig.objects.get()
    answers = list(FaqEntry.objects.filter(is_active=True).order_by("pk").values_list("answer", flat=True))
    spec = engine_specs(config.tts_provider or settings.VOICEDESK_TTS, config.tts_options, [])[0]
    keys = tenant_keys_load(tenant, [spec])
    try:
        engine = shared_tts(spec, keys.get(spec.name), schema=tenant.schema_name)
    except Exception as exc:  # noqa: BLE001 - a voice that cannot be built is warmed by nobody
        logger.warning("tts_warm_engine_unavailable", engine=spec.name, error=type(exc).__name__)
        return 0
    phrases = tts_warm_phrases(config, answers)
    warmed = asyncio.run(_warm(engine, phrases))
    logger.info("tts_cache_warmed", engine=spec.name, phrases=len(phrases), warmed=warmed)
    return warmed


@dramatiq.actor(max_retries=2, min_backoff=5_000, time_limit=600_000)
def tts_cache_warm_job() -> None:
    """Warm the business's voice (run in its schema by the tenancy middleware)."""
    tts_cache_warm()
