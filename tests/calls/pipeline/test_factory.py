import pytest
from django.test import override_settings

from calls.dialogue.policy import STOCK_PHRASES
from calls.pipeline.factory import SESSION_PHRASES, engines_warm_up, shared_engines_clear, shared_tts
from calls.pipeline.session import speech_chunks
from calls.pipeline.tts_cache import CachingTextToSpeech


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
