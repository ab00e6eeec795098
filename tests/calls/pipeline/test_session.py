"""The call session with the real offline engines, driven in real time.

The carrier is replaced by a sink that timestamps what it receives; speech
is synthesized with piper and sent as a phone line would, 20 ms at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from calls.audio import resample
from calls.dialogue.faq import FaqEntry
from calls.dialogue.llm import LlmReceptionistPolicy
from calls.dialogue.phrases import HOLD_ON
from calls.dialogue.policy import AgentSettings, ReceptionistPolicy
from calls.dialogue.summary import summary
from calls.pipeline.factory import shared_embedder, shared_stt, shared_tts
from calls.pipeline.fallback import (
    APOLOGY,
    LINE_TROUBLE_GOODBYE,
    DeadlineSpeechToText,
    DeadlineTextToSpeech,
    FallbackSpeechToText,
    FallbackTextToSpeech,
    SwitchLog,
)
from calls.pipeline.protocols import (
    CallContext,
    CallOutcome,
    EndCall,
    FieldUpdate,
    Listen,
    Pcm16,
    ReplyPart,
    Say,
    SpeechStream,
    SpeechToText,
    StreamingSpeechToText,
    SttEvent,
    SttEventKind,
    SttHints,
    TextToSpeech,
    Transcript,
    Transfer,
)
from calls.pipeline.session import EARLY_DECODES, PATTERN_PAUSE_S, CallSession, SessionDeps, speech_chunks
from calls.pipeline.turns import TurnConfig, TurnDetector, TurnEvent
from calls.providers.emulators.openai_chat import ModelTurn, OpenAiChatEmulator
from calls.providers.registry import vad_for
from tests.calls.pipeline.test_fallback import RaisingWhisper, StallingVoice


class CarrierSink:
    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    async def send_frame(self, frame: bytes) -> None:
        self.events.append((time.monotonic(), "frame"))

    async def send_mark(self, name: str) -> None:
        self.events.append((time.monotonic(), "mark"))

    async def clear(self) -> None:
        self.events.append((time.monotonic(), "clear"))

    def first(self, kind: str, after: float = 0.0) -> float | None:
        return next((t for t, k in self.events if k == kind and t >= after), None)

    def count(self, kind: str) -> int:
        return sum(1 for _, k in self.events if k == kind)


@dataclass
class MemoryRecords:
    utterances: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[str, Any] | None = None
    hung_up: bool = False
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)

    def utterance(self, **kwargs: Any) -> None:
        self.utterances.append(kwargs)

    def checkpoint(self, **kwargs: Any) -> None:
        self.checkpoints.append(kwargs)

    def turn_latency(self, **kwargs: Any) -> None:
        self.latencies.append(kwargs)

    async def finish(self, **kwargs: Any) -> None:
        self.finished = kwargs

    async def transfer(self, **kwargs: Any) -> None:
        self.transfers.append(kwargs)


async def _speech(text: str) -> Pcm16:
    tts = shared_tts("offline")
    pcm = np.concatenate([chunk async for chunk in tts.synthesize(text)])
    return resample(pcm, tts.sample_rate, 8000)


def _voiced(pcm: Pcm16) -> Pcm16:
    """``pcm`` from its first to its last clearly audible 20 ms frame: no synthesized lead-in or tail."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 300)
    return pcm[loud[0] * 160 : (loud[-1] + 1) * 160]


