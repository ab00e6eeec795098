"""One phone call: caller audio in, agent audio out, and everything recorded.

The session is transport-agnostic. A transport (``calls.transports``) feeds
it PCM at ``CALL_RATE`` with ``feed`` and gives it an ``AudioSink`` that takes
``CALL_RATE`` frames; coding and resampling for the wire happen in the
transport. Transports that report playback (marks) confirm what the caller
heard; without them the session keeps time on its own clock. The session
runs VAD and endpointing, speech recognition, the dialogue policy and speech synthesis as tasks on the
transport's event loop. Heavy work (STT, retrieval) runs in threads.

Barge-in is two-phase: caller speech during playback pauses the agent at
once; only a transcript that is more than a backchannel cancels the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import structlog

from calls.audio import CALL_FRAME_SAMPLES, CALL_RATE, OnsetTrimmer, Resampler, SampleChunker, resample
from calls.dialogue.extract import is_backchannel
from calls.pipeline.fallback import (
    APOLOGY,
    LINE_TROUBLE_GOODBYE,
    EnginesExhaustedError,
    ProviderSwitch,
    SwitchLog,
)
from calls.pipeline.output import AudioSink, PacedOutput, Segment
from calls.pipeline.protocols import (
    TRANSFER_FAILURES,
    CallOutcome,
    CallTransferer,
    DialoguePolicy,
    EndCall,
    Expectation,
    FieldUpdate,
    Listen,
    Pcm16,
    ReplyPart,
    Say,
    SpeechToText,
    StreamingSpeechToText,
    SttHints,
    TextToSpeech,
    Transcript,
    Transfer,
    TransferringPolicy,
    TransferStatus,
)
from calls.pipeline.recording import StereoRecorder
from calls.pipeline.reply_scope import ReplyScope, reply_open
from calls.pipeline.stt_stream import TurnStream
from calls.pipeline.turns import TurnDetector, TurnEvent, endpoint_delay
from voicedesk.core.metrics import TURN_LATENCY

logger = structlog.get_logger(__name__)

SILENCE_TIMEOUT_S = 5.0
# A reply whose first sentence comes later than this after the caller
# stopped speaking gets a quick spoken acknowledgement first.
FILLER_AFTER_S = 1.5
FILLER = "Okay."
MAX_CALL_S = 15 * 60
# Keypad entry: digits gather until "#" or this long without a key, then count
# as one caller turn. Long enough for a caller looking at a card between keys.
KEYPAD_GAP_S = 2.5
KEYPAD_KEYS = frozenset("0123456789*#")
TEARDOWN_TIMEOUT_S = 3.0
# How long a policy may take over the turn salvaged at hang-up. A decision
# takes milliseconds; the bound is for a stalled engine, and is generous so a
# busy machine does not lose the caller's last words.
LAST_TURN_TIMEOUT_S = 10.0
# On hang-up while a transfer is under way, how long its outcome may take to arrive before it is given up.
TRANSFER_SETTLE_S = 2.0
# How long the transfer's records (and the ticket the transfer hooks make) may take to write.
TRANSFER_RECORD_TIMEOUT_S = 30.0
# Seconds between heartbeats (the transport passes the deployment's setting).
CHECKPOINT_S = 5.0
# Turn-taking: transcription starts at the first pause that could end the
# turn (``EARLY_PAUSE_S`` of silence, longer while digits, letters or an
# email are read out). A turn gets ``EARLY_DECODES`` such transcriptions;
# after that only a longer pause starts one.
EARLY_PAUSE_S = 0.12
PATTERN_PAUSE_S = 0.25
EARLY_DECODES = 3
LATE_PAUSE_S = 0.2
LATE_PATTERN_PAUSE_S = 0.5
_PATTERNS: frozenset[Expectation] = frozenset({"digits", "spelling", "email"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
# Sentences longer than this are synthesized clause by clause, so the first
# audio of a long answer is not held back by its tail.
LONG_SENTENCE_CHARS = 60
# A reply's first sentence is split sooner: at its first clause of at least
# MIN_CLAUSE_CHARS once it is longer than OPENING_CHUNK_CHARS. A shorter
# clause ("Hello,") would play out before the rest is synthesized on a busy
# machine, and a gap mid-sentence sounds like the end of the agent's turn.
OPENING_CHUNK_CHARS = 32
MIN_CLAUSE_CHARS = 16


class CallRecords(Protocol):
    """Where the session writes what happens, as it happens."""

    def utterance(
        self, *, speaker: str, text: str, start_s: float, end_s: float, confidence: float | None, interrupted: bool
    ) -> None: ...

    def turn_latency(
        self,
        *,
        turn_index: int,
        pause_ms: float,
        transcript_ms: float,
        endpoint_ms: float,
        decision_ms: float,
        first_audio_ms: float,
        first_frame_ms: float,
    ) -> None:
        """One caller turn's stages, each in ms after the caller's last voiced frame arrived."""

    def checkpoint(self, *, captured: dict[str, Any] | None, recording: bytes) -> None:
        """The call is alive: store the recording's next stretch and, when it changed, what was captured."""

    async def finish(self, *, end_reason: str, outcome: dict[str, Any], completed: bool, recording: bytes) -> None:
        """Store the end of the call: the rest of the recording, the outcome, the status."""

    async def transfer(self, *, to: str, status: TransferStatus, captured: dict[str, Any] | None) -> None:
        """Store a transfer to a person: begun (``dialing``, with what was captured) or how it ended.

        Returns once stored: the ticket the caller's request becomes exists
        before the transport dials.
        """


