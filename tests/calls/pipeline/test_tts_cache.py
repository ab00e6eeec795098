import socket
import time
import uuid

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings
from redis import Redis

from calls.pipeline.factory import shared_engines_clear, shared_tts, tts_shared_store, tts_voice_key
from calls.pipeline.tts_cache import MAX_CACHED_CHARS, MAX_SHARED_CHARS, CachingTextToSpeech, RedisTtsStore
from calls.providers.elevenlabs_tts import ElevenLabsTextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.registry import EngineSpec


class CountingTextToSpeech:
    """Counts how often the engine behind the cache is asked."""

    def __init__(self) -> None:
        self.inner = EspeakTextToSpeech()
        self.name = "counting"
        self.sample_rate = self.inner.sample_rate
        self.calls: list[str] = []

    async def synthesize(self, text: str):
        self.calls.append(text)
        async for chunk in self.inner.synthesize(text):
            yield chunk


async def _audio(tts, text: str) -> np.ndarray:
    return np.concatenate([chunk async for chunk in tts.synthesize(text)])


@pytest.mark.asyncio
async def test_short_sentences_are_synthesized_once_and_replayed_identically() -> None:
    engine = CountingTextToSpeech()
    cached = CachingTextToSpeech(engine)

    first = await _audio(cached, "What's the best number to reach you on?")
    second = await _audio(cached, "What's the best number to reach you on?")

    assert engine.calls == ["What's the best number to reach you on?"]
    assert np.array_equal(first, second)
    assert first.size > 0


