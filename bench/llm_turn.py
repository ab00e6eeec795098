"""From the model's first complete sentence to its first audio frame, with the LLM receptionist.

A call session runs the ``openai`` dialogue policy (the real SDK) against
the OpenAI-compatible emulator on loopback, which streams a scripted answer
at a set token rate after a set time to first token. Each caller turn is a
keypad entry (no speech recognition in the way); the next entry cuts the
reply short once it has played for a while (``--gap``). Per turn:

- model -> policy: the emulator sent the token that completes the first
  sentence -> the policy yields that sentence (SDK, parsing, checks);
- policy -> frame: the sentence yielded -> its first audio frame sent
  (synthesis of its first chunk, resampling, pacing);
- total: what the product adds over the model's own time. Target p95 <= 20 ms.

Printed twice: with an instant synthesizer (a tone; isolates the
pipeline's own cost) and with the offline voice (piper, or espeak-ng).

    python bench/llm_turn.py [--turns 40] [--rate 40] [--ttft 0.2] [--gap 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - settings first: the pipeline reads them

django.setup()

from _pipeline import InstantTone, Records, Sink, no_hangup  # noqa: E402

from calls.dialogue.faq import FaqEntry  # noqa: E402
from calls.dialogue.llm import LlmReceptionistPolicy  # noqa: E402
from calls.dialogue.summary import summary  # noqa: E402
from calls.pipeline.protocols import (  # noqa: E402
    AgentSettings,
    CallContext,
    CallOutcome,
    ReplyPart,
    Say,
    TextToSpeech,
    Transcript,
)
from calls.pipeline.session import CallSession, SessionDeps  # noqa: E402
from calls.pipeline.turns import TurnDetector  # noqa: E402
from calls.providers.emulators.openai_chat import ModelTurn, OpenAiChatEmulator  # noqa: E402
from calls.providers.minilm import MiniLMEmbedder  # noqa: E402
from calls.providers.registry import TTS_PROVIDERS, vad_for  # noqa: E402

NAMES = ("Maria", "James", "Aisha", "Robert", "Sofia", "Daniel", "Grace", "Oliver", "Chloe", "Samuel")


class Timed:
    """The policy, with the time each reply's first sentence was handed to the session."""

    def __init__(self, inner: LlmReceptionistPolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.speaks_filler = inner.speaks_filler
        self.first_say: list[float] = []

    async def _timed(self, parts: AsyncIterator[ReplyPart]) -> AsyncIterator[ReplyPart]:
        first = True
        async for part in parts:
            if first and isinstance(part, Say):
                self.first_say.append(time.monotonic())
                first = False
            yield part

    def greet(self) -> AsyncIterator[ReplyPart]:
        return self.inner.greet()

    def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        return self._timed(self.inner.respond(transcript))

    def on_silence(self) -> AsyncIterator[ReplyPart]:
        return self.inner.on_silence()

    def on_interrupted(self, *, said: str, heard: str) -> None:
        self.inner.on_interrupted(said=said, heard=heard)

    def outcome(self) -> CallOutcome:
        return self.inner.outcome()


def _script(turns: list[int]) -> Any:
    def model(request: dict[str, Any]) -> ModelTurn:
        index = len(turns)
        turns.append(index)
        name = NAMES[index % len(NAMES)]
        return ModelTurn(
            text=f"Thanks, {name}, I understand. Could you tell me a little more about it? Take your time."
        )

    return model


async def _run(
    tts: TextToSpeech, turns: int, rate: float, ttft: float, gap: float, embedder: MiniLMEmbedder
) -> dict[str, list[float]]:
    served: list[int] = []
    emulator = OpenAiChatEmulator(_script(served), api_key="sk-bench", tokens_per_s=rate, ttft_s=ttft).start()
    settings = AgentSettings(
        business_name="Acme Plumbing",
        faqs=[FaqEntry(id="hours", question="What are your opening hours?", answer="We are open 8 to 6.")],
    )
    policy = Timed(
        LlmReceptionistPolicy(
            CallContext(settings=settings, caller_id="+15557654321"),
            model="gpt-4o-mini",
            api_key="sk-bench",
            base_url=emulator.base_url,
            embedder=embedder,
        )
    )
    sink = Sink()
    deps = SessionDeps(
        stt=None,  # type: ignore[arg-type] # keypad turns only: nothing is recognized
        tts=tts,
        turn_detector=TurnDetector(vad_for(8000)),
        policy=policy,
        summarize=summary,
    )
    session = CallSession(deps=deps, sink=sink, records=Records(), hangup=no_hangup, reports_playback=False)
    session.start()
    await asyncio.sleep(1.5)  # the greeting starts
    model_to_policy: list[float] = []
    policy_to_frame: list[float] = []
    try:
        for turn in range(turns):
            frames_before = len(sink.frames)
            says_before = len(policy.first_say)
            for key in f"{turn % 10}#":
                session.on_dtmf(key)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.005)
                if len(policy.first_say) > says_before and any(
                    at > policy.first_say[-1] for at in sink.frames[frames_before:]
                ):
                    break
            else:
                raise RuntimeError(f"turn {turn}: no audio")
            said_at = policy.first_say[-1]
            frame_at = next(at for at in sink.frames[frames_before:] if at > said_at)
            sent = emulator.exchanges[-1].sent_at
            sentence_done = next(at for at, token in sent if token.rstrip().endswith((".", "?", "!")))
            model_to_policy.append((said_at - sentence_done) * 1000)
            policy_to_frame.append((frame_at - said_at) * 1000)
            # Some of the reply plays and its synthesis ends; the next entry cuts the playback short.
            await asyncio.sleep(gap)
        await session.finish("bench")
    finally:
        emulator.stop()
    total = [a + b for a, b in zip(model_to_policy, policy_to_frame, strict=True)]
    return {"model -> policy": model_to_policy, "policy -> frame": policy_to_frame, "total": total}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--rate", type=float, default=40.0, help="model tokens per second")
    parser.add_argument("--ttft", type=float, default=0.2, help="model time to first token, seconds")
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of each reply played before the next turn")
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    voices: list[tuple[str, TextToSpeech]] = [
        ("instant tone", InstantTone()),
        ("offline voice", TTS_PROVIDERS.build("offline")),
    ]
    print(f"LLM turn: {args.turns} turns, model at {args.rate:g} tokens/s, first token after {args.ttft:g} s")
    for label, tts in voices:
        results = asyncio.run(_run(tts, args.turns, args.rate, args.ttft, args.gap, embedder))
        print(f"-- {label} ({tts.name})")
        for stage, values in results.items():
            print(
                f"   {stage:16s} p50 {statistics.median(values):7.1f} ms   p95 {_p(values, 0.95):7.1f} ms"
                f"   max {max(values):7.1f} ms"
            )
    print("target: total p95 <= 20 ms over the model's own time (instant tone isolates the product's own cost)")


if __name__ == "__main__":
    main()
