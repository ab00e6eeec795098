"""Cartesia's TTS websocket through the official SDK, against the loopback emulator that speaks with piper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio

from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.providers.cartesia_tts import CartesiaTextToSpeech
from calls.providers.emulators.cartesia import CartesiaEmulator
from calls.providers.piper_tts import piper_available

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
    assert time.monotonic() - started < 1.0
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
    assert elapsed < 1.0
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