def _onset(pcm: Pcm16) -> int:
    """Index of the first 20 ms frame that is clearly not silence."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300
    return int(np.argmax(loud))


async def _play(session: CallSession, pcm: Pcm16) -> list[float]:
    """Send ``pcm`` in real time; return the wall time of each frame."""
    times = []
    next_at = time.monotonic()
    for i in range(0, len(pcm) - 159, 160):
        times.append(time.monotonic())
        session.feed(pcm[i : i + 160])
        next_at += 0.02
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return times


def _lateness(times: list[float]) -> float:
    """The most a frame of one ``_play`` was sent after its due time, in seconds."""
    return max(at - (times[0] + 0.02 * i) for i, at in enumerate(times))


def _session(
    greeting: str = "Thanks for calling Acme Plumbing and Heating, this is the virtual receptionist. "
    "We fix leaks, boilers and drains all over Springfield. How can I help?",
    reports_playback: bool = True,
    **engines: Any,
) -> tuple[CallSession, CarrierSink, MemoryRecords, ReceptionistPolicy]:
    settings = AgentSettings(
        business_name="Acme Plumbing",
        greeting=greeting,
        categories=["leak", "heating", "general"],
        urgent_keywords=["flood", "flooding"],
        faqs=[FaqEntry(id="1", question="What are your opening hours?", answer="We are open 8 to 6.")],
    )
    policy = ReceptionistPolicy(CallContext(settings=settings, caller_id="+15557654321"), embedder=shared_embedder())
    deps = SessionDeps(
        stt=shared_stt("whisper"),
        tts=shared_tts("offline"),
        turn_detector=TurnDetector(vad_for(8000)),
        policy=policy,
        summarize=summary,
    )
    for role, engine in engines.items():
        setattr(deps, role, engine)
    sink, records = CarrierSink(), MemoryRecords()

    async def hangup() -> None:
        records.hung_up = True

    session = CallSession(deps=deps, sink=sink, records=records, hangup=hangup, reports_playback=reports_playback)
    return session, sink, records, policy


def test_a_replys_long_first_sentence_starts_with_its_first_clause() -> None:
    reply = "That sounds urgent, so I'm marking it as a priority. Could I have your name, please?"
    assert speech_chunks(reply, opening=True) == [
        "That sounds urgent,",
        "so I'm marking it as a priority.",
        "Could I have your name, please?",
    ]
    assert speech_chunks(reply) == [
        "That sounds urgent, so I'm marking it as a priority.",
        "Could I have your name, please?",
    ]
    # Short first sentences and too-short first clauses stay whole.
    assert speech_chunks("Okay, I've made a note of that.", opening=True) == ["Okay, I've made a note of that."]
    assert speech_chunks("Hello, you've reached Bright Smile Dental.", opening=True) == [
        "Hello, you've reached Bright Smile Dental."
    ]
    assert speech_chunks("Yes, we are open on Saturdays from nine to noon.", opening=True) == [
        "Yes, we are open on Saturdays from nine to noon."
    ]


def test_long_replies_are_synthesized_clause_by_clause() -> None:
    assert speech_chunks("Yes. We cover Springfield and every town within 25 miles of it, including Shelbyville.") == [
        "Yes.",
        "We cover Springfield and every town within 25 miles of it,",
        "including Shelbyville.",
    ]


@pytest.mark.asyncio
async def test_caller_speech_stops_the_agent_within_200_ms_and_wins_the_turn() -> None:
    session, sink, records, policy = _session()
    noting = NotingPolicy(policy)
    session.deps.policy = noting  # type: ignore[assignment]
    speech = await _speech("Sorry to interrupt, my basement is flooding right now.")
    session.start()
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))  # the greeting plays for 2 s
    frame_times = await _play(session, speech)
    onset = frame_times[_onset(speech)]
    # Long enough for the turn to be taken before hang-up on a busy machine.
    await _play(session, np.zeros(8000 * 5, dtype=np.int16))
    await session.finish("test")

    cleared = sink.first("clear", after=onset)
    assert cleared is not None
    assert cleared - onset <= 0.2
    agent = [u for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0]["interrupted"] is True
    assert agent[0]["text"].startswith("Thanks for calling")
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert "flooding" in caller[0].lower()
    outcome = policy.outcome()
    assert (outcome.priority, outcome.category) == ("urgent", "leak")
    # The policy is told how much of the greeting the caller heard: two seconds' worth of its words.
    [(said, heard)] = noting.interruptions
    assert said == policy.context.settings.greeting_text()
    assert 0 < len(heard.split()) < len(said.split())
    assert heard.split() == said.split()[: len(heard.split())]


@pytest.mark.asyncio
async def test_a_backchannel_pauses_then_resumes_the_agent_without_taking_the_turn() -> None:
    session, sink, records, policy = _session()
    speech = await _speech("Uh-huh.")
    session.start()
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(8000 * 9, dtype=np.int16))  # the rest of the greeting
    await session.finish("test")

    agent = [u for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0]["interrupted"] is False
    assert agent[0]["text"].endswith("How can I help?")
    assert policy.outcome().reason == ""
    # Paused and resumed: the frames held at the carrier were sent again.
    assert sink.count("clear") == 1
    assert records.finished is not None
    assert records.finished["outcome"]["frames_sent"] == sink.count("frame")


@pytest.mark.asyncio
async def test_a_finished_call_gives_its_voice_detector_back_at_once() -> None:
    session, _sink, records, _policy = _session()
    detector = session.deps.turn_detector.vad
    session.start()
    await _play(session, np.zeros(8000 // 2, dtype=np.int16))
    assert not detector.closed

    await session.finish("test")
    session.feed(np.zeros(160, dtype=np.int16))  # the carrier's last frames after the end change nothing

    assert detector.closed
    assert records.finished is not None


async def _keys(session: CallSession, keys: str, gap_s: float = 0.15) -> None:
    for key in keys:
        session.on_dtmf(key)
        await _play(session, np.zeros(int(8000 * gap_s), dtype=np.int16))


@pytest.mark.asyncio
async def test_a_number_keyed_in_over_the_greeting_is_taken_exactly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    session, sink, records, policy = _session()
    session.start()
    await _play(session, np.zeros(8000 * 1, dtype=np.int16))
    await _keys(session, "*99")  # a slip, started again with "*"
    await _keys(session, "*6175550142#")
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await session.finish("test")

    caller = [(u["text"], u["confidence"]) for u in records.utterances if u["speaker"] == "caller"]
    assert caller == [("6175550142", 1.0)]
    agent = [u for u in records.utterances if u["speaker"] == "agent"]
    # Keys over the greeting are an answer: the greeting stops there.
    assert agent[0]["interrupted"] is True
    assert sink.count("clear") == 1
    assert policy.outcome().fields["callback_number"] == "+16175550142"
    assert [entry["turn_index"] for entry in records.latencies] == [1]
    # The call's records have the number; the logs have only that something was said.
    said = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "caller_said"]
    assert [(e["chars"], e["words"], e["confidence"]) for e in said] == [(10, 1, 1.0)]
    # (Not "555" alone: a timing in milliseconds may contain it.)
    assert not [r for r in caplog.records if "5550142" in str(r.msg)]


@pytest.mark.asyncio
async def test_keyed_digits_end_with_a_pause_when_the_caller_does_not_press_hash() -> None:
    session, sink, records, policy = _session()
    session.start()
    await _play(session, np.zeros(8000 * 12, dtype=np.int16))  # the whole greeting
    await _keys(session, "6175550142")
    await _play(session, np.zeros(int(8000 * 2.0), dtype=np.int16))
    assert [u for u in records.utterances if u["speaker"] == "caller"] == []  # still waiting for more keys
    await _play(session, np.zeros(int(8000 * 2.5), dtype=np.int16))
    await session.finish("test")

    assert [u["text"] for u in records.utterances if u["speaker"] == "caller"] == ["6175550142"]
    assert policy.outcome().fields["callback_number"] == "+16175550142"
    assert sink.count("clear") == 0


class NotingPolicy:
    """The real policy, noting each transcript the session hands it."""

    def __init__(self, policy: ReceptionistPolicy) -> None:
        self.policy = policy
        self.transcripts: list[Transcript] = []
        self.interruptions: list[tuple[str, str]] = []

    def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        self.transcripts.append(transcript)
        return self.policy.respond(transcript)

    def on_interrupted(self, *, said: str, heard: str) -> None:
        self.interruptions.append((said, heard))
        self.policy.on_interrupted(said=said, heard=heard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)


@pytest.mark.asyncio
async def test_a_spelling_turn_is_also_heard_as_letters_only() -> None:
    session, _sink, _records, policy = _session()
    noting = NotingPolicy(policy)
    session.deps.policy = noting  # type: ignore[assignment]
    name = await _speech("Hi, my sink is leaking. My name is Robert Chen.")
    spelled = await _speech("R - O - B - E - R - T, C - H - E - N.")
    session.start()
    await _play(session, np.zeros(8000 * 9, dtype=np.int16))  # the greeting
    await _play(session, name)
    await _play(session, np.zeros(8000 * 6, dtype=np.int16))  # the agent asks for the spelling
    await _play(session, spelled)
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))
    await session.finish("test")

    assert len(noting.transcripts) == 2
    assert noting.transcripts[0].alternatives == ()  # not a spelling turn
    letters = noting.transcripts[1].alternatives
    assert len(letters) == 1
    assert re.fullmatch(r"[A-Z ,.\-]+", letters[0]), letters
    assert policy.outcome().fields["name"] == "Robert Chen"


SHORT_GREETING = "Thanks for calling Acme Plumbing. How can I help?"


def _chains(primary_tts: TextToSpeech | None, primary_stt: SpeechToText | None) -> dict[str, Any]:
    """Fallback chains as the factory builds them: a failing engine first, the offline one last."""
    switches = SwitchLog()
    offline_tts = DeadlineTextToSpeech(shared_tts("offline"), first_chunk_s=10)
    offline_stt = shared_stt("whisper")
    assert isinstance(offline_stt, SpeechToText)
    tts_links = [DeadlineTextToSpeech(primary_tts, first_chunk_s=0.3)] if primary_tts else []
    stt_links = [DeadlineSpeechToText(primary_stt, result_s=2.0)] if primary_stt else []
    return {
        "tts": FallbackTextToSpeech([*tts_links, offline_tts], switches=switches),
        "stt": FallbackSpeechToText([*stt_links, DeadlineSpeechToText(offline_stt, result_s=15)], switches=switches),
        "switches": switches,
    }


@pytest.mark.asyncio
async def test_failing_primary_engines_cost_an_apology_and_the_call_goes_on() -> None:
    session, sink, records, policy = _session(SHORT_GREETING, **_chains(StallingVoice(), RaisingWhisper()))
    speech = await _speech("My basement is flooding right now.")
    started = time.monotonic()
    session.start()
    await _play(session, np.zeros(8000 * 5, dtype=np.int16))  # apology and greeting
    await _play(session, speech)
    await _play(session, np.zeros(8000 * 6, dtype=np.int16))  # apology, then the answer
    await session.finish("test")

    # The stalled voice cost 0.3 s, not the call: the line spoke right after.
    first_frame = sink.first("frame")
    assert first_frame is not None
    assert first_frame - started < 3.0
    assert records.finished is not None
    offline = shared_tts("offline").name
    assert [
        (s["role"], s["from_engine"], s["to_engine"], s["reason"])
        for s in records.finished["outcome"]["provider_switches"]
    ] == [("tts", "stalling-voice", offline, "deadline"), ("stt", "raising-stt", "whisper", "error")]
    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0] == SHORT_GREETING
    assert APOLOGY in agent[1:]
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert "flooding" in caller[0].lower()
    assert policy.outcome().priority == "urgent"
    assert records.hung_up is False


@pytest.mark.asyncio
async def test_when_no_engine_can_hear_the_caller_the_call_closes_politely() -> None:
    switches = SwitchLog()
    session, _sink, records, _policy = _session(
        SHORT_GREETING, stt=FallbackSpeechToText([RaisingWhisper()], switches=switches), switches=switches
    )
    speech = await _speech("My basement is flooding right now.")
    session.start()
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(8000 * 9, dtype=np.int16))
    await session.finish("test")

    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent == [SHORT_GREETING, LINE_TROUBLE_GOODBYE]
    assert [u for u in records.utterances if u["speaker"] == "caller"] == []
    assert records.hung_up is True
    assert records.finished is not None
    assert records.finished["outcome"]["provider_switches"] == []


class VadWhisperStreaming:
    """A streaming engine as a cloud vendor's would behave, built for the test from
    the real Silero VAD and Whisper: finals after each pause, end-of-turn after a
    longer one. The session's own endpointing is not involved in its decisions."""

    name = "vad-whisper-stream"
    sample_rate = 16000

    def __init__(self, *, fail_after_open: bool = False) -> None:
        self.fail_after_open = fail_after_open
        self.events_sent: list[SttEventKind] = []
        self.hints_seen: list[SttHints] = []

    async def open(self, hints: SttHints) -> SpeechStream:
        self.hints_seen.append(hints)
        return _VadWhisperStream(self, hints)


