import numpy as np
import pytest

from calls.pipeline.tts_cache import MAX_CACHED_CHARS, CachingTextToSpeech
from calls.providers.espeak_tts import EspeakTextToSpeech


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