@dataclass(slots=True)
class SessionDeps:
    stt: SpeechToText
    tts: TextToSpeech
    turn_detector: TurnDetector
    policy: DialoguePolicy
    summarize: Callable[[CallOutcome], str]
    # The tenant's words; the session adds what the agent expects next.
    stt_hints: SttHints = field(default_factory=SttHints)
    # When set, recognition streams through it and ``stt`` is its fallback.
    streaming_stt: StreamingSpeechToText | None = None
    switches: SwitchLog = field(default_factory=SwitchLog)


@dataclass(slots=True)
class _TurnTiming:
    index: int
    speech_end_wall: float  # monotonic time the caller's last voiced frame arrived
    pause_seen_at: float = 0.0  # the pause that ended the turn was seen
    transcript_at: float = 0.0
    turn_end_at: float = 0.0  # the endpoint wait was over
    decision_at: float = 0.0
    first_audio_at: float = 0.0


@dataclass(slots=True)
class _Speech:
    """One reply being spoken; its sentences arrive while the policy is still deciding the rest."""

    sentences: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    texts: list[str] = field(default_factory=list)  # every sentence received, in order
    segments: list[Segment] = field(default_factory=list)  # what has gone to the output so far
    end_call: bool = False
    transfer_to: str = ""  # once spoken, put the caller through to this number

    def say(self, text: str) -> None:
        self.texts.append(text)
        self.sentences.put_nowait(text)

    def close(self) -> None:
        """No more sentences: the speaker finishes what it has."""
        self.sentences.put_nowait(None)

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def heard(self, cut: list[tuple[Segment, float]]) -> str:
        """The words of this reply that were played, given the segments an interruption ``cut``."""
        words: list[str] = []
        for segment in self.segments:
            fraction = next((f for s, f in cut if s is segment), 1.0)
            words.append(_heard_text(segment, fraction))
            if fraction < 1.0:
                break  # nothing after a cut segment was heard
        return " ".join(w for w in words if w).strip()


