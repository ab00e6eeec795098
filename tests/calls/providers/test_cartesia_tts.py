"""Cartesia's TTS websocket through the official SDK, against the loopback emulator that speaks with piper."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.pipeline.reply_scope import ReplyScope, reply_open
from calls.providers.cartesia_tts import CONTEXT_IDLE_S, CartesiaTextToSpeech, cartesia_voices
from calls.providers.emulators.base import EmulatedVoice
from calls.providers.emulators.cartesia import CartesiaEmulator, ConnectionRecord
from calls.providers.piper_tts import piper_available
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks in the emulator")

KEY = "sk_car_test"
SENTENCE = "Thanks for calling Acme Heating. How can I help?"


@pytest.fixture
def emulator() -> Iterator[CartesiaEmulator]:
    with CartesiaEmulator(api_keys=(KEY,)) as running:
        yield running


@pytest_asyncio.fixture
async def engine(emulator: CartesiaEmulator) -> AsyncIterator[CartesiaTextToSpeech]:
    built = CartesiaTextToSpeech(api_key=KEY, websocket_url=emulator.url, voice_id="voice-a", speed=1.1)
    yield built
    await built.aclose()


async def spoken(engine: TextToSpeech, text: str = SENTENCE) -> Pcm16:
    return np.concatenate([chunk async for chunk in engine.synthesize(text)])


@pytest.mark.asyncio
async def test_sentences_share_one_socket_each_in_its_own_context(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    first, second = await asyncio.gather(spoken(engine), spoken(engine, "Goodbye."))

    assert isinstance(engine, TextToSpeech)
    assert engine.sample_rate == 8000
    assert 2.0 < len(first) / 8000 < 3.5
    assert 0.3 < len(second) / 8000 < 1.5
    assert float(np.sqrt(np.mean(first.astype(np.float64) ** 2))) > 500
    (connection,) = emulator.connections
    assert connection.headers["cartesia-version"] == "2026-08-14"
    assert "authorization" not in connection.headers  # the emulator keeps no key
    assert len({r["context_id"] for r in connection.requests}) == 2
    request = connection.requests[0]
    assert {k: v for k, v in request.items() if k != "context_id"} == {
        "model_id": "sonic-3",
        "transcript": SENTENCE,
        "voice": {"mode": "id", "id": "voice-a"},
        "output_format": {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
        "language": "en",
        "continue": False,
        "generation_config": {"speed": 1.1},
    }
    assert connection.audio_bytes == len(first) + len(second)


@pytest.mark.asyncio
async def test_linear_pcm_at_another_rate(emulator: CartesiaEmulator) -> None:
    engine = CartesiaTextToSpeech(api_key=KEY, websocket_url=emulator.url, encoding="pcm_s16le", sample_rate=16000)
    audio = await spoken(engine, "Goodbye.")
    await engine.aclose()

    assert engine.sample_rate == 16000
    assert 0.3 < len(audio) / 16000 < 1.5
    assert emulator.connections[0].requests[0]["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "key", "detail"),
    [
        ("reject_key", KEY, "key rejected (HTTP 401)"),
        (None, "wrong-key", "key rejected (HTTP 401)"),
        ("http_500", KEY, "handshake refused (HTTP 500)"),
    ],
)
async def test_a_refused_handshake_is_an_engine_error_at_once(
    emulator: CartesiaEmulator, fault: str | None, key: str, detail: str
) -> None:
    emulator.fault = fault  # type: ignore[assignment]
    engine = CartesiaTextToSpeech(api_key=key, websocket_url=emulator.url)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        await spoken(engine)

    assert (raised.value.engine, raised.value.reason, raised.value.detail) == ("cartesia", "error", detail)
    assert time.monotonic() - started < 3.0
    assert emulator.connections == []


@pytest.mark.asyncio
async def test_a_dropped_socket_fails_the_sentence_and_the_next_one_reconnects(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    await spoken(engine, "Hello.")
    emulator.fault = "drop"
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        await spoken(engine)
    elapsed = time.monotonic() - started
    emulator.fault = None
    again = await spoken(engine, "Goodbye.")

    assert (raised.value.reason, raised.value.detail) == ("error", "connection closed (code 1006)")
    assert elapsed < 3.0
    assert len(again) > 2400
    assert len(emulator.connections) == 2


@pytest.mark.asyncio
async def test_a_sentence_stopped_early_is_cancelled_on_the_server(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    chunks = engine.synthesize(SENTENCE + " " + SENTENCE)
    await anext(chunks)
    await chunks.aclose()  # type: ignore[attr-defined]
    requests = emulator.connections[0].requests
    for _ in range(50):
        if len(requests) == 2:
            break
        await asyncio.sleep(0.01)

    assert [sorted(r) for r in requests][-1] == ["cancel", "context_id"]
    assert requests[-1]["context_id"] == requests[0]["context_id"]


@pytest.mark.asyncio
async def test_a_bad_request_is_an_engine_error(emulator: CartesiaEmulator) -> None:
    engine = CartesiaTextToSpeech(api_key=KEY, websocket_url=emulator.url, voice_id="")
    with pytest.raises(EngineError) as raised:
        await spoken(engine)
    await engine.aclose()

    assert raised.value.detail == "Invalid request (status 400)"


def test_only_raw_formats_the_pipeline_plays() -> None:
    with pytest.raises(ValueError, match="pcm_f32le"):
        CartesiaTextToSpeech(api_key=KEY, encoding="pcm_f32le")
    with pytest.raises(ValueError, match="8000"):
        CartesiaTextToSpeech(api_key=KEY, encoding="pcm_mulaw", sample_rate=16000)
    with pytest.raises(ValueError, match="API key"):
        CartesiaTextToSpeech(api_key="")


async def reply_spoken(engine: CartesiaTextToSpeech, *sentences: str, gap_s: float = 0.0) -> list[Pcm16]:
    """The sentences of one reply, as the session speaks them: one after another inside a reply scope."""
    scope = ReplyScope()
    audio = []
    with reply_open(scope):
        for index, sentence in enumerate(sentences):
            if index and gap_s:
                await asyncio.sleep(gap_s)
            audio.append(await spoken(engine, sentence))
    await scope.close(completed=True)
    return audio


async def context_done(connection: ConnectionRecord, context_id: str) -> None:
    """Until the reply's last input on ``context_id`` reached the emulator (it is sent without waiting)."""
    for _ in range(200):
        if any(r.get("context_id") == context_id and r.get("continue") is False for r in connection.requests):
            return
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_the_sentences_of_one_reply_continue_one_context_flushed_sentence_by_sentence(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    first, second = await reply_spoken(engine, "Thanks for calling Acme Heating.", "How can I help?")
    (connection,) = emulator.connections
    (context,) = connection.contexts.values()
    await context_done(connection, context.context_id)

    # Each sentence's audio is its own: about 1.7 s and 0.8 s of speech.
    assert 1.2 < len(first) / 8000 < 2.4
    assert 0.5 < len(second) / 8000 < 1.4
    assert context.transcript == "Thanks for calling Acme Heating. How can I help?"
    assert context.spoken == ["Thanks for calling Acme Heating.", "How can I help?"]
    assert context.glued == []
    assert context.ended is True
    shape = [(r["transcript"], r["continue"], r.get("flush", False)) for r in connection.requests]
    assert shape == [
        ("Thanks for calling Acme Heating.", True, False),
        ("", True, True),
        (" How can I help?", True, False),
        ("", True, True),
        ("", False, False),
    ]
    assert {r["context_id"] for r in connection.requests} == {context.context_id}


@pytest.mark.asyncio
async def test_a_reply_idle_near_the_expiry_goes_on_in_a_new_context(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    await reply_spoken(engine, "One moment please.", "I found it.", gap_s=CONTEXT_IDLE_S + 0.1)
    (connection,) = emulator.connections
    first, second = connection.contexts.values()
    await context_done(connection, second.context_id)

    assert (first.transcript, second.transcript) == ("One moment please.", "I found it.")
    # The first context's last input came before it expired: the emulator took it (it refuses one after).
    assert first.ended is True
    assert second.ended is True


@pytest.mark.asyncio
async def test_a_reply_cut_short_cancels_its_context_and_sends_nothing_more(
    emulator: CartesiaEmulator, engine: CartesiaTextToSpeech
) -> None:
    scope = ReplyScope()
    with reply_open(scope):
        await spoken(engine, "Thanks for calling.")
        chunks = engine.synthesize(SENTENCE + " " + SENTENCE)
        await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
    await scope.close(completed=False)
    requests = emulator.connections[0].requests
    for _ in range(50):
        if requests[-1].get("cancel"):
            break
        await asyncio.sleep(0.01)

    assert len(requests) == 5  # sentence, flush, sentence, flush, cancel: no last input after the cancel
    assert requests[-1] == {"context_id": requests[0]["context_id"], "cancel": True}


async def _raw(emulator: CartesiaEmulator, *messages: dict[str, object]) -> list[dict[str, object]]:
    """What the emulator answers to ``messages`` on a fresh socket, until the last context is done or fails."""
    async with connect(
        f"{emulator.url}/tts/websocket",
        additional_headers={"Authorization": f"Bearer {KEY}", "Cartesia-Version": "2026-08-14"},
    ) as ws:
        for message in messages:
            await ws.send(json.dumps(message))
        answers = []
        async with asyncio.timeout(10):
            while True:
                answer = json.loads(await ws.recv())
                if answer["type"] != "chunk":
                    answers.append(answer)
                if answer["type"] in ("done", "error"):
                    return answers


def _input(transcript: str, **extra: object) -> dict[str, object]:
    return {
        "context_id": "ctx-1",
        "model_id": "sonic-3",
        "transcript": transcript,
        "voice": {"mode": "id", "id": "voice-a"},
        "output_format": {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
        "language": "en",
        "continue": True,
    } | extra


@pytest.mark.asyncio
async def test_the_emulator_holds_a_context_to_cartesias_continuation_rules(emulator: CartesiaEmulator) -> None:
    changed_voice = await _raw(emulator, _input("Hello."), _input(" There.", voice={"mode": "id", "id": "voice-b"}))
    after_end = await _raw(emulator, _input("Hello.", **{"continue": False}), _input(" Again."))
    glued = await _raw(emulator, _input("Hello"), _input("there.", flush=True), _input("", **{"continue": False}))

    assert changed_voice[-1]["message"] == "inputs on one context must keep the same voice"
    assert after_end[-1]["message"] == "context ctx-1 has ended: no input may follow continue=false"
    assert [(a["type"], a.get("flush_id")) for a in glued] == [("flush_done", 1), ("done", None)]
    contexts = [c for record in emulator.connections for c in record.contexts.values()]
    assert contexts[-1].glued == ["Hellothere."]
    assert contexts[-1].transcript == "Hellothere."


def test_the_voice_library_is_listed_page_by_page_through_the_sdk() -> None:
    library = tuple(EmulatedVoice(f"v-{i:03d}", f"Voice {i:03d}", f"about {i}") for i in range(205, 0, -1))
    with CartesiaEmulator(api_keys=(KEY,), library=library) as emulator:
        voices = cartesia_voices(api_key=KEY, base_url=emulator.http_url)
        listings = emulator.voice_listings

    assert len(voices) == 205
    assert voices[0] == ProviderVoice(voice_id="v-001", name="Voice 001", description="about 1", language="en")
    assert voices[-1].voice_id == "v-205"
    assert listings == [
        {"limit": "100"},
        {"limit": "100", "starting_after": "v-106"},
        {"limit": "100", "starting_after": "v-006"},
        {"limit": "100", "starting_after": "v-001"},
    ]


@pytest.mark.parametrize(
    ("fault", "outcome", "detail"),
    [
        ("reject_key", "refused", "Cartesia refused the key (HTTP 401)."),
        ("http_500", "failed", "Cartesia answered with an error (HTTP 500)."),
    ],
)
def test_a_voice_listing_that_fails_says_how(fault: str, outcome: str, detail: str) -> None:
    with CartesiaEmulator(api_keys=(KEY,)) as emulator:
        emulator.fault = fault  # type: ignore[assignment]
        with pytest.raises(ProviderCallError) as raised:
            cartesia_voices(api_key=KEY, base_url=emulator.http_url)

    assert raised.value.check == KeyCheck(outcome, detail)  # type: ignore[arg-type]
    assert emulator.voice_listings == []