@pytest.mark.asyncio
async def test_long_texts_and_cancelled_syntheses_are_not_cached() -> None:
    engine = CountingTextToSpeech()
    cached = CachingTextToSpeech(engine)
    long_text = "word " * (MAX_CACHED_CHARS // 5 + 1)
    await _audio(cached, long_text)
    await _audio(cached, long_text)

    stream = cached.synthesize("Is there anything else I can help with?")
    await anext(stream)
    await stream.aclose()
    await _audio(cached, "Is there anything else I can help with?")

    question = "Is there anything else I can help with?"
    assert engine.calls == [long_text, long_text, question, question]


@pytest.mark.asyncio
async def test_least_recently_used_entries_are_evicted() -> None:
    engine = CountingTextToSpeech()
    cached = CachingTextToSpeech(engine, max_entries=2)
    for text in ("One.", "Two.", "One.", "Three.", "Two."):
        await _audio(cached, text)
    assert engine.calls == ["One.", "Two.", "Three.", "Two."]


# -- The shared second level (Redis) --------------------------------------------


@pytest.fixture
def store() -> RedisTtsStore:
    """A shared level of its own on the test Redis (under the run's cache prefix, which the run clears)."""
    prefix = f"{settings.CACHES['default']['KEY_PREFIX']}-{uuid.uuid4().hex[:8]}"
    return RedisTtsStore(settings.REDIS_URL, prefix=prefix, ttl_s=60, max_bytes=400_000)


def _redis() -> Redis:
    return Redis.from_url(settings.REDIS_URL)


@pytest.mark.asyncio
async def test_a_sentence_one_process_synthesized_plays_from_redis_in_another(store: RedisTtsStore) -> None:
    text = "What's the best number to reach you on?"
    first_engine, second_engine = CountingTextToSpeech(), CountingTextToSpeech()
    first = CachingTextToSpeech(first_engine, shared=store, voice_key="espeak|en-us|pcm_s16le|22050|")
    second = CachingTextToSpeech(second_engine, shared=store, voice_key="espeak|en-us|pcm_s16le|22050|")

    spoken = await _audio(first, text)
    replayed = await _audio(second, text)
    again = await _audio(second, text)

    assert first_engine.calls == [text]
    assert second_engine.calls == []
    assert np.array_equal(spoken, replayed)
    assert np.array_equal(spoken, again)
    assert text in second  # the hit went into the second process's memory too
    client = _redis()
    assert 0 < client.ttl(store.key("espeak|en-us|pcm_s16le|22050|", text)) <= 60
    client.close()
    await store.aclose()


@pytest.mark.asyncio
async def test_another_voice_or_format_is_another_entry(store: RedisTtsStore) -> None:
    text = "Thanks for calling."
    engine_a, engine_b = CountingTextToSpeech(), CountingTextToSpeech()
    await _audio(CachingTextToSpeech(engine_a, shared=store, voice_key="elevenlabs|voice-a|ulaw_8000|8000|"), text)
    await _audio(CachingTextToSpeech(engine_b, shared=store, voice_key="elevenlabs|voice-a|pcm_8000|8000|"), text)

    assert (engine_a.calls, engine_b.calls) == ([text], [text])
    assert store.key("elevenlabs|voice-a|ulaw_8000|8000|", text) != store.key("elevenlabs|voice-a|pcm_8000|8000|", text)
    await store.aclose()


@pytest.mark.asyncio
async def test_long_texts_big_entries_and_cancelled_syntheses_stay_out_of_redis(store: RedisTtsStore) -> None:
    voice = "espeak|en-us|pcm_s16le|22050|"
    long_text = "word " * (MAX_SHARED_CHARS // 5 + 1)
    small = RedisTtsStore(store.url, prefix=store.prefix, ttl_s=60, max_bytes=1_000)
    engine = CountingTextToSpeech()
    await _audio(CachingTextToSpeech(engine, shared=store, voice_key=voice), long_text)
    await _audio(CachingTextToSpeech(engine, shared=small, voice_key=voice), "A sentence too big for a small store.")
    stream = CachingTextToSpeech(engine, shared=store, voice_key=voice).synthesize("Cut short, this one.")
    await anext(stream)
    await stream.aclose()

    client = _redis()
    for text in (long_text.strip(), "A sentence too big for a small store.", "Cut short, this one."):
        assert client.exists(store.key(voice, text)) == 0
    client.close()
    await store.aclose()


@pytest.mark.asyncio
async def test_without_redis_the_engine_speaks_and_the_shared_level_steps_aside() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = RedisTtsStore(f"redis://127.0.0.1:{closed_port}/0", prefix="x", ttl_s=60, max_bytes=400_000)
    engine = CountingTextToSpeech()
    cached = CachingTextToSpeech(engine, shared=down, voice_key="espeak")

    audio = await _audio(cached, "Thanks for calling.")
    started = time.monotonic()
    await _audio(CachingTextToSpeech(engine, shared=down, voice_key="espeak"), "Thanks for calling.")

    assert audio.size > 0
    assert engine.calls == ["Thanks for calling.", "Thanks for calling."]
    # Within the back-off no connection is even tried: the second sentence loses no time to Redis.
    assert down._client() is None
    assert time.monotonic() - started < 2.0


def test_the_voice_key_names_provider_voice_format_and_rate_never_servers_or_keys() -> None:
    spec = EngineSpec.of(
        "elevenlabs", {"tenant_key": True, "base_url": "http://127.0.0.1:9", "voice_id": "v-1", "stability": 0.4}
    )
    engine = ElevenLabsTextToSpeech(api_key="el-key-123456", base_url="http://127.0.0.1:9", voice_id="v-1")

    assert tts_voice_key(spec, engine) == "elevenlabs|v-1|ulaw_8000|8000|stability=0.4,voice_id=v-1"
    assert tts_voice_key(EngineSpec.of("offline"), EspeakTextToSpeech()) == "espeak|en-us|pcm_s16le|22050|"


def test_shared_engines_use_the_shared_level_only_when_it_is_on() -> None:
    shared_engines_clear()
    try:
        assert shared_tts("espeak").shared is None  # type: ignore[attr-defined]
        shared_engines_clear()
        with override_settings(TTS_CACHE_REDIS=True):
            engine = shared_tts("espeak")
            assert engine.shared is tts_shared_store()  # type: ignore[attr-defined]
            assert engine.voice_key == "espeak|en-us|pcm_s16le|22050|"  # type: ignore[attr-defined]
    finally:
        shared_engines_clear()