class _VadWhisperStream:
    def __init__(self, engine: VadWhisperStreaming, hints: SttHints) -> None:
        self.engine = engine
        self.hints = hints
        self.detector = TurnDetector(vad_for(16000), TurnConfig(pause_s=0.3))
        self.whisper = shared_stt("whisper")
        self.queue: asyncio.Queue[SttEvent | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    def feed(self, pcm: Pcm16) -> None:
        for event in self.detector.push(pcm):
            if event is TurnEvent.PAUSED:
                audio = self.detector.take_audio()
                self.detector.end_turn()
                task = asyncio.get_running_loop().create_task(self._final(audio))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _final(self, audio: Pcm16) -> None:
        assert isinstance(self.whisper, SpeechToText)
        transcript = await self.whisper.transcribe(audio, hints=self.hints)
        for event in (SttEvent(SttEventKind.FINAL, transcript), SttEvent(SttEventKind.END_OF_TURN)):
            self.engine.events_sent.append(event.kind)
            self.queue.put_nowait(event)

    def update_hints(self, hints: SttHints) -> None:
        self.hints = hints
        self.engine.hints_seen.append(hints)

    async def events(self) -> AsyncIterator[SttEvent]:
        if self.engine.fail_after_open:
            raise ConnectionError("stream dropped")
        while (event := await self.queue.get()) is not None:
            yield event

    async def close(self) -> None:
        self.queue.put_nowait(None)


@pytest.mark.asyncio
async def test_a_streaming_engine_hears_the_caller_and_ends_the_turn() -> None:
    streaming = VadWhisperStreaming()
    assert isinstance(streaming, StreamingSpeechToText)
    # A batch chain that cannot hear: if the session used it, the call would close.
    switches = SwitchLog()
    session, _sink, records, policy = _session(
        SHORT_GREETING,
        streaming_stt=streaming,
        stt=FallbackSpeechToText([RaisingWhisper()], switches=switches),
        switches=switches,
    )
    speech = await _speech("My basement is flooding right now.")
    session.start()
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await session.finish("test")

    assert streaming.events_sent[:2] == [SttEventKind.FINAL, SttEventKind.END_OF_TURN]
    # The stream opened with the tenant's words and heard what the agent asked for next.
    assert streaming.hints_seen[0] == SttHints(expect="free")
    assert [hints.expect for hints in streaming.hints_seen[1:]] == ["name"]
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert len(caller) == 1
    assert "flooding" in caller[0].lower()
    assert policy.outcome().priority == "urgent"
    assert records.finished is not None
    assert records.finished["outcome"]["provider_switches"] == []
    assert records.hung_up is False


@pytest.mark.asyncio
async def test_a_broken_stream_hands_the_call_to_the_batch_engine() -> None:
    streaming = VadWhisperStreaming(fail_after_open=True)
    session, _sink, records, policy = _session(SHORT_GREETING, streaming_stt=streaming, **_chains(None, None))
    speech = await _speech("My basement is flooding right now.")
    session.start()
    await _play(session, np.zeros(8000 * 5, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await session.finish("test")

    assert records.finished is not None
    assert [
        (s["role"], s["from_engine"], s["to_engine"], s["reason"])
        for s in records.finished["outcome"]["provider_switches"]
    ] == [("stt", "vad-whisper-stream", "whisper", "error")]
    # The stream broke before the caller spoke: nobody was kept waiting, so no apology.
    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent[0] == SHORT_GREETING
    assert APOLOGY not in agent
    caller = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert "flooding" in caller[0].lower()
    assert policy.outcome().priority == "urgent"


@pytest.mark.asyncio
async def test_without_playback_reports_the_session_sends_no_marks_and_keeps_its_own_time() -> None:
    session, sink, records, _policy = _session(SHORT_GREETING, reports_playback=False)
    session.start()
    await _play(session, np.zeros(8000 * 5, dtype=np.int16))
    await session.finish("test")

    assert sink.count("mark") == 0
    assert sink.count("frame") > 50
    [greeting] = records.utterances
    assert (greeting["text"], greeting["interrupted"]) == (SHORT_GREETING, False)
    # Played out by the clock: its end is its start plus its length in frames.
    assert greeting["end_s"] - greeting["start_s"] == pytest.approx(sink.count("frame") * 0.02, abs=0.1)


class ScriptedPolicy:
    """A policy whose reply parts come after set delays, to see how the session speaks a stream."""

    name = "scripted"

    def __init__(self, greeting: list[tuple[float, ReplyPart]], reply: list[tuple[float, ReplyPart]]) -> None:
        self.greeting = greeting
        self.reply = reply
        self.yielded: list[tuple[float, ReplyPart]] = []

    async def _play(self, script: list[tuple[float, ReplyPart]]) -> AsyncIterator[ReplyPart]:
        for delay, part in script:
            await asyncio.sleep(delay)
            self.yielded.append((time.monotonic(), part))
            yield part

    def greet(self) -> AsyncIterator[ReplyPart]:
        return self._play(self.greeting)

    def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        return self._play(self.reply)

    def on_silence(self) -> AsyncIterator[ReplyPart]:
        return self._play([(0.0, Say("Are you still there?")), (0.0, Listen())])

    def on_interrupted(self, *, said: str, heard: str) -> None:
        return None

    def outcome(self) -> CallOutcome:
        return CallOutcome()


@pytest.mark.asyncio
async def test_the_first_sentence_plays_before_the_policy_has_finished() -> None:
    session, sink, records, _policy = _session()
    scripted = ScriptedPolicy(
        greeting=[(0.0, Say("Hello.")), (1.5, Say("Thanks for waiting.")), (0.0, Listen(expect="digits"))], reply=[]
    )
    session.deps.policy = scripted
    started = time.monotonic()
    session.start()
    await _play(session, np.zeros(8000 * 4, dtype=np.int16))
    await session.finish("test")

    second_say_at = scripted.yielded[1][0]
    first_frame = sink.first("frame")
    assert first_frame is not None
    assert first_frame - started < 1.0
    assert first_frame < second_say_at
    agent = [(u["text"], u["interrupted"]) for u in records.utterances if u["speaker"] == "agent"]
    assert agent == [("Hello. Thanks for waiting.", False)]
    # Listen(expect="digits") reached the turn detector
    assert session.deps.turn_detector.config.pause_s == PATTERN_PAUSE_S == 0.25


@pytest.mark.asyncio
async def test_a_slow_first_sentence_gets_the_filler_first() -> None:
    session, _sink, records, _policy = _session()
    scripted = ScriptedPolicy(
        greeting=[(0.0, Say("Hi.")), (0.0, Listen())],
        reply=[(0.0, FieldUpdate("name", "Maria")), (2.5, Say("Got it.")), (0.0, EndCall())],
    )
    session.deps.policy = scripted
    speech = await _speech("My sink is leaking.")
    session.start()
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))
    await _play(session, speech)
    await _play(session, np.zeros(int(8000 * 6.5), dtype=np.int16))
    await session.finish("test")

    agent = [(u["text"], u["interrupted"]) for u in records.utterances if u["speaker"] == "agent"]
    assert agent == [("Hi.", False), ("Okay.", False), ("Got it.", False)]
    assert records.hung_up  # EndCall: the agent hung up once "Got it." had played
    [latency] = records.latencies
    assert latency["decision_ms"] >= 2500  # the reply's first sentence, not the filler


@pytest.mark.asyncio
async def test_a_model_slow_to_start_gets_the_llm_receptionists_filler_and_not_the_sessions() -> None:
    session, _sink, records, plain = _session()
    server = OpenAiChatEmulator(
        lambda request: ModelTurn(text="Could I have your name, please?", ttft_s=3.0), api_key="sk-session"
    ).start()
    try:
        llm = LlmReceptionistPolicy(
            plain.context, model="gpt-4o-mini", api_key="sk-session", base_url=server.base_url,
            embedder=shared_embedder(), first_token_s=1.0,
        )  # fmt: skip
        session.deps.policy = llm
        speech = await _speech("My kitchen sink is leaking.")
        session.start()
        await _play(session, np.zeros(8000 * 5, dtype=np.int16))
        await _play(session, speech)
        for _ in range(40):  # until the reply has played out (slower on a busy machine)
            await _play(session, np.zeros(4000, dtype=np.int16))
            if sum(u["speaker"] == "agent" for u in records.utterances) >= 2:
                break
        await session.finish("test")
    finally:
        server.stop()

    # One reply: the policy's filler, then the deterministic answer; the session's own "Okay." is not said.
    agent = [u["text"] for u in records.utterances if u["speaker"] == "agent"]
    assert agent[1:] == [f"{HOLD_ON} Okay, I've made a note of that. Could I have your name, please?"]
    assert llm.handovers == ["slow_first_token"]
    # The reason is the caller's turn as heard, which this test is not about: once, in a full
    # run on both cores, the turn was heard "My catch and sink is leaking."
    heard = [u["text"] for u in records.utterances if u["speaker"] == "caller"]
    assert len(heard) == 1
    assert heard[0].lower().endswith("sink is leaking.")
    assert records.finished["outcome"]["reason"] == heard[0].removesuffix(".")
    assert records.finished["outcome"]["llm_usage"] == {}  # the model never answered: no tokens


class CountingWhisper:
    """The real Whisper, counting the decodes the session asks of it."""

    def __init__(self) -> None:
        self.inner = shared_stt("whisper")
        self.name = self.inner.name
        self.sample_rate = self.inner.sample_rate
        self.decodes = 0

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        self.decodes += 1
        return await self.inner.transcribe(audio, hints=hints)


@pytest.mark.asyncio
async def test_a_caller_who_keeps_pausing_costs_a_bounded_number_of_decodes_and_keeps_the_turn() -> None:
    whisper = CountingWhisper()
    session, _sink, records, policy = _session(greeting="Hi.", stt=whisper)
    noting = NotingPolicy(policy)
    session.deps.policy = noting  # type: ignore[assignment]
    pieces = ["I have a leak", "under the kitchen sink", "and in the bathroom", "and in the garage", "and the hall"]
    # 210 ms between pieces: the voice activity detector hears about 150 ms of it as silence, long
    # enough to be the end of a turn, too short to be a late pause.
    gap = np.zeros(int(8000 * 0.21), dtype=np.int16)
    spoken = [_voiced(await _speech(piece)) for piece in pieces]
    session.start()
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))  # the greeting
    for piece in spoken[:-1]:
        await _play(session, np.concatenate([piece, gap]))
    tail = await _play(session, spoken[-1])
    silence = await _play(session, np.zeros(8000 * 3, dtype=np.int16))
    await session.finish("test")
    # How late the feeder itself ran: on a busy machine the loop wakes late, and the frames it owes
    # then go out in a burst, so the pause is seen late, or sooner than its audio would take.
    late_ms = 1000 * max(_lateness(tail), _lateness(silence))

    # Four pauses inside the turn and its end: without the budget, five decodes. An early pause is
    # skipped when the caller is already speaking again by the time the last decode is done, and
    # piper's rendition varies from run to run: some runs leave no gap the detector hears as a pause.
    assert 1 <= whisper.decodes <= EARLY_DECODES + 1 == 4
    [transcript] = noting.transcripts
    words = transcript.text.lower().split()
    # One turn: the pauses inside it did not hand the caller's story to the policy in pieces. (The
    # first three pieces alone are 12 words; Whisper may drop a word of the rest.)
    assert len(words) >= 14
    assert [u["speaker"] for u in records.utterances].count("caller") == 1
    [latency] = records.latencies
    stages = [latency[s] for s in ("pause_ms", "transcript_ms", "endpoint_ms", "decision_ms", "first_frame_ms")]
    assert stages == sorted(stages)
    # 120 ms of silence, counted on the audio clock, plus delivery; counted from the start of the
    # last piece instead, it would be that piece's length more.
    assert 100 - late_ms <= latency["pause_ms"] <= 400 + late_ms