class CallSession:
    """Runs one call. ``start``, then ``feed`` per inbound frame, then ``finish``."""

    def __init__(
        self,
        *,
        deps: SessionDeps,
        sink: AudioSink,
        records: CallRecords,
        hangup: Callable[[], Coroutine[Any, Any, None]],
        reports_playback: bool = True,
        checkpoint_s: float = CHECKPOINT_S,
        transferer: CallTransferer | None = None,
    ) -> None:
        self.deps = deps
        self._transferer = transferer
        self._transfer_task: asyncio.Task[None] | None = None
        self._transferring = False  # the caller is on hold while a transfer rings
        self.transfer_status: TransferStatus | None = None
        self._transfer_to = ""
        self.checkpoint_s = checkpoint_s
        self.output = PacedOutput(_RecordingSink(sink, self), reports_playback=reports_playback)
        self.records = records
        self._hangup = hangup
        self.recorder = StereoRecorder(CALL_RATE)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._turn_task: asyncio.Task[None] | None = None
        self._speak_task: asyncio.Task[None] | None = None
        self._reply_task: asyncio.Task[None] | None = None  # a reply no caller turn waits on
        self._speech: _Speech | None = None  # the reply spoken last
        self._expect: Expectation = "free"
        self._answer_hint = ""
        self._turn_index = 0
        self._started_wall = 0.0
        self._last_activity = 0.0
        self._last_voiced_wall = 0.0
        self._finish_task: asyncio.Task[None] | None = None
        self._hangup_task: asyncio.Task[None] | None = None
        self._finishing = False
        self._ending = False
        self._silence_prompts = 0
        self._keypad: list[str] = []
        self._keypad_started_wall = 0.0
        self._keypad_timer: asyncio.Task[None] | None = None
        self._stream: TurnStream | None = None
        # Set by every inbound frame: an endpoint wait wakes on the frame that ends it.
        self._audio_fed = asyncio.Event()
        if deps.streaming_stt is not None:
            self._stream = TurnStream(deps.streaming_stt, switches=deps.switches, fallback=deps.stt.name)
        deps.switches.listeners.append(self._on_provider_switch)
        self.log = logger

    # -- lifecycle ---------------------------------------------------------
    def start(self, log_context: dict[str, Any] | None = None) -> None:
        self.log = logger.bind(**(log_context or {}))
        self._started_wall = self._last_activity = time.monotonic()
        self._spawn(self.output.run(), "output")
        self._spawn(self._watchdog(), "watchdog")
        self._spawn(self._checkpoints(), "checkpoints")
        if self._stream is not None:
            self._spawn(self._stream.run(self._stt_hints()), "stt-stream")
        self._reply_soon(self.deps.policy.greet())

    @property
    def finished(self) -> bool:
        return self._finishing

    def call_seconds(self, wall: float | None = None) -> float:
        return (wall if wall is not None else time.monotonic()) - self._started_wall

    def feed(self, pcm: Pcm16) -> None:
        """One inbound frame of caller audio (``CALL_RATE`` PCM). Cheap: runs on the event loop."""
        if self._finishing:
            return
        self.recorder.caller(pcm)
        if self._transferring:
            return  # on hold: the caller hears the transfer ring, not a conversation
        self._audio_fed.set()
        if self._stream is not None:
            self._stream.feed(pcm)
        detector = self.deps.turn_detector
        voiced_before = detector.state.last_speech_at
        for event in detector.push(pcm):
            self._on_turn_event(event)
        if detector.state.last_speech_at != voiced_before:
            self._last_voiced_wall = time.monotonic()
            self._last_activity = self._last_voiced_wall

    def on_mark(self, name: str) -> None:
        self.output.mark_confirm(name)

    def on_dtmf(self, key: str) -> None:
        """A key the caller pressed. Digits gather until "#" or a pause and then
        count as what the caller said, so a number can be keyed in instead of
        read out (no recognition errors). "*" starts the entry again."""
        if self._finishing or self._ending or key not in KEYPAD_KEYS:
            return
        now = time.monotonic()
        self._last_activity = now
        self._silence_prompts = 0
        if self._keypad_timer is not None and not self._keypad_timer.done():
            self._keypad_timer.cancel()
        if key == "*":
            self._keypad.clear()
            return
        if key != "#":
            if not self._keypad:
                self._keypad_started_wall = now
            self._keypad.append(key)
        if key == "#" or len(self._keypad) >= 15:  # E.164 numbers have at most 15 digits
            self._keypad_submit()
        else:
            self._keypad_timer = self._spawn(self._keypad_wait(), "keypad-wait")

    async def _keypad_wait(self) -> None:
        await asyncio.sleep(KEYPAD_GAP_S)
        self._keypad_submit()

    def _keypad_submit(self) -> None:
        digits, self._keypad = "".join(self._keypad), []
        if digits:
            started = self._keypad_started_wall
            self._turn_task = self._spawn(self._keypad_turn(digits, started, self._turn_task), "keypad-turn")

    async def _keypad_turn(self, digits: str, started_wall: float, previous: asyncio.Task[None] | None) -> None:
        """A keyed-in entry is a caller turn with certain text: no endpointing, no transcription."""
        if previous is not None and not previous.done():
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        entered_wall = time.monotonic()
        if self.output.busy:
            # Keys pressed over the agent are an answer, not a backchannel.
            await self._interrupt_agent()
        self._record_caller(digits, self.call_seconds(started_wall), self.call_seconds(entered_wall), 1.0)
        self.log.info("keypad_entry", digits=len(digits))
        if self._ending:
            return
        self._turn_index += 1
        timing = _TurnTiming(index=self._turn_index, speech_end_wall=entered_wall, transcript_at=entered_wall)
        await self._reply(self.deps.policy.respond(Transcript(text=digits, confidence=1.0)), timing)

    async def finish(self, reason: str) -> None:
        """End the call once: keep what was captured, store it, make the ticket. Bounded.

        The work runs in a task of its own and is shielded: a server that
        cancels the connection's handler (daphne's shutdown timeout) must not
        cancel the storing of the call.
        """
        if self._finish_task is None:
            self._finishing = True
            self._finish_task = asyncio.get_running_loop().create_task(self._finish(reason), name="finish")
        await asyncio.shield(self._finish_task)

    async def _finish(self, reason: str) -> None:
        try:
            await self._transfer_settle()
            if self.transfer_status in ("answered", "handed_off"):
                reason = "transferred"
            await self._salvage_turn_in_flight()
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                _, stragglers = await asyncio.wait(tasks, timeout=TEARDOWN_TIMEOUT_S)
                if stragglers:
                    self.log.warning("call_teardown_stragglers", tasks=[t.get_name() for t in stragglers])
            outcome, data = self._outcome()
            data["frames_sent"] = self.output.stats.frames_sent
            data["frames_late"] = self.output.stats.frames_late
            data["reply_gaps"] = self.output.stats.reply_gaps
            data["reply_gap_max_ms"] = self.output.stats.reply_gap_max_ms
            data["provider_switches"] = [asdict(switch) for switch in self.deps.switches.entries]
            # A policy on a language model says what it used (tokens by model and kind), for billing.
            llm_usage = getattr(self.deps.policy, "llm_usage", None)
            if callable(llm_usage):
                data["llm_usage"] = llm_usage()
            await self.records.finish(
                end_reason=reason,
                outcome=data,
                completed=outcome.completed,
                recording=self.recorder.take_rest(),
            )
            self.log.info("call_session_finished", reason=reason, completed=outcome.completed)
        except Exception:
            self.log.exception("call_session_finish_failed", reason=reason)
            raise
        finally:
            # Nothing feeds the detector once finishing began (``feed`` returns at once).
            self.deps.turn_detector.close()

    def _outcome(self) -> tuple[CallOutcome, dict[str, Any]]:
        outcome = self.deps.policy.outcome()
        data = asdict(outcome)
        data["summary"] = self.deps.summarize(outcome)
        return outcome, data

    async def _checkpoints(self) -> None:
        """The heartbeat: every ``checkpoint_s`` the recording so far goes to disk, and what was
        captured goes to the call record when it changed, so a process that dies keeps both."""
        written: dict[str, Any] | None = None
        while True:
            await asyncio.sleep(self.checkpoint_s)
            # Compared, not tracked by turn: the policy fills fields while a reply is still being decided.
            _, captured = self._outcome()
            changed = captured != written
            written = captured
            self.records.checkpoint(captured=captured if changed else None, recording=self.recorder.take_settled())

    # -- caller turns --------------------------------------------------------
    def _on_turn_event(self, event: TurnEvent) -> None:
        if event is TurnEvent.STARTED:
            self._silence_prompts = 0
            if self._stream is not None:
                self._stream.turn_started()
            if self.output.busy and not self.output.paused and not self._ending:
                # Phase one of barge-in: stop talking now, decide later.
                self._spawn(self.output.pause(), "barge-in-pause")
        elif event is TurnEvent.PAUSED:
            # One transcription at a time per call: a pause while the last
            # one still runs queues behind it instead of piling up decodes.
            self._turn_task = self._spawn(self._turn(self._turn_task, time.monotonic()), "turn")

    def _cancel_turn_task(self) -> None:
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        self._turn_task = None

    def _stt_hints(self) -> SttHints:
        return dataclasses.replace(self.deps.stt_hints, expect=self._expect, answer_hint=self._answer_hint)

    async def _transcribe(self, audio: Pcm16) -> Transcript:
        """The caller's turn so far, as text: from the stream when there is one, else batch.

        A batch engine is driven by the turn detector: it gets the turn's
        audio once the caller pauses. Raises ``EnginesExhaustedError`` when no
        engine can hear the caller any more.
        """
        if self._stream is not None and self._stream.active:
            transcript = await self._stream.transcript()
            if transcript is not None:
                return transcript
        stt = self.deps.stt
        wide = resample(audio, CALL_RATE, stt.sample_rate)
        return await stt.transcribe(wide, hints=self._stt_hints())

    async def _next_frame(self) -> None:
        """Until the next inbound frame (or a frame's time, for an engine's end-of-turn between frames).

        The endpoint is reached on a frame; waking on that frame, not on a
        timer, keeps the wait from adding up to a frame's time to the answer.
        """
        self._audio_fed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.02):
                await self._audio_fed.wait()

    def _engine_ended_turn(self) -> bool:
        return self._stream is not None and self._stream.active and self._stream.end_of_turn

    def _on_provider_switch(self, switch: ProviderSwitch) -> None:
        self.log.warning(
            "provider_switched", role=switch.role, engine=switch.from_engine, to=switch.to_engine, reason=switch.reason
        )
        waiting = self.deps.turn_detector.state.started
        if switch.role == "stt" and waiting and not self._ending and not self._finishing:
            # The caller is waiting for an answer while the next engine hears
            # them again. (A text-to-speech chain apologises itself.)
            self._say_line(APOLOGY)

    def _line_trouble(self) -> None:
        """No engine can hear the caller: say so and close; the ticket keeps what was captured."""
        self.log.error("speech_to_text_exhausted")
        self.deps.turn_detector.end_turn()
        if not self._ending:
            self._say_line(LINE_TROUBLE_GOODBYE, end_call=True)

    async def _turn(self, previous: asyncio.Task[None] | None, paused_at: float) -> None:
        """Transcribe the turn at a pause, speculatively, and end it once the endpoint delay is over.

        The pause is short (``TurnConfig.pause_s``), so the transcript is
        usually ready before the caller could be done; if they go on, it is
        thrown away and the next pause transcribes the whole turn again. After
        ``EARLY_DECODES`` of those in one turn, the next waits for a longer
        pause, so a caller who pauses often costs a bounded number of decodes.
        """
        if previous is not None and not previous.done():
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        detector = self.deps.turn_detector
        state = detector.state
        if not state.paused:
            return  # the caller carried on (or the turn is over); a later pause transcribes
        if state.decodes >= EARLY_DECODES:
            while detector.clock_s < state.last_speech_at + self._late_pause_s():
                await self._next_frame()
                if detector.state is not state or not state.paused:
                    return
            paused_at = time.monotonic()
        state.decodes += 1
        speech_end_wall = self._last_voiced_wall
        heard_until = state.last_speech_at  # the transcript covers the turn up to here

        def moved_on() -> bool:
            # The caller spoke again since this transcription began (and may have paused again):
            # the transcript is of part of the turn, and the latest pause transcribes all of it.
            return detector.state is not state or not state.paused or state.last_speech_at != heard_until

        try:
            transcript = await self._transcribe(detector.take_audio())
        except EnginesExhaustedError:
            self._line_trouble()
            return
        transcript_at = time.monotonic()
        # Wait out the rest of the endpoint delay on the audio clock; the
        # caller speaking again hands the turn to the next pause.
        delay = endpoint_delay(self._expect, transcript.text, self._answer_hint, opening=self._turn_index == 0)
        while detector.clock_s < state.last_speech_at + delay and not self._engine_ended_turn():
            # The engine's own end-of-turn event, when it has one, ends the wait.
            if moved_on():
                return
            await self._next_frame()
        if moved_on():
            return
        turn_end_at = time.monotonic()
        start_s = self.call_seconds(speech_end_wall) - (state.last_speech_at - state.started_at)
        end_s = self.call_seconds(speech_end_wall)
        detector.end_turn()
        text = transcript.text.strip()

        if self.output.paused:
            # A lone word over the agent is far likelier an "uh-huh" the line
            # blurred than an interruption; the caller can always say more.
            if not text or is_backchannel(text) or len(text.split()) <= 1:
                # Phase two, false alarm: carry on where the caller stopped hearing.
                self.log.info("barge_in_ignored", words=len(text.split()))
                self.output.resume()
                if text:
                    self._record_caller(text, start_s, end_s, transcript.confidence)
                return
            await self._interrupt_agent()
        if not text:
            return
        self._record_caller(text, start_s, end_s, transcript.confidence)
        if self._ending:
            return
        self._turn_index += 1
        timing = _TurnTiming(
            index=self._turn_index,
            speech_end_wall=speech_end_wall,
            pause_seen_at=max(paused_at, speech_end_wall),
            transcript_at=transcript_at,
            turn_end_at=turn_end_at,
        )
        await self._reply(self.deps.policy.respond(transcript), timing)

    async def _interrupt_agent(self) -> None:
        """Phase two, real interruption: drop the rest of the reply, keep what was heard."""
        speech = self._speech
        if self._speak_task is not None:
            self._speak_task.cancel()
        cut = await self.output.cancel()
        heard = " ".join(_heard_text(segment, fraction) for segment, fraction in cut).strip()
        self.log.info("barge_in_committed", heard_words=len(heard.split()))
        if speech is not None and speech.texts:
            # The policy decides what to make of a reply the caller only partly heard.
            self.deps.policy.on_interrupted(said=speech.text, heard=speech.heard(cut))

    async def _salvage_turn_in_flight(self) -> None:
        """On hang-up, a turn still being spoken or endpointed is transcribed and kept."""
        detector = self.deps.turn_detector
        if not detector.state.started or detector.state.voiced_s < 0.2:
            return
        self._cancel_turn_task()
        try:
            transcript = await asyncio.wait_for(self._transcribe(detector.take_audio()), timeout=5)
        except (TimeoutError, asyncio.CancelledError, EnginesExhaustedError):
            return
        if transcript.text.strip():
            end_s = self.call_seconds()
            self._record_caller(
                transcript.text.strip(), end_s - detector.state.duration_s, end_s, transcript.confidence
            )
            await self._reply_discard(self.deps.policy.respond(transcript))
        detector.end_turn()

    async def _reply_discard(self, parts: AsyncIterator[ReplyPart]) -> None:
        """Let the policy take in a last turn nobody will hear the answer to. Bounded, and
        never fatal: what was captured before must still be stored."""
        try:
            async with asyncio.timeout(LAST_TURN_TIMEOUT_S):
                async for _ in parts:
                    pass
        except Exception:
            self.log.exception("policy_last_turn_failed")

    def _record_caller(self, text: str, start_s: float, end_s: float, confidence: float) -> None:
        self.records.utterance(
            speaker="caller",
            text=text,
            start_s=max(0.0, start_s),
            end_s=end_s,
            confidence=confidence,
            interrupted=False,
        )
        # What callers say (names, numbers, addresses) is stored with the call, never logged.
        self.log.info("caller_said", chars=len(text), words=len(text.split()), confidence=round(confidence, 2))

    # -- agent speech --------------------------------------------------------
    def _reply_soon(self, parts: AsyncIterator[ReplyPart]) -> None:
        """Speak a reply no caller turn waits on (the greeting, a silence prompt)."""
        self._reply_task = self._spawn(self._reply(parts, timing=None), "reply")

    async def _reply(self, parts: AsyncIterator[ReplyPart], timing: _TurnTiming | None) -> None:
        """Speak a policy's reply as it streams in: each sentence goes to speech synthesis on arrival.

        On a caller turn, when no sentence has come ``FILLER_AFTER_S`` after
        the caller stopped speaking, the filler is spoken first.
        """
        speech: _Speech | None = None
        listen = Listen()
        end_call = False
        transfer_to = ""
        # A policy that says its own filler when it is slow (it knows why it waits) gets none from here.
        own_filler = getattr(self.deps.policy, "speaks_filler", False)
        filler_at = timing.speech_end_wall + FILLER_AFTER_S if timing is not None and not own_filler else None
        step: asyncio.Future[ReplyPart | None] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(parts, None))
                if speech is None and filler_at is not None:
                    done, _ = await asyncio.wait({step}, timeout=max(0.0, filler_at - time.monotonic()))
                    if not done:
                        self._say_line(FILLER)
                        filler_at = None
                part = await step
                if part is None:
                    break
                if isinstance(part, Say):
                    if speech is None:
                        if timing is not None:
                            timing.decision_at = time.monotonic()
                        speech = self._speech_open(timing)
                    speech.say(part.text)
                elif isinstance(part, Listen):
                    listen = part
                elif isinstance(part, EndCall):
                    end_call = True
                    self._ending = True
                elif isinstance(part, Transfer):
                    # Nothing the caller says now starts another turn: they are being put through.
                    transfer_to = part.to
                    self._ending = True
                elif isinstance(part, FieldUpdate):
                    self.log.info("field_captured", field=part.name, cleared=not part.value)
        finally:
            if step is not None and not step.done():
                step.cancel()
            if speech is None and (end_call or transfer_to):
                speech = self._speech_open(timing)  # nothing to say: hang up once the last reply has played
            if speech is not None:
                speech.end_call = end_call
                speech.transfer_to = transfer_to
                speech.close()
        if timing is not None and not timing.decision_at:
            timing.decision_at = time.monotonic()
        if end_call or transfer_to:
            self._expect_answer("free", "")
        else:
            self._expect_answer(listen.expect, listen.answer_hint)

    def _expect_answer(self, expect: Expectation, answer_hint: str) -> None:
        changed = (expect, answer_hint) != (self._expect, self._answer_hint)
        self._expect = expect
        self._answer_hint = answer_hint
        if changed and self._stream is not None:
            self._stream.update_hints(self._stt_hints())
        # Callers pause between digit groups and spelled letters; a longer
        # pause before transcribing saves decodes that would be thrown away.
        self.deps.turn_detector.config.pause_s = PATTERN_PAUSE_S if expect in _PATTERNS else EARLY_PAUSE_S

    def _late_pause_s(self) -> float:
        return LATE_PATTERN_PAUSE_S if self._expect in _PATTERNS else LATE_PAUSE_S

    def _say_line(self, text: str, *, end_call: bool = False) -> None:
        """A line of the session's own (the filler, an apology, a goodbye), queued like any reply."""
        if end_call:
            self._ending = True
            self._expect_answer("free", "")
        speech = self._speech_open(timing=None)
        speech.end_call = end_call
        speech.say(text)
        speech.close()

    def _speech_open(self, timing: _TurnTiming | None) -> _Speech:
        speech = _Speech()
        previous = self._speak_task
        self._speech = speech
        self._speak_task = self._spawn(self._say(speech, timing, previous), "speak")
        return speech

    async def _say(self, speech: _Speech, timing: _TurnTiming | None, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            # Replies never overlap: the new one queues behind the last.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(previous)
        turn = timing.index if timing else self._turn_index
        self.output.first_frame_at = None
        # The reply's sentences go together: an engine that can continue one across them does.
        scope = ReplyScope()
        try:
            with reply_open(scope):
                while (sentence := await speech.sentences.get()) is not None:
                    for chunk in speech_chunks(sentence, opening=not speech.segments):
                        segment = self.output.segment_open(chunk, turn, opens_reply=not speech.segments)
                        speech.segments.append(segment)
                        await self._synthesize_into(chunk, segment, timing)
                        self.output.segment_close(segment)
            await scope.close(completed=True)
            if timing is not None:
                self._spawn(self._record_latency(timing), "latency")
            await self.output.wait_idle(timeout=120)
        except asyncio.CancelledError:
            await scope.close(completed=False)
            self._record_agent(speech.segments, interrupted=True)
            raise
        except EnginesExhaustedError:
            await scope.close(completed=False)
            # Not even the offline voice works: nothing can be said, so the
            # call closes and its ticket keeps what was captured.
            self.log.error("text_to_speech_exhausted")
            await self.output.wait_idle(timeout=10)
            self._record_agent(speech.segments, interrupted=False)
            self._ending = True
            self._hangup_soon()
            return
        self._record_agent(speech.segments, interrupted=False)
        self._last_activity = time.monotonic()
        if speech.transfer_to and not self._finishing:
            # Not one of the session's tasks: a hang-up during the ring waits for its outcome briefly.
            self._transfer_task = asyncio.get_running_loop().create_task(
                self._transfer_run(speech.transfer_to), name="transfer"
            )
        if speech.end_call:
            await asyncio.sleep(0.3)
            self.log.info("agent_hung_up")
            self._hangup_soon()

    async def _synthesize_into(self, sentence: str, segment: Segment, timing: _TurnTiming | None) -> None:
        tts = self.deps.tts
        resampler = Resampler(tts.sample_rate, CALL_RATE)
        chunker = SampleChunker(CALL_FRAME_SAMPLES, np.int16)
        # The first frame of a reply is speech: its lead-in silence would only add to the wait.
        onset = OnsetTrimmer(CALL_RATE) if segment.opens_reply else None
        async for chunk in tts.synthesize(sentence):
            if timing is not None and not timing.first_audio_at:
                timing.first_audio_at = time.monotonic()
            pcm = resampler.process(chunk)
            frames = chunker.push(onset.process(pcm) if onset is not None else pcm)
            if frames:
                self.output.segment_feed(segment, frames)
        rest = resampler.flush()
        tail = chunker.push(onset.process(rest) if onset is not None else rest)
        last = chunker.flush()
        self.output.segment_feed(segment, [*tail, *([last] if last is not None else [])])

    def _record_agent(self, segments: list[Segment], *, interrupted: bool) -> None:
        now = time.monotonic()
        heard = [_heard_text(s, s.heard_fraction(now)) for s in segments] if interrupted else [s.text for s in segments]
        text = " ".join(h for h in heard if h).strip()
        sent = [s for s in segments if s.first_sent_at is not None]
        if not text or not sent:
            return
        first = sent[0].first_sent_at
        assert first is not None
        end = min(now, max(s.play_end_at for s in sent))
        self.records.utterance(
            speaker="agent",
            text=text,
            start_s=self.call_seconds(first),
            end_s=self.call_seconds(end),
            confidence=None,
            interrupted=interrupted,
        )

    async def _record_latency(self, timing: _TurnTiming) -> None:
        deadline = time.monotonic() + 10
        while self.output.first_frame_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        first_frame = self.output.first_frame_at
        if first_frame is None:
            return

        def ms(at: float) -> float:
            return (at - timing.speech_end_wall) * 1000

        self.records.turn_latency(
            turn_index=timing.index,
            pause_ms=ms(timing.pause_seen_at),
            transcript_ms=ms(timing.transcript_at),
            endpoint_ms=ms(timing.turn_end_at),
            decision_ms=ms(timing.decision_at),
            first_audio_ms=ms(timing.first_audio_at or first_frame),
            first_frame_ms=ms(first_frame),
        )
        TURN_LATENCY.observe(ms(first_frame) / 1000)
        self.log.info("turn_latency", turn=timing.index, first_frame_ms=round(ms(first_frame)))

    # -- transfer to a person ----------------------------------------------------
    async def _transfer_run(self, to: str) -> None:
        """Write the ticket's details, put the caller through, and tell the policy how it went.

        Answered (or handed to the carrier): the call is over for the agent.
        Busy, no answer or failed: the caller is back with the agent, who
        says so; the transfer hooks have queued a high-priority callback.
        """
        self._transferring = True
        self._transfer_to = to
        self.transfer_status = "dialing"
        self.deps.turn_detector.end_turn()
        _, captured = self._outcome()
        await self._transfer_record(to, "dialing", captured)
        status: TransferStatus = "failed"
        if self._transferer is not None:
            try:
                status = await self._transferer.transfer(to)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("transfer_failed")
        self.log.info("transfer_ended", status=status)
        self.transfer_status = status
        if status != "handed_off":
            await self._transfer_record(to, status, None)
        policy = self.deps.policy
        parts = policy.on_transfer(status) if isinstance(policy, TransferringPolicy) else None
        if status in TRANSFER_FAILURES:
            self._transferring = False
            self._ending = False
            self._last_activity = time.monotonic()
            if parts is not None:
                self._reply_soon(parts)
            return
        if parts is not None:
            await self._reply_discard(parts)  # the policy notes the caller was put through
        self._ending = True
        self._hangup_soon()

    async def _transfer_record(self, to: str, status: TransferStatus, captured: dict[str, Any] | None) -> None:
        try:
            async with asyncio.timeout(TRANSFER_RECORD_TIMEOUT_S):
                await self.records.transfer(to=to, status=status, captured=captured)
        except Exception:
            # The transfer goes ahead: the call's finish makes the ticket if this write did not.
            self.log.exception("transfer_record_failed", status=status)

    async def _transfer_settle(self) -> None:
        """At the end of the call, give a transfer still ringing a moment; one given up counts as failed."""
        task = self._transfer_task
        if task is None or task.done():
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), TRANSFER_SETTLE_S)
        if task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if self.transfer_status == "dialing":
            # The caller hung up while it rang: someone should call them back.
            self.transfer_status = "failed"
            await self._transfer_record(self._transfer_to, "failed", None)
            policy = self.deps.policy
            if isinstance(policy, TransferringPolicy):
                await self._reply_discard(policy.on_transfer("failed"))

    # -- silence and limits ------------------------------------------------------
    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now - self._started_wall > MAX_CALL_S:
                self.log.warning("call_max_duration")
                self._hangup_soon()
                return
            quiet = (
                not self.output.busy
                and not self.deps.turn_detector.state.started
                and (self._turn_task is None or self._turn_task.done())
                and (self._speak_task is None or self._speak_task.done())
                and (self._reply_task is None or self._reply_task.done())
                and not self._ending
            )
            if quiet and now - self._last_activity >= SILENCE_TIMEOUT_S:
                self._silence_prompts += 1
                self._last_activity = now
                self._reply_soon(self.deps.policy.on_silence())

    # -- plumbing ------------------------------------------------------------
    def _hangup_soon(self) -> None:
        # Not one of the session's tasks: finishing cancels those, and the
        # hang-up must live on to close the transport once the call is stored.
        # The reference keeps the task from being garbage-collected mid-flight.
        self._hangup_task = asyncio.get_running_loop().create_task(self._hangup(), name="hangup")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("call_task_failed", task=task.get_name(), exc_info=task.exception())


