"""AssemblyAI streaming through the official SDK, against the loopback v3 emulator that hears with Whisper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from calls.audio import mulaw_decode, mulaw_encode, resample
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, SttEvent, SttEventKind, SttHints
from calls.providers.assemblyai_stt import FRAME_BYTES, AssemblyAISpeechToText, AssemblyAIStream, keyterms_for
from calls.providers.emulators.assemblyai import AssemblyAIEmulator
from calls.providers.piper_tts import PiperTextToSpeech, piper_available

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts makes the test speech")

KEY = "aai-test-key"


def phone_line(text: str) -> bytes:
    """Piper speech as the carrier delivers it: 8 kHz μ-law bytes, with a second of silence after."""

    async def speak() -> tuple[Pcm16, int]:
        tts = PiperTextToSpeech(variation=0)
        return np.concatenate([chunk async for chunk in tts.synthesize(text)]), tts.sample_rate

    pcm, rate = asyncio.run(speak())
    return mulaw_encode(resample(pcm, rate, 8000)) + b"\xff" * 8000


@pytest.fixture(scope="module")
def caller_line() -> bytes:
    return phone_line("My name is Harriet Oakley and my boiler is leaking.")


@pytest.fixture
def emulator() -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(KEY,), partial_every_s=1.0) as running:
        yield running


async def speak_into(stream: AssemblyAIStream, line: bytes) -> None:
    """Feed ``line`` in 20 ms carrier frames, in real time."""
    for start in range(0, len(line), 160):
        stream.feed(mulaw_decode(line[start : start + 160]))
        await asyncio.sleep(0.02)


async def collect(stream: AssemblyAIStream, into: list[SttEvent]) -> None:
    async for event in stream.events():
        into.append(event)


@pytest.mark.asyncio
async def test_carrier_audio_is_sent_unchanged_and_turns_come_back_as_partials_then_one_final(
    emulator: AssemblyAIEmulator, caller_line: bytes
) -> None:
    engine = AssemblyAISpeechToText(api_key=KEY, api_host=emulator.url)
    stream = await engine.open(SttHints(business_name="Acme Heating", vocabulary=("Oakley", "boiler")))
    events: list[SttEvent] = []
    reader = asyncio.create_task(collect(stream, events))
    await speak_into(stream, caller_line)
    # The emulator's Whisper can be slow on a loaded machine: wait for the turn's end before hanging up.
    for _ in range(100):
        if events and events[-1].kind is SttEventKind.END_OF_TURN:
            break
        await asyncio.sleep(0.1)
    await stream.close()
    await asyncio.wait_for(reader, 5)

    kinds = [e.kind for e in events]
    assert kinds[-2:] == [SttEventKind.FINAL, SttEventKind.END_OF_TURN]
    assert kinds.count(SttEventKind.FINAL) == 1
    assert SttEventKind.PARTIAL in kinds[:-2]
    final = events[-2].transcript
    assert final.text == "My name is Harriet Oakley and my boiler is leaking."
    assert final.words == tuple(final.text.split())
    assert final.confidence == pytest.approx(0.93)
    # The unformatted copy of the final turn is only a partial; the formatted one is the final.
    assert events[-3] == SttEvent(SttEventKind.PARTIAL, events[-3].transcript)
    assert events[-3].transcript.text == "my name is harriet oakley and my boiler is leaking"

    session = emulator.sessions[0]
    assert session.headers["authorization"] == KEY
    assert session.headers["assemblyai-version"] == "2025-05-12"
    assert session.query == {
        "sample_rate": "8000",
        "encoding": "pcm_mulaw",
        "speech_model": "universal-streaming-english",
        "format_turns": "True",
        "keyterms_prompt": '["Acme Heating", "Oakley", "boiler"]',
    }
    # The carrier's bytes, frame for frame: μ-law decoded by the session and encoded again is the same.
    whole = len(caller_line) // FRAME_BYTES * FRAME_BYTES
    assert bytes(session.audio[:whole]) == caller_line[:whole]
    assert session.frames == whole // FRAME_BYTES + (1 if len(caller_line) % FRAME_BYTES >= FRAME_BYTES // 2 else 0)
    assert stream.audio_seconds == pytest.approx(whole / 8000)
    assert session.sent[-1]["type"] == "Termination"


@pytest.mark.asyncio
async def test_new_hints_update_the_key_terms_mid_session(emulator: AssemblyAIEmulator) -> None:
    engine = AssemblyAISpeechToText(api_key=KEY, api_host=emulator.url)
    stream = await engine.open(SttHints(business_name="Acme"))
    stream.update_hints(SttHints(expect="spelling", business_name="Acme", answer_hint="Oakley"))
    stream.feed(np.zeros(480, dtype=np.int16))
    await asyncio.sleep(0.3)
    await stream.close()

    assert emulator.sessions[0].updates == [{"keyterms_prompt": ["Oakley", "Acme"]}]
    assert emulator.sessions[0].frames == 1


def test_key_terms_skip_blanks_and_terms_the_api_refuses() -> None:
    hints = SttHints(business_name=" Acme ", vocabulary=("", "boiler", "x" * 51, "boiler"), answer_hint="Oakley")
    assert keyterms_for(hints) == ["Oakley", "Acme", "boiler"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "key", "reason", "detail"),
    [
        ("reject_key", KEY, "error", "code 1008: Unauthorized Connection: Invalid API key"),
        (None, "wrong-key", "error", "code 1008: Unauthorized Connection: Invalid API key"),
        ("http_500", KEY, "error", "code 500: WebSocket handshake rejected (HTTP 500)"),
        ("stall", KEY, "deadline", "no session within 1.0 s"),
    ],
)
async def test_a_refusing_or_silent_vendor_fails_the_open_within_a_second(
    emulator: AssemblyAIEmulator, fault: str | None, key: str, reason: str, detail: str
) -> None:
    emulator.fault = fault  # type: ignore[assignment]
    engine = AssemblyAISpeechToText(api_key=key, api_host=emulator.url)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        await engine.open(SttHints())
    elapsed = time.monotonic() - started

    assert (raised.value.engine, raised.value.reason, raised.value.detail) == ("assemblyai", reason, detail)
    assert elapsed < 3.0  # the 1 s deadline plus slack for a loaded machine


@pytest.mark.asyncio
async def test_a_dropped_socket_ends_the_events_with_an_error(emulator: AssemblyAIEmulator) -> None:
    engine = AssemblyAISpeechToText(api_key=KEY, api_host=emulator.url)
    stream = await engine.open(SttHints())
    events: list[SttEvent] = []
    reader = asyncio.create_task(collect(stream, events))
    emulator.fault = "drop"
    started = time.monotonic()
    stream.feed(np.zeros(480, dtype=np.int16))
    with pytest.raises(EngineError) as raised:
        await asyncio.wait_for(reader, 10)
    elapsed = time.monotonic() - started
    await stream.close()

    assert raised.value.reason == "error"
    assert raised.value.detail.startswith("code 1006:")
    assert events == []
    assert elapsed < 3.0  # at once, not after a read timeout


def test_the_engine_needs_a_key() -> None:
    with pytest.raises(ValueError, match="API key"):
        AssemblyAISpeechToText(api_key="")