# -- transfer to a person -------------------------------------------------------------------------------


class TransferringScript(ScriptedPolicy):
    """Greets with a transfer and notes how it went; the caller's words would get a reply (they must not)."""

    def __init__(self) -> None:
        super().__init__(
            greeting=[(0.0, Say("Putting you through now.")), (0.0, Transfer(to="+15550100199"))],
            reply=[(0.0, Say("You should not hear this.")), (0.0, Listen())],
        )
        self.transfer_results: list[str] = []
        self.responded = 0

    def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        self.responded += 1
        return super().respond(transcript)

    def on_transfer(self, status: str) -> AsyncIterator[ReplyPart]:
        self.transfer_results.append(status)
        if status in ("answered", "handed_off"):
            return self._play([(0.0, EndCall())])
        return self._play([(0.0, Say("Sorry, nobody answered.")), (0.0, Listen())])

    def outcome(self) -> CallOutcome:
        return CallOutcome(transfer=self.transfer_results[-1] if self.transfer_results else "dialing")


class RingingLine:
    """A transferer whose number rings until ``answer`` is set (never, unless a test says)."""

    def __init__(self, result: str = "answered") -> None:
        self.asked: list[str] = []
        self.answer = asyncio.Event()
        self.result = result

    async def transfer(self, to: str) -> str:
        self.asked.append(to)
        await self.answer.wait()
        return self.result


