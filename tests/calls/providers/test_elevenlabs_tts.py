"""ElevenLabs HTTP streaming through the official SDK, against the loopback emulator that speaks with piper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from calls.audio import mulaw_decode, mulaw_encode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.pipeline.reply_scope import ReplyScope, reply_open
from calls.providers.elevenlabs_tts import AudioDecoder, ElevenLabsTextToSpeech, elevenlabs_voices, format_rate
from calls.providers.emulators.base import EmulatedVoice
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator, StreamRecord
from calls.providers.piper_tts import piper_available
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks in the emulator")

KEY = "el-test-key"
SENTENCE = "Thanks for calling Acme Heating. How can I help?"


@pytest.fixture
def emulator() -> Iterator[ElevenLabsEmulator]:
    with ElevenLabsEmulator(api_keys=(KEY,), voices=("voice-a",), stall_s=3.0) as running:
        yield running


async def spoken(engine: TextToSpeech, text: str = SENTENCE) -> Pcm16:
    return np.concatenate([chunk async for chunk in engine.synthesize(text)])


@pytest.mark.asyncio
@pytest.mark.parametrize(("output_format", "rate"), [("ulaw_8000", 8000), ("pcm_16000", 16000)])
async def test_a_sentence_streams_back_as_pcm_at_the_formats_rate(
    emulator: ElevenLabsEmulator, output_format: str, rate: int
) -> None:
    engine = ElevenLabsTextToSpeech(
        api_key=KEY, voice_id="voice-a", base_url=emulator.url, output_format=output_format, stability=0.4
    )
    audio = await spoken(engine)

    assert engine.sample_rate == rate
    assert isinstance(engine, TextToSpeech)
    assert audio.dtype == np.int16
    # About 2.6 s of speech, with real signal in it.
    assert 2.0 < len(audio) / rate < 3.5
    assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 500
    (request,) = emulator.requests
    assert request.path == "/v1/text-to-speech/voice-a/stream"
    assert request.query == {"output_format": output_format}
    assert request.body == {
        "text": SENTENCE,
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.4},
    }
    assert request.key_ok is True
    assert request.headers["x-fern-sdk-name"] == "elevenlabs"
    assert request.audio_bytes == len(audio) * (1 if output_format == "ulaw_8000" else 2)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "key", "voice", "detail"),
    [
        ("reject_key", KEY, "voice-a", "key rejected (HTTP 401)"),
        (None, "wrong-key", "voice-a", "key rejected (HTTP 401)"),
        ("http_500", KEY, "voice-a", "request failed (HTTP 500)"),
        (None, KEY, "no-such-voice", "request failed (HTTP 404)"),
    ],
)
async def test_refusals_are_engine_errors_at_once_without_retries(
    emulator: ElevenLabsEmulator, fault: str | None, key: str, voice: str, detail: str
) -> None:
    emulator.fault = fault  # type: ignore[assignment]
    engine = ElevenLabsTextToSpeech(api_key=key, voice_id=voice, base_url=emulator.url)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        await spoken(engine)

    assert (raised.value.engine, raised.value.reason, raised.value.detail) == ("elevenlabs", "error", detail)
    assert time.monotonic() - started < 3.0
    assert len(emulator.requests) == 1  # the SDK's retries are off


@pytest.mark.asyncio
async def test_a_body_cut_short_is_an_engine_error(emulator: ElevenLabsEmulator) -> None:
    emulator.fault = "drop"
    engine = ElevenLabsTextToSpeech(api_key=KEY, voice_id="voice-a", base_url=emulator.url)
    with pytest.raises(EngineError) as raised:
        await spoken(engine)

    assert raised.value.reason == "error"
    assert raised.value.detail.startswith("RemoteProtocolError: peer closed connection")


@pytest.mark.asyncio
async def test_a_stalled_body_times_out_as_a_deadline(emulator: ElevenLabsEmulator) -> None:
    emulator.fault = "stall"
    engine = ElevenLabsTextToSpeech(api_key=KEY, voice_id="voice-a", base_url=emulator.url, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        await spoken(engine)

    assert (raised.value.reason, raised.value.detail) == ("deadline", "ReadTimeout after 0.5 s")
    assert 0.5 <= time.monotonic() - started < 3.0  # the SDK's own read timeout is a minute


def test_only_formats_the_pipeline_can_play_are_accepted() -> None:
    assert format_rate("ulaw_8000") == 8000
    assert format_rate("pcm_22050") == 22050
    with pytest.raises(ValueError, match="mp3_44100_128"):
        ElevenLabsTextToSpeech(api_key=KEY, output_format="mp3_44100_128")
    with pytest.raises(ValueError, match="API key"):
        ElevenLabsTextToSpeech(api_key="")


def test_a_sample_split_across_chunks_is_kept_for_the_next() -> None:
    decoder = AudioDecoder("pcm_16000")
    samples = np.array([1000, -2000, 300], dtype="<i2").tobytes()
    first, second = decoder.decode(samples[:3]), decoder.decode(samples[3:])

    assert first.tolist() == [1000]
    assert second.tolist() == [-2000, 300]
    line = mulaw_encode(np.array([0, 5000, -5000], dtype=np.int16))
    assert AudioDecoder("ulaw_8000").decode(line).tolist() == mulaw_decode(line).tolist()


async def reply_spoken(engine: ElevenLabsTextToSpeech, *sentences: str) -> list[Pcm16]:
    """The sentences of one reply, as the session speaks them: one after another inside a reply scope."""
    scope = ReplyScope()
    audio = []
    with reply_open(scope):
        for sentence in sentences:
            audio.append(await spoken(engine, sentence))
    await scope.close(completed=True)
    return audio


async def closed(record: StreamRecord) -> None:
    for _ in range(300):
        if record.close_code is not None:
            return
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_replys_sentences_stream_into_one_input_stream(emulator: ElevenLabsEmulator) -> None:
    engine = ElevenLabsTextToSpeech(
        api_key=KEY, voice_id="voice-a", base_url=emulator.url, stability=0.4, input_streaming=True
    )
    first, second = await reply_spoken(engine, "Thanks for calling Acme Heating.", "How can I help?")
    (stream,) = emulator.streams
    await closed(stream)

    # Each sentence's audio is its own: about 1.7 s and 0.8 s of speech.
    assert 1.2 < len(first) / 8000 < 2.4
    assert 0.5 < len(second) / 8000 < 1.4
    assert stream.query == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000"}
    assert stream.messages == [
        {"text": " ", "generation_config": {"chunk_length_schedule": [50]}, "voice_settings": {"stability": 0.4}},
        {"text": "Thanks for calling Acme Heating. ", "flush": True},
        {"text": "How can I help? ", "flush": True},
        {"text": ""},
    ]
    assert stream.spoken == ["Thanks for calling Acme Heating.", "How can I help?"]
    assert stream.unspaced == []
    assert stream.audio_bytes == len(first) + len(second)
    assert (stream.final, stream.close_code) == (True, 1000)
    assert emulator.requests == []  # nothing went over HTTP


@pytest.mark.asyncio
async def test_a_sentence_outside_a_reply_still_goes_over_http(emulator: ElevenLabsEmulator) -> None:
    engine = ElevenLabsTextToSpeech(api_key=KEY, voice_id="voice-a", base_url=emulator.url, input_streaming=True)
    audio = await spoken(engine, "Goodbye.")

    assert len(audio) > 2400
    assert [r.path for r in emulator.requests] == ["/v1/text-to-speech/voice-a/stream"]
    assert emulator.streams == []


@pytest.mark.asyncio
async def test_a_refused_key_on_the_input_stream_is_an_engine_error(emulator: ElevenLabsEmulator) -> None:
    engine = ElevenLabsTextToSpeech(
        api_key="wrong-key", voice_id="voice-a", base_url=emulator.url, input_streaming=True
    )
    with pytest.raises(EngineError) as raised:
        await reply_spoken(engine, "Hello.")
    (stream,) = emulator.streams
    await closed(stream)

    assert (raised.value.reason, raised.value.detail) == ("error", "key rejected (invalid_api_key)")
    assert stream.close_code == 1008
    assert stream.spoken == []


@pytest.mark.asyncio
async def test_a_reply_cut_short_closes_its_input_stream(emulator: ElevenLabsEmulator) -> None:
    engine = ElevenLabsTextToSpeech(api_key=KEY, voice_id="voice-a", base_url=emulator.url, input_streaming=True)
    scope = ReplyScope()
    with reply_open(scope):
        chunks = engine.synthesize(SENTENCE)
        await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
    await scope.close(completed=False)
    (stream,) = emulator.streams
    await closed(stream)

    assert stream.messages[-1] == {"text": SENTENCE + " ", "flush": True}  # no end of stream
    assert stream.final is False
    assert stream.close_code == 1000  # the client's close


@pytest.mark.asyncio
async def test_a_dropped_input_stream_fails_the_sentence_and_the_next_reply_opens_another(
    emulator: ElevenLabsEmulator,
) -> None:
    engine = ElevenLabsTextToSpeech(api_key=KEY, voice_id="voice-a", base_url=emulator.url, input_streaming=True)
    emulator.fault = "drop"
    with pytest.raises(EngineError) as raised:
        await reply_spoken(engine, SENTENCE)
    emulator.fault = None
    (again,) = await reply_spoken(engine, "Goodbye.")

    assert (raised.value.reason, raised.value.detail) == ("error", "connection closed (code 1006)")
    assert len(again) > 2400
    assert len(emulator.streams) == 2


def test_the_accounts_voices_are_listed_through_the_sdk() -> None:
    library = (
        EmulatedVoice("v-zed", "Zed", "Deep and slow", language="en", gender="male"),
        EmulatedVoice("v-amy", "amy", "", language="de"),
    )
    with ElevenLabsEmulator(api_keys=(KEY,), library=library) as emulator:
        voices = elevenlabs_voices(api_key=KEY, base_url=emulator.url)
        (request,) = emulator.requests

    assert voices == [
        ProviderVoice(voice_id="v-amy", name="amy", description="de, female", language="de"),
        ProviderVoice(voice_id="v-zed", name="Zed", description="Deep and slow", language="en"),
    ]
    assert (request.path, request.key_ok, request.status) == ("/v1/voices", True, 200)
    assert "xi-api-key" not in request.headers


def test_a_voice_listing_with_a_wrong_key_is_refused() -> None:
    with ElevenLabsEmulator(api_keys=(KEY,)) as emulator, pytest.raises(ProviderCallError) as raised:
        elevenlabs_voices(api_key="not-the-key", base_url=emulator.url)

    assert raised.value.check == KeyCheck("refused", "ElevenLabs refused the key (HTTP 401).")
    assert [(r.path, r.key_ok, r.status) for r in emulator.requests] == [("/v1/voices", False, 401)]
