"""Cloud engines in a tenant's chains, as the factory builds them, failing against their emulators.

A chain like AssemblyAI -> Whisper and ElevenLabs -> Cartesia -> piper must
move to the next engine within a second of a dropped socket, a 5xx or a
refused key (a stall: within a second of the link's deadline), and the call
must go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from django_tenants.utils import tenant_context

from calls.audio import CALL_RATE
from calls.models import AgentConfig
from calls.pipeline import stt_stream
from calls.pipeline.factory import (
    BREAKERS,
    TTS_FIRST_CHUNK_S,
    engine_specs,
    session_deps_for_call,
    shared_engines_clear,
    shared_tts,
    tts_chain,
)
from calls.pipeline.fallback import APOLOGY, ProviderSwitch, SwitchLog
from calls.pipeline.protocols import SttHints
from calls.pipeline.session import CallSession, speech_chunks
from calls.providers.assemblyai_stt import AssemblyAISpeechToText
from calls.providers.emulators.assemblyai import AssemblyAIEmulator
from calls.providers.emulators.cartesia import CartesiaEmulator
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.piper_tts import piper_available
from calls.providers.registry import EngineSpec
from calls.services import call_start
from tests.calls.pipeline.test_session import CarrierSink, MemoryRecords, _play, _session, _speech

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks for the emulators")

KEYS = {
    "VOICEDESK_TEST_AAI_KEY": "aai-key-1",
    "VOICEDESK_TEST_EL_KEY": "el-key-1",
    "VOICEDESK_TEST_CARTESIA_KEY": "car-key-1",
}
SENTENCE = "Thanks for calling Alpha Plumbing. How can I help?"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def emulators() -> Iterator[tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator]]:
    shared_engines_clear()
    BREAKERS.clear()  # each test's calls start with every circuit closed
    with (
        AssemblyAIEmulator(api_keys=(KEYS["VOICEDESK_TEST_AAI_KEY"],)) as assemblyai,
        ElevenLabsEmulator(api_keys=(KEYS["VOICEDESK_TEST_EL_KEY"],), stall_s=4.0) as elevenlabs,
        CartesiaEmulator(api_keys=(KEYS["VOICEDESK_TEST_CARTESIA_KEY"],)) as cartesia,
    ):
        yield assemblyai, elevenlabs, cartesia
    shared_engines_clear()
    BREAKERS.clear()


def voice_chain_specs(elevenlabs: ElevenLabsEmulator, cartesia: CartesiaEmulator) -> list:
    return engine_specs(
        "elevenlabs",
        {"key_ref": "VOICEDESK_TEST_EL_KEY", "base_url": elevenlabs.url},
        [
            {
                "provider": "cartesia",
                "options": {"key_ref": "VOICEDESK_TEST_CARTESIA_KEY", "websocket_url": cartesia.url},
            }
        ],
    )


async def apology_cached() -> None:
    """Put the apology in the last link's cache, as ``engines_warm_up`` does when a voice process starts."""
    assert [chunk async for chunk in shared_tts("piper").synthesize(APOLOGY)]
    assert APOLOGY in shared_tts("piper")  # type: ignore[operator]


class SwitchClock:
    """When each switch was recorded (monotonic), for measuring how fast the chain moved on."""

    def __init__(self, switches: SwitchLog) -> None:
        self.at: list[float] = []
        switches.listeners.append(self._heard)

    def _heard(self, _switch: ProviderSwitch) -> None:
        self.at.append(time.monotonic())


def _switches(log: SwitchLog) -> list[tuple[str, str, str, str]]:
    return [(s.role, s.from_engine, s.to_engine, s.reason) for s in log.entries]