async def _until_true(predicate: Callable[[], bool], session: CallSession, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await _play(session, np.zeros(1600, dtype=np.int16))  # 200 ms of line silence


@pytest.mark.asyncio
async def test_an_answered_transfer_is_recorded_and_ends_the_call_as_transferred() -> None:
    session, _sink, records, _policy = _session()
    script, line = TransferringScript(), RingingLine("answered")
    session.deps.policy = script
    session._transferer = line
    session.start()
    await _until_true(lambda: bool(line.asked), session)
    # While it rings the caller is on hold: what they say starts no turn.
    await _play(session, await _speech("Hello? Is anyone there?"))
    line.answer.set()
    await _until_true(lambda: records.hung_up, session)
    await session.finish("agent_hangup")

    assert line.asked == ["+15550100199"]
    assert [(t["status"], t["to"]) for t in records.transfers] == [
        ("dialing", "+15550100199"),
        ("answered", "+15550100199"),
    ]
    assert records.transfers[0]["captured"]["transfer"] == "dialing"
    assert script.transfer_results == ["answered"]
    assert script.responded == 0
    assert records.finished is not None
    assert records.finished["end_reason"] == "transferred"


@pytest.mark.asyncio
async def test_a_caller_who_hangs_up_while_the_transfer_rings_counts_as_a_failed_transfer() -> None:
    session, _sink, records, _policy = _session()
    script, line = TransferringScript(), RingingLine()
    session.deps.policy = script
    session._transferer = line
    session.start()
    await _until_true(lambda: bool(line.asked), session)
    await session.finish("caller_hangup")

    assert [t["status"] for t in records.transfers] == ["dialing", "failed"]
    assert script.transfer_results == ["failed"]
    assert records.finished is not None
    assert records.finished["end_reason"] == "caller_hangup"
    assert records.finished["outcome"]["transfer"] == "failed"


class SlowWhisper(CountingWhisper):
    """The real Whisper on a machine so busy that each decode takes 1.5 s longer."""

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        transcript = await super().transcribe(audio, hints=hints)
        await asyncio.sleep(1.5)
        return transcript


@pytest.mark.asyncio
async def test_a_transcript_of_part_of_the_turn_never_ends_it_once_the_caller_has_spoken_again() -> None:
    whisper = SlowWhisper()
    session, _sink, records, policy = _session(greeting="Hi.", stt=whisper)
    noting = NotingPolicy(policy)
    session.deps.policy = noting  # type: ignore[assignment]
    hello = _voiced(await _speech("Hello,"))
    story = _voiced(await _speech("my shower drain is completely blocked."))
    session.start()
    await _play(session, np.zeros(8000 * 2, dtype=np.int16))
    # "Hello," is transcribed at the pause; the caller goes on and stops before that decode is done.
    await _play(session, np.concatenate([hello, np.zeros(int(8000 * 0.3), dtype=np.int16), story]))
    await _play(session, np.zeros(8000 * 5, dtype=np.int16))
    await session.finish("test")

    [transcript] = noting.transcripts
    assert "drain" in transcript.text.lower()
    assert [u["speaker"] for u in records.utterances].count("caller") == 1
