"""Builds a call's pipeline from its tenant's configuration.

Engines are created once per process and shared by every call, keyed by
name and options, so a tenant's own voice or model gets its own engine. Per
call, each role gets a fallback chain that ends in the platform's offline
engine, and each link a deadline. The FAQ index is cached per tenant until
the agent configuration changes.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django_tenants.utils import tenant_context

from calls.audio import CALL_RATE
from calls.dialogue.categories import CategoryClassifier, category_guides
from calls.dialogue.faq import FaqEntry, FaqIndex
from calls.dialogue.names import name_lexicon
from calls.dialogue.policy import STOCK_PHRASES, AgentSettings
from calls.dialogue.summary import summary
from calls.models import AgentConfig, Call, CategoryExample
from calls.models import FaqEntry as FaqEntryRow
from calls.pipeline.breaker import CircuitBreakers
from calls.pipeline.fallback import (
    APOLOGY,
    LINE_TROUBLE_GOODBYE,
    DeadlineSpeechToText,
    DeadlineTextToSpeech,
    FallbackSpeechToText,
    FallbackTextToSpeech,
    ProviderSwitch,
    Role,
    SwitchLog,
)
from calls.pipeline.protocols import (
    CallContext,
    DialoguePolicy,
    SpeechToText,
    StreamingSpeechToText,
    SttHints,
    TextEmbedder,
    TextToSpeech,
)
from calls.pipeline.session import FILLER, SessionDeps, speech_chunks
from calls.pipeline.tts_cache import CachingTextToSpeech, RedisTtsStore
from calls.pipeline.turns import TurnDetector
from calls.providers.registry import (
    EMBEDDER_PROVIDERS,
    POLICY_PROVIDERS,
    STT_PROVIDERS,
    TTS_PROVIDERS,
    EngineSpec,
    ProviderConfigError,
    vad_for,
)
from calls.selectors import TenantKey, provider_key_for
from tenants.models import Tenant
from voicedesk.core.secrets import SecretUnreadableError

logger = structlog.get_logger(__name__)

# How long an engine may take before the chain moves on. A link with a
# fallback behind it gets a short leash; the last link a long one (a cold
# model load), since failing it ends the call.
STT_RESULT_S = 3.0
STT_LAST_RESULT_S = 15.0
TTS_FIRST_CHUNK_S = 1.5
TTS_LAST_FIRST_CHUNK_S = 10.0
EMBEDDER = "minilm"
# What the session may say on its own: warmed into the last TTS link's cache.
SESSION_PHRASES = (FILLER, APOLOGY, LINE_TROUBLE_GOODBYE)

_faq_cache: dict[tuple[str, str], FaqIndex] = {}
_tenant_cache_lock = threading.Lock()
_category_cache: dict[tuple[str, str], CategoryClassifier] = {}
# By role, spec and, for an engine on a business's own key, which key (schema and key version).
_engines: dict[tuple[str, EngineSpec, str], object] = {}
_engines_lock = threading.Lock()


def _shared(role: str, spec: EngineSpec, build: Callable[[], object], key_id: str = "") -> object:
    with _engines_lock:
        engine = _engines.get((role, spec, key_id))
        if engine is None:
            engine = _engines[(role, spec, key_id)] = build()
            if key_id:
                # A business's replaced key: the engine on its old key serves no new call.
                owner = key_id.split("|", 1)[0]  # schema and provider, without the key's version
                for stale in [k for k in _engines if k[:2] == (role, spec) and k[2] != key_id]:
                    if stale[2].split("|", 1)[0] == owner:
                        del _engines[stale]
        return engine


def _spec(spec: EngineSpec | str) -> EngineSpec:
    return EngineSpec.of(spec) if isinstance(spec, str) else spec


def _key_context(spec: EngineSpec, key: TenantKey | None, schema: str) -> tuple[dict[str, Any], str]:
    """What building ``spec`` needs of a business's own key: the ``api_key`` argument and the engine's key id.

    A spec without ``tenant_key`` needs neither; one with it and no key stored
    fails to build (``ProviderConfigError``), which leaves it out of the chain.
    """
    if not spec.uses_tenant_key() or key is None:
        return {}, ""
    return {"api_key": key.secret}, f"{schema}:{key.provider}|{key.version}"


def shared_stt(
    spec: EngineSpec | str, key: TenantKey | None = None, *, schema: str = ""
) -> SpeechToText | StreamingSpeechToText:
    """The process's speech-to-text engine for ``spec`` (a name, or name and options).

    ``key`` is the business's own key (of ``schema``) for a spec with ``tenant_key``.
    """
    spec = _spec(spec)
    context, key_id = _key_context(spec, key, schema)
    return _shared("stt", spec, lambda: STT_PROVIDERS.build(spec, **context), key_id)  # type: ignore[return-value]


# Options that say where an engine's server is or how long to wait: not part of how it sounds.
_NOT_VOICE_OPTIONS = frozenset(
    {"key_ref", "tenant_key", "base_url", "websocket_url", "api_host", "timeout_s", "connect_timeout_s"}
)
_shared_store: RedisTtsStore | None = None
# Its own lock: engines are built (and ask for the store) while ``_engines_lock`` is held.
_shared_store_lock = threading.Lock()


def tts_voice_key(spec: EngineSpec, engine: TextToSpeech) -> str:
    """What makes ``engine``'s audio what it is: provider, voice, output format and rate, other voice options.

    The shared TTS cache keys entries by it (with the text); servers, keys and
    timeouts are left out, so every business on one voice shares its phrases.
    """
    voice = getattr(engine, "voice_id", None) or getattr(engine, "voice", None) or ""
    output = getattr(engine, "output_format", None) or getattr(engine, "encoding", None) or "pcm_s16le"
    options = ",".join(f"{k}={v}" for k, v in spec.options if k not in _NOT_VOICE_OPTIONS)
    return f"{engine.name}|{voice}|{output}|{engine.sample_rate}|{options}"


def tts_shared_store() -> RedisTtsStore | None:
    """The process's shared (Redis) TTS cache level, or None when ``TTS_CACHE_REDIS`` is off."""
    global _shared_store
    if not settings.TTS_CACHE_REDIS:
        return None
    prefix = str(settings.CACHES["default"].get("KEY_PREFIX", ""))
    with _shared_store_lock:
        if _shared_store is None or (_shared_store.url, _shared_store.prefix) != (settings.REDIS_URL, prefix):
            _shared_store = RedisTtsStore(
                settings.REDIS_URL,
                prefix=prefix,
                ttl_s=settings.TTS_CACHE_REDIS_TTL_S,
                max_bytes=settings.TTS_CACHE_REDIS_MAX_BYTES,
            )
        return _shared_store