@pytest.mark.asyncio
@pytest.mark.usefixtures("keys")
@override_settings(VOICEDESK_TTS="piper")
@pytest.mark.parametrize(
    ("fault", "reason", "within_s"),
    [
        ("http_500", "error", 1.0),
        ("reject_key", "error", 1.0),
        ("drop", "error", 1.0),
        # A stall is only known once the link's first-chunk deadline has passed.
        ("stall", "deadline", TTS_FIRST_CHUNK_S + 1.0),
    ],
)
async def test_a_failing_voice_hands_the_sentence_to_the_next_engine(
    emulators: tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator],
    fault: str,
    reason: str,
    within_s: float,
) -> None:
    _assemblyai, elevenlabs, cartesia = emulators
    await apology_cached()
    log = SwitchLog()
    clock = SwitchClock(log)
    chain = tts_chain(voice_chain_specs(elevenlabs, cartesia), log)
    assert [engine.name for engine in chain.engines] == ["elevenlabs", "cartesia", "piper"]

    elevenlabs.fault = fault  # type: ignore[assignment]
    started = time.monotonic()
    chunks = []
    after_switch: float | None = None
    async for chunk in chain.synthesize(SENTENCE):
        if not chunks and fault == "drop":
            started = time.monotonic()  # the socket is cut right after the first chunk
        chunks.append(chunk)
        if clock.at and after_switch is None:
            after_switch = time.monotonic()
    audio = np.concatenate(chunks)

    assert _switches(log) == [("tts", "elevenlabs", "cartesia", reason)]
    assert clock.at[0] - started < within_s
    assert after_switch is not None
    assert after_switch - clock.at[0] < 1.0
    assert chain.active.name == "cartesia"
    assert chain.sample_rate == CALL_RATE
    # The sentence was spoken in full by Cartesia, after the apology (and whatever ElevenLabs got out).
    (request,) = cartesia.connections[0].requests
    assert request["transcript"] == SENTENCE
    assert len(audio) >= cartesia.connections[0].audio_bytes  # μ-law: one byte a sample

    # The next engine's socket goes too: the last link, piper, finishes the call.
    cartesia.fault = "drop"
    started = time.monotonic()
    tail = [chunk async for chunk in chain.synthesize("Goodbye.")]
    assert _switches(log)[1:] == [("tts", "cartesia", "piper", "error")]
    assert clock.at[1] - started < 1.0
    assert sum(len(c) for c in tail) > CALL_RATE // 2


def test_a_tenants_engines_are_its_own_then_its_fallbacks_and_bad_entries_are_left_out() -> None:
    specs = engine_specs(
        "elevenlabs",
        {"key_ref": "EL_KEY"},
        [
            {"provider": "cartesia", "options": {"key_ref": "CARTESIA_KEY", "speed": 1.1}},
            {"provider": "piper"},
            {"options": {"voice": "x"}},
            {"provider": "espeak", "options": ["en-gb"]},
            {"provider": "espeak", "options": {"voice": ["en-gb"]}},
            "cartesia",
        ],
    )

    assert [str(spec) for spec in specs] == [
        "elevenlabs(key_ref=EL_KEY)",
        "cartesia(key_ref=CARTESIA_KEY, speed=1.1)",
        "piper",
    ]
    assert engine_specs("whisper", {}, None) == [EngineSpec.of("whisper")]


@pytest.fixture
def ringing_call(tenant_a):  # type: ignore[no-untyped-def]
    call = call_start(
        tenant=tenant_a.tenant,
        carrier="twilio",
        carrier_call_id="CA-cloud-1",
        from_number="+15557654321",
        to_number="+15550001001",
    )
    return tenant_a.tenant, call


def _configure(tenant, **fields) -> None:  # type: ignore[no-untyped-def]
    with tenant_context(tenant):
        AgentConfig.objects.update(**fields)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("keys")