class _RecordingSink:
    """Tees outbound frames into the call recording as they are sent."""

    def __init__(self, sink: AudioSink, session: CallSession) -> None:
        self._sink = sink
        self._session = session

    async def send_frame(self, frame: Pcm16) -> None:
        self._session.recorder.agent(frame, self._session.call_seconds())
        await self._sink.send_frame(frame)

    async def send_mark(self, name: str) -> None:
        await self._sink.send_mark(name)

    async def clear(self) -> None:
        await self._sink.clear()


def speech_chunks(text: str, *, opening: bool = False) -> list[str]:
    """Split a reply into the pieces synthesized one after another.

    The ``opening`` sentence of a reply is what the caller waits for: when
    it is long, its first clause is synthesized on its own, so the first
    audio is ready in the time of a few words.
    """
    chunks: list[str] = []
    sentences = _SENTENCE_END.split(text.strip())
    if opening and sentences and len(sentences[0]) > OPENING_CHUNK_CHARS:
        cut = next((m for m in _CLAUSE_END.finditer(sentences[0]) if m.start() >= MIN_CLAUSE_CHARS), None)
        if cut is not None:
            sentences[0:1] = [sentences[0][: cut.start()], sentences[0][cut.end() :]]
    for sentence in sentences:
        if len(sentence) <= LONG_SENTENCE_CHARS:
            chunks.append(sentence)
            continue
        current = ""
        for part in _CLAUSE_END.split(sentence):
            current = f"{current} {part}".strip()
            if len(current) >= 20:
                chunks.append(current)
                current = ""
        if current:
            if chunks:
                chunks[-1] = f"{chunks[-1]} {current}"
            else:
                chunks.append(current)
    return [c for c in chunks if c]


def _heard_text(segment: Segment, fraction: float) -> str:
    if fraction >= 1.0:
        return segment.text
    words = segment.text.split()
    return " ".join(words[: round(len(words) * fraction)])