def _cached_tts(spec: EngineSpec, context: dict[str, Any]) -> TextToSpeech:
    engine = TTS_PROVIDERS.build(spec, **context)
    return CachingTextToSpeech(engine, shared=tts_shared_store(), voice_key=tts_voice_key(spec, engine))


def shared_tts(spec: EngineSpec | str, key: TenantKey | None = None, *, schema: str = "") -> TextToSpeech:
    """The process's text-to-speech engine for ``spec``, behind its phrase cache (memory, then Redis).

    ``key`` is the business's own key (of ``schema``) for a spec with ``tenant_key``.
    """
    spec = _spec(spec)
    context, key_id = _key_context(spec, key, schema)
    return _shared("tts", spec, lambda: _cached_tts(spec, context), key_id)  # type: ignore[return-value]


def tenant_keys_load(tenant: Tenant, specs: Sequence[EngineSpec]) -> dict[str, TenantKey]:
    """The business's own keys that ``specs`` ask for (``tenant_key``), by provider; run in its schema.

    A key that cannot be decrypted is left out (and logged): its engine is
    then skipped like one with no key, and the call goes on.
    """
    keys: dict[str, TenantKey] = {}
    for provider in dict.fromkeys(spec.name for spec in specs if spec.uses_tenant_key()):
        try:
            found = provider_key_for(tenant=tenant, provider=provider)
        except SecretUnreadableError:
            logger.error("provider_key_unreadable", provider=provider)
            continue
        if found is not None:
            keys[provider] = found
    return keys


def shared_embedder(spec: EngineSpec | str = EMBEDDER) -> TextEmbedder:
    spec = _spec(spec)
    return _shared("embedder", spec, lambda: EMBEDDER_PROVIDERS.build(spec))  # type: ignore[return-value]


def shared_engines_clear() -> None:
    """Forget every shared engine (tests; a process that must reload its engines)."""
    with _engines_lock:
        _engines.clear()