@override_settings(VOICEDESK_TTS="piper", VOICEDESK_STT="whisper")
async def test_a_call_on_cloud_engines_goes_on_when_both_vendors_fail(
    ringing_call,  # type: ignore[no-untyped-def]
    emulators: tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator],
) -> None:
    tenant, call = ringing_call
    assemblyai, elevenlabs, cartesia = emulators
    await database_sync_to_async(_configure)(
        tenant,
        greeting="Thanks for calling Alpha Plumbing. How can I help?",
        stt_provider="assemblyai",
        # Generous connect limits: on a loaded test machine a loopback handshake can take over a second.
        stt_options={
            "key_ref": "VOICEDESK_TEST_AAI_KEY",
            "api_host": assemblyai.url,
            "connect_timeout_s": 3.0,
            "begin_timeout_s": 3.0,
        },
        tts_provider="elevenlabs",
        tts_options={"key_ref": "VOICEDESK_TEST_EL_KEY", "base_url": elevenlabs.url},
        tts_fallbacks=[
            {
                "provider": "cartesia",
                "options": {"key_ref": "VOICEDESK_TEST_CARTESIA_KEY", "websocket_url": cartesia.url},
            }
        ],
        vocabulary=["Rheem"],
    )
    deps = await session_deps_for_call(tenant=tenant, call=call)
    assert isinstance(deps.streaming_stt, AssemblyAISpeechToText)
    assert [engine.name for engine in deps.stt.engines] == ["whisper"]
    assert [engine.name for engine in deps.tts.engines] == ["elevenlabs", "cartesia", "piper"]
    clock = SwitchClock(deps.switches)
    sink, records = CarrierSink(), MemoryRecords()

    async def hangup() -> None:
        records.hung_up = True

    session = CallSession(deps=deps, sink=sink, records=records, hangup=hangup)
    speech = await _speech("My basement is flooding right now.")
    await apology_cached()
    elevenlabs.fault = "http_500"
    session.start()
    await _play(session, np.zeros(CALL_RATE * 7, dtype=np.int16))  # the apology and greeting, from Cartesia
    dropped_at = time.monotonic()
    assemblyai.fault = "drop"  # the socket goes with the next audio frame
    await _play(session, speech)
    await _play(session, np.zeros(CALL_RATE * 6, dtype=np.int16))
    await session.finish("test")

    assert records.finished is not None
    assert [
        (s["role"], s["from_engine"], s["to_engine"], s["reason"])
        for s in records.finished["outcome"]["provider_switches"]
    ] == [("tts", "elevenlabs", "cartesia", "error"), ("stt", "assemblyai", "whisper", "error")]
    tts_switch, stt_switch = clock.at
    first_frame = sink.first("frame", after=tts_switch)
    assert first_frame is not None
    assert first_frame - tts_switch < 1.0
    assert stt_switch - dropped_at < 1.0
    # AssemblyAI heard the tenant's words (its own, then its FAQ's) before it went; Cartesia spoke the greeting.
    assert (
        assemblyai.sessions[0].query["keyterms_prompt"] == '["Alpha Plumbing", "Rheem", "opening", "hours", "located"]'
    )
    assert cartesia.connections[0].requests[0]["transcript"].startswith("Thanks for calling Alpha Plumbing")
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert "flooding" in caller[0].lower()
    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0] == "Thanks for calling Alpha Plumbing. How can I help?"
    assert len(agent) >= 2  # the agent answered the caller after the switch
    assert records.hung_up is False
    await asyncio.sleep(0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("keys")
@override_settings(VOICEDESK_TTS="piper", VOICEDESK_STT="whisper")
async def test_a_call_heard_by_assemblyai_takes_its_turns_from_the_stream(
    ringing_call,  # type: ignore[no-untyped-def]
    emulators: tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The emulator hears with Whisper on this machine's CPU, which a loaded test
    # run can slow past the stream's 3 s wait for a final (4.3 s was seen); the
    # vendor's own latency is not what this test is about.
    monkeypatch.setattr(stt_stream, "STREAM_FINAL_WAIT_S", 15.0)
    tenant, call = ringing_call
    assemblyai, elevenlabs, _cartesia = emulators
    await database_sync_to_async(_configure)(
        tenant,
        greeting="Thanks for calling Alpha Plumbing. How can I help?",
        stt_provider="assemblyai",
        stt_options={
            "key_ref": "VOICEDESK_TEST_AAI_KEY",
            "api_host": assemblyai.url,
            "connect_timeout_s": 3.0,
            "begin_timeout_s": 3.0,
        },
        tts_provider="elevenlabs",
        tts_options={"key_ref": "VOICEDESK_TEST_EL_KEY", "base_url": elevenlabs.url},
        vocabulary=["Rheem"],
    )
    deps = await session_deps_for_call(tenant=tenant, call=call)
    sink, records = CarrierSink(), MemoryRecords()

    async def hangup() -> None:
        records.hung_up = True

    session = CallSession(deps=deps, sink=sink, records=records, hangup=hangup)
    speech = await _speech("My basement is flooding right now.")
    session.start()
    await _play(session, np.zeros(CALL_RATE * 5, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(CALL_RATE * 5, dtype=np.int16))
    await session.finish("test")

    assert records.finished is not None
    assert records.finished["outcome"]["provider_switches"] == []
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert len(caller) == 1
    assert "flooding" in caller[0].lower()
    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0] == "Thanks for calling Alpha Plumbing. How can I help?"
    assert len(agent) >= 2
    (session_record,) = assemblyai.sessions
    finals = [m for m in session_record.sent if m["type"] == "Turn" and m["turn_is_formatted"]]
    assert [m["transcript"] for m in finals] == [caller[0]]
    # The agent then asked for a name: the key terms followed, with the business's words kept.
    assert session_record.updates[0] == {"keyterms_prompt": ["Alpha Plumbing", "Rheem", "opening", "hours", "located"]}
    assert session_record.sent[-1]["type"] == "Termination"
    # Every sentence the caller heard came from ElevenLabs.
    assert [r.status for r in elevenlabs.requests] == [200] * len(elevenlabs.requests)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "reason", "within_s"),
    [
        ("http_500", "error", 1.0),
        ("reject_key", "error", 1.0),
        ("drop", "error", 1.0),
        # A stalled stream is known when a turn's final is overdue.
        ("stall", "deadline", stt_stream.STREAM_FINAL_WAIT_S + 1.0),
    ],
)
async def test_a_failing_assemblyai_stream_hands_the_call_to_whisper(
    emulators: tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator],
    fault: str,
    reason: str,
    within_s: float,
) -> None:
    assemblyai, _elevenlabs, _cartesia = emulators
    engine = AssemblyAISpeechToText(
        api_key=KEYS["VOICEDESK_TEST_AAI_KEY"], api_host=assemblyai.url, connect_timeout_s=3.0, begin_timeout_s=3.0
    )
    log = SwitchLog()
    clock = SwitchClock(log)
    turns = stt_stream.TurnStream(engine, switches=log, fallback="whisper")
    if fault in ("http_500", "reject_key"):
        assemblyai.fault = fault  # type: ignore[assignment]
    started = time.monotonic()
    runner = asyncio.create_task(turns.run(SttHints()))
    for _ in range(300):
        if turns._stream is not None or clock.at:
            break
        await asyncio.sleep(0.01)
    if fault in ("drop", "stall"):
        assemblyai.fault = fault  # type: ignore[assignment]
        started = time.monotonic()
    turns.turn_started()
    for _ in range(10):  # 200 ms of caller audio
        turns.feed(np.zeros(160, dtype=np.int16))
        await asyncio.sleep(0.02)
    transcript = await turns.transcript()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)

    assert transcript is None  # the session transcribes this turn with its batch chain
    assert turns.active is False
    assert _switches(log) == [("stt", "assemblyai", "whisper", reason)]
    assert clock.at[0] - started < within_s


@pytest.mark.asyncio
@pytest.mark.usefixtures("keys")
@override_settings(VOICEDESK_TTS="piper")
async def test_a_replys_sentences_continue_one_cartesia_context_through_the_chain(
    emulators: tuple[AssemblyAIEmulator, ElevenLabsEmulator, CartesiaEmulator],
) -> None:
    _assemblyai, _elevenlabs, cartesia = emulators

    async def warm() -> None:
        # The emulator's voice loads on first use; on a busy machine that can outlast the chain's deadline.
        assert [chunk async for chunk in cartesia.voice.speak("Hello.", encoding="pcm_mulaw", sample_rate=8000)]

    cartesia.run(warm())
    specs = engine_specs("cartesia", {"key_ref": "VOICEDESK_TEST_CARTESIA_KEY", "websocket_url": cartesia.url}, [])
    session, _sink, records, _policy = _session(tts=tts_chain(specs, SwitchLog()))
    session.start()
    await _play(session, np.zeros(8000 * 12, dtype=np.int16))  # the greeting plays out
    await session.finish("test")

    (connection,) = cartesia.connections
    (context,) = connection.contexts.values()
    (greeting,) = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    # The greeting's pieces (a long sentence goes clause by clause) made one context, joined as said.
    assert context.transcript == greeting
    assert context.spoken == speech_chunks(greeting)
    assert len(context.spoken) > 1
    assert context.glued == []
    assert context.ended is True