def engine_specs(provider: str, options: Mapping[str, Any] | None, fallbacks: object) -> list[EngineSpec]:
    """A tenant's engines of one role, in the order tried: its engine, then each of ``fallbacks``.

    ``fallbacks`` is the stored list of ``{"provider", "options"}``; an entry
    that is not one is left out (and logged), so a bad entry never costs the
    call its other engines.
    """
    specs = [EngineSpec.of(provider, options)]
    for entry in fallbacks if isinstance(fallbacks, list) else []:
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("provider"), str):
                raise ProviderConfigError("a fallback must be {provider, options}")
            entry_options = entry.get("options") or {}
            if not isinstance(entry_options, dict):
                raise ProviderConfigError(f"options of {entry['provider']!r} must be an object")
            specs.append(EngineSpec.of(entry["provider"], entry_options))
        except ProviderConfigError as exc:
            logger.warning("engine_fallback_ignored", error=str(exc))
    return specs


def _specs(tenant_specs: EngineSpec | Sequence[EngineSpec], platform_default: str) -> list[EngineSpec]:
    wanted = [tenant_specs] if isinstance(tenant_specs, EngineSpec) else list(tenant_specs)
    default = EngineSpec.of(platform_default)
    # Each engine once, and the platform's own last of all.
    return [*dict.fromkeys(spec for spec in wanted if spec != default), default]


E = TypeVar("E")

# Per tenant and engine, shared by the process's calls (``calls.pipeline.breaker``).
BREAKERS = CircuitBreakers()
CIRCUIT_OPEN = "kept off new calls after repeated failures; one call tries it again after a cool-down"


def breaker_failure(tenant: str, switch: ProviderSwitch) -> None:
    """A call of ``tenant`` switched away from an engine: count it against that engine.

    An engine left out before the call began (no key, or its circuit open) is
    not a new failure.
    """
    if switch.reason != "unavailable":
        BREAKERS.failed(tenant, switch.from_engine.split("(", 1)[0])


def _chain_engines(
    role: Role,
    tenant_specs: EngineSpec | Sequence[EngineSpec],
    platform_default: str,
    build: Callable[[EngineSpec], E],
    switches: SwitchLog,
    tenant: str = "",
) -> Iterator[tuple[E, bool]]:
    """Each engine of a chain, tenant's first, with whether it is the last (the platform's offline one).

    An engine that cannot even be built (a missing key, say), or that
    ``tenant``'s circuit breaker keeps new calls off, is recorded as a switch
    to the next one and skipped; the platform's own engine failing to build
    is an error.
    """
    specs = _specs(tenant_specs, platform_default)
    for index, spec in enumerate(specs):
        last = index == len(specs) - 1
        if tenant and not last and not BREAKERS.allows(tenant, spec.name):
            switches.record(role, str(spec), str(specs[index + 1]), "unavailable", CIRCUIT_OPEN)
            continue
        try:
            engine = build(spec)
        except Exception as exc:
            if last:
                raise
            switches.record(role, str(spec), str(specs[index + 1]), "unavailable", f"{type(exc).__name__}: {exc}")
            continue
        yield engine, last


def tts_chain(
    tenant_specs: EngineSpec | Sequence[EngineSpec],
    switches: SwitchLog,
    *,
    tenant: str = "",
    keys: Mapping[str, TenantKey] | None = None,
) -> FallbackTextToSpeech:
    """The tenant's text-to-speech engines, in order, with the platform's offline engine behind them.

    With ``tenant`` (a schema name), engines its circuit breaker holds open are
    left out; ``keys`` are its own provider keys (``tenant_keys_load``).
    """
    keys = keys or {}

    def build(spec: EngineSpec) -> TextToSpeech:
        return shared_tts(spec, keys.get(spec.name), schema=tenant)

    links: list[TextToSpeech] = [
        DeadlineTextToSpeech(engine, first_chunk_s=TTS_LAST_FIRST_CHUNK_S if last else TTS_FIRST_CHUNK_S)
        for engine, last in _chain_engines("tts", tenant_specs, settings.VOICEDESK_TTS, build, switches, tenant)
    ]
    return FallbackTextToSpeech(links, switches=switches)


def stt_chain(
    tenant_specs: EngineSpec | Sequence[EngineSpec],
    switches: SwitchLog,
    *,
    tenant: str = "",
    keys: Mapping[str, TenantKey] | None = None,
) -> tuple[FallbackSpeechToText, StreamingSpeechToText | None]:
    """The tenant's speech-to-text: a batch chain ending in the platform's
    offline engine, and the tenant's first streaming engine when it has one
    (the session falls back to the batch chain if its stream fails). With
    ``tenant``, engines its circuit breaker holds open are left out; ``keys``
    are its own provider keys (``tenant_keys_load``)."""
    keys = keys or {}

    def build(spec: EngineSpec) -> SpeechToText | StreamingSpeechToText:
        return shared_stt(spec, keys.get(spec.name), schema=tenant)

    links: list[SpeechToText] = []
    streaming: StreamingSpeechToText | None = None
    for engine, last in _chain_engines("stt", tenant_specs, settings.VOICEDESK_STT, build, switches, tenant):
        if isinstance(engine, SpeechToText):
            links.append(DeadlineSpeechToText(engine, result_s=STT_LAST_RESULT_S if last else STT_RESULT_S))
        elif isinstance(engine, StreamingSpeechToText) and streaming is None:
            streaming = engine
    if not links:
        raise ValueError(f"the platform speech-to-text {settings.VOICEDESK_STT!r} must be a batch engine")
    return FallbackSpeechToText(links, switches=switches), streaming


def agent_settings_load(
    config: AgentConfig, faqs: list[FaqEntry], category_examples: dict[str, list[str]] | None = None
) -> AgentSettings:
    return AgentSettings(
        business_name=config.business_name,
        greeting=config.greeting,
        persona=config.persona,
        collect=list(config.collect),
        categories=list(config.categories),
        category_guides={name: {"description": text} for name, text in (config.category_descriptions or {}).items()},
        category_examples=category_examples or {},
        urgent_keywords=list(config.urgent_keywords),
        faqs=faqs,
        vocabulary=list(config.vocabulary),
        business_hours=dict(config.business_hours or {}),
        timezone=config.timezone,
        transfer_number=config.transfer_number,
    )


_T = TypeVar("_T")


def _tenant_cached(cache: dict[tuple[str, str], _T], schema_name: str, version: str, build: Callable[[], _T]) -> _T:
    """One built object per tenant, rebuilt (and the tenant's older one dropped) when ``version`` changes."""
    key = (schema_name, version)
    with _tenant_cache_lock:
        found = cache.get(key)
    if found is None:
        found = build()
        with _tenant_cache_lock:
            for stale in [k for k in cache if k[0] == schema_name]:
                del cache[stale]
            cache[key] = found
    return found


def faq_index_for(schema_name: str, faqs: list[FaqEntry]) -> FaqIndex:
    """The tenant's FAQ index; rebuilt only when an entry changes."""
    version = "|".join(f"{f.id}:{f.question}:{f.answer}" for f in faqs)
    return _tenant_cached(_faq_cache, schema_name, version, lambda: FaqIndex(faqs, shared_embedder()))


def category_classifier_for(schema_name: str, settings: AgentSettings) -> CategoryClassifier:
    """The tenant's category classifier; rebuilt only when a category, description or example changes."""
    guides = category_guides(settings.categories, settings.category_guides, settings.category_examples)
    return _tenant_cached(
        _category_cache, schema_name, repr(guides), lambda: CategoryClassifier(guides, shared_embedder())
    )


DEFAULT_POLICY = "receptionist"


def policy_for_call(
    spec: EngineSpec,
    *,
    context: CallContext,
    faq_index: FaqIndex,
    categorizer: CategoryClassifier,
) -> DialoguePolicy:
    """The tenant's dialogue policy for one call.

    The deterministic receptionist when the tenant's cannot be built (a
    missing key, a wrong option): a caller is never lost to configuration.
    """
    shared = {"embedder": shared_embedder(), "faq_index": faq_index, "categorizer": categorizer}
    try:
        return POLICY_PROVIDERS.build(spec, context=context, **shared)
    except (ValueError, TypeError) as exc:  # a missing key, an unknown option
        if spec.name == DEFAULT_POLICY:
            raise
        logger.warning("dialogue_policy_unavailable", policy=str(spec), error=type(exc).__name__)
        return POLICY_PROVIDERS.build(DEFAULT_POLICY, context=context, **shared)


def _build(tenant: Tenant, call: Call, keypad: bool, can_transfer: bool) -> SessionDeps:
    with tenant_context(tenant):
        config = AgentConfig.objects.get()
        stt_specs = engine_specs(
            config.stt_provider or settings.VOICEDESK_STT, config.stt_options, config.stt_fallbacks
        )
        tts_specs = engine_specs(
            config.tts_provider or settings.VOICEDESK_TTS, config.tts_options, config.tts_fallbacks
        )
        keys = tenant_keys_load(tenant, [*stt_specs, *tts_specs])
        faqs = [
            FaqEntry(id=str(row.pk), question=row.question, answer=row.answer)
            for row in FaqEntryRow.objects.filter(is_active=True)
        ]
        examples: dict[str, list[str]] = {}
        for category, text in CategoryExample.objects.values_list("category", "text"):
            examples.setdefault(category, []).append(text)
    agent = agent_settings_load(config, faqs, examples)
    policy = policy_for_call(
        EngineSpec.of(config.dialogue_provider or DEFAULT_POLICY, config.dialogue_options),
        context=CallContext(settings=agent, caller_id=call.from_number, keypad=keypad, can_transfer=can_transfer),
        faq_index=faq_index_for(tenant.schema_name, faqs),
        categorizer=category_classifier_for(tenant.schema_name, agent),
    )
    switches = SwitchLog()
    switches.listeners.append(functools.partial(breaker_failure, tenant.schema_name))
    stt, streaming_stt = stt_chain(stt_specs, switches, tenant=tenant.schema_name, keys=keys)
    tts = tts_chain(tts_specs, switches, tenant=tenant.schema_name, keys=keys)
    return SessionDeps(
        stt=stt,
        tts=tts,
        turn_detector=TurnDetector(vad_for(CALL_RATE)),
        policy=policy,
        summarize=summary,
        stt_hints=SttHints(business_name=config.business_name, vocabulary=tuple(agent.recognition_vocabulary())),
        streaming_stt=streaming_stt,
        switches=switches,
    )


async def session_deps_for_call(
    *, tenant: Tenant, call: Call, keypad: bool = False, can_transfer: bool = False
) -> SessionDeps:
    """Everything a ``CallSession`` needs for ``call``, configured for ``tenant``.

    ``keypad`` says the transport passes the caller's key presses to the
    session (``CallSession.on_dtmf``), so the receptionist may offer them;
    ``can_transfer`` that it can put the caller through to a person (the
    session is given its ``CallTransferer``).
    """
    return await database_sync_to_async(_build)(tenant, call, keypad, can_transfer)


def warm_objects_freeze() -> int:
    """Take what is alive once the engines are warm out of the collector's full passes; return how many objects.

    The models, the name lexicon and the caches live as long as the process.
    A full collection walks every tracked object, and with all of them it took
    about 60 ms, during which no call on the process sent audio
    (``bench/pipeline_overhead.py``). Objects made afterwards are collected as
    before.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def engines_warm_up() -> None:
    """Load the platform's engines now, so the first caller does not wait for them.

    The stock phrases and the session's own lines go into the offline TTS
    cache, exactly as calls will ask for them: the apology a failing engine
    leaves behind is then ready at once. Runs in a background thread of each
    ASGI process; failures only mean the first call loads them itself.
    """
    try:
        stt = shared_stt(settings.VOICEDESK_STT)
        tts = shared_tts(settings.VOICEDESK_TTS)

        async def warm() -> None:
            for engine in (stt, tts):
                warm_engine = getattr(engine, "warm_up", None)
                if warm_engine is not None:
                    await warm_engine()
            for phrase in (*STOCK_PHRASES, *SESSION_PHRASES):
                # A phrase opens some replies and follows in others: both ways of cutting it are warmed.
                for chunk in dict.fromkeys([*speech_chunks(phrase, opening=True), *speech_chunks(phrase)]):
                    async for _ in tts.synthesize(chunk):
                        pass

        asyncio.run(warm())
        shared_embedder().embed(["warm up"])
        name_lexicon()
        frozen = warm_objects_freeze()
        logger.info(
            "engines_warmed_up", stt=stt.name, tts=tts.name, stock_phrases=len(STOCK_PHRASES), frozen_objects=frozen
        )
    except Exception:
        logger.exception("engines_warm_up_failed")
