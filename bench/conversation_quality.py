"""Conversation quality: how many real-time calls end with exactly the expected ticket.

Starts its own product (daphne on a free loopback port and a Dramatiq
worker) on a scratch database ``voicedesk_bench_quality``, plays a scenario
set as simulated callers, and prints the exact-ticket rate overall and per
check (name, number, category, priority, status, summary, FAQ answered,
unanswered questions, callback), then every call that missed and on which
checks, so a regression shows which part of the ticket slipped.

Sets: ``heldout`` (default) and ``tune`` are the halves of
scenarios/corpus (see its README: do not read held-out results while
tuning), ``all`` is the whole corpus, ``shared`` the ten public scenarios,
anything else a scenario file or directory. ``--set`` may be repeated.

The caller's voice (``--voice``, e.g. ``piper:speed=0.85``,
``espeak:en-gb``, ``espeak:voice=en-us+f3,speed=1.1``) and the line
(``--impair noise=18,gain=-10,loss=0.01,clip=0.9,seed=1``) can be changed,
to measure callers who do not sound like the product's own voice.

With ``--turns text`` or ``--turns speech`` no server starts: the caller
rules and the receptionist talk turn by turn (``voicedesk.simulator.turns``),
with the caller's words as written or through the caller's voice, the line
and the product's STT, in a fraction of real time. That measures the
dialogue while it is being changed; the real-time run is the measure of the
product. ``--show-misses`` prints the conversations that missed (refused on
the held-out half, whose calls are not read while tuning).

    python bench/conversation_quality.py [--set heldout] [--voice SPEC] [--impair SPEC]
        [--concurrency N] [--repeat K] [--json-report PATH] [--turns text|speech] [--show-misses]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from _django import ROOT
from voice_latency import bench_django, bench_stack


def _rate(passed: int, counted: int, rate: float | None) -> str:
    return f"{passed:>3}/{counted:<3} " + ("    n/a" if rate is None else f"{rate:7.1%}")


def format_summary(summary: dict[str, Any]) -> str:
    """The exact-ticket rates and the misses as printable lines."""
    lines = [
        f"exact tickets: {_rate(summary['exact'], summary['calls'], summary['exact_rate'])}",
        "per check (over the calls whose scenario checks it):",
    ]
    for check, counts in summary["checks"].items():
        lines.append(f"  {check:<22} {_rate(counts['passed'], counts['checked'], counts['rate'])}")
    if summary["missed"]:
        lines.append("missed:")
        for miss in summary["missed"]:
            detail = ", ".join(miss["checks"]) or "-"
            lines.append(f"  {miss['call']:<52} {detail}" + (f"  ({miss['problem']})" if miss["problem"] else ""))
    return "\n".join(lines)


def turn_by_turn(args: argparse.Namespace, scenarios: list[Any], voice: Any, line: Any) -> None:
    """Play ``scenarios`` turn by turn (``voicedesk.simulator.turns``) and print the rates."""
    from django.conf import settings

    from calls.pipeline.factory import shared_stt
    from voicedesk.simulator.caller import SpeechModels
    from voicedesk.simulator.expect import quality_summary
    from voicedesk.simulator.turns import Ear, SpeechEar, TextEar, converse

    ear: Ear = TextEar()
    if args.turns == "speech":
        stt = shared_stt(settings.VOICEDESK_STT)
        ear = SpeechEar(models=SpeechModels(tts=voice.build(), line=line), stt=stt)  # type: ignore[arg-type]
    print(
        f"{len(scenarios) * args.repeat} call(s), turn by turn ({args.turns}), voice {voice.describe()}, "
        f"line {line.describe()}...",
        flush=True,
    )

    async def run() -> list[Any]:
        done = []
        for _ in range(args.repeat):
            for scenario in scenarios:
                conversation = await converse(scenario, ear)
                verdict = conversation.verdict
                print(f"  {scenario.id:<52} {'exact' if verdict.exact else 'MISS ' + ','.join(verdict.failed)}")
                if args.show_misses and not verdict.exact:
                    print(conversation.format())
                    print(f"  captured: {conversation.captured}")
                done.append(conversation)
        return done

    conversations = asyncio.run(run())
    summary = quality_summary([c.verdict for c in conversations])
    print()
    print(format_summary(summary))
    if args.json_report:
        args.json_report.write_text(json.dumps({"sets": args.sets, "summary": summary}, indent=2), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", dest="sets", metavar="NAME|PATH", help="default: heldout")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--voice", default="offline", help="the caller's TTS engine and options (default: %(default)s)")
    parser.add_argument("--impair", default="", help="line impairments, e.g. noise=18,gain=-10,loss=0.01,clip=0.9")
    parser.add_argument("--ticket-wait", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--json-report", type=Path, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--turns", choices=("text", "speech"), help="turn by turn, without a server or real time")
    parser.add_argument("--show-misses", action="store_true", help="print the conversations that missed (--turns)")
    args = parser.parse_args()
    if args.concurrency < 1 or args.repeat < 1:
        parser.error("--concurrency and --repeat must be at least 1")
    sets: list[str] = args.sets or ["heldout"]
    if args.turns:
        # No database is used: the product's settings as they are.
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
    else:
        bench_django("quality")
    # Read before the stack starts, so a typo fails in a second, not after a migration.
    sys.path.insert(0, str(ROOT))
    from voicedesk.simulator.caller import VoiceSpec, VoiceSpecError
    from voicedesk.simulator.corpus import scenario_set
    from voicedesk.simulator.impair import ImpairmentError, LineImpairment
    from voicedesk.simulator.scenario import ScenarioError

    try:
        voice = VoiceSpec.parse(args.voice)
        line = LineImpairment.parse(args.impair)
        scenarios = [s for name in sets for s in scenario_set(name)]
    except (VoiceSpecError, ImpairmentError, ScenarioError) as exc:
        parser.error(str(exc))
    if args.show_misses and ("heldout" in sets or "all" in sets):
        parser.error("--show-misses reads the calls; the held-out half is measured, not read")
    if args.turns:
        turn_by_turn(args, scenarios, voice, line)
        return

    with bench_stack("quality") as stack:
        from django.conf import settings

        from voicedesk.simulator import simulate
        from voicedesk.simulator.caller import SpeechModels
        from voicedesk.simulator.expect import call_verdict, quality_summary

        try:
            tts = voice.build()
        except VoiceSpecError as exc:
            parser.error(str(exc))
        models = SpeechModels(tts=tts, line=line)
        print(
            f"{len(scenarios) * args.repeat} call(s) from {', '.join(sets)}, {args.concurrency} at a time, "
            f"voice {voice.describe()}, line {line.describe()}, in real time...",
            flush=True,
        )
        reports = asyncio.run(
            simulate(
                scenarios,
                base_url=stack.base_url,
                auth_token=settings.TWILIO_AUTH_TOKEN,
                concurrency=args.concurrency,
                repeat=args.repeat,
                ticket_wait_s=args.ticket_wait,
                models=models,
                on_report=lambda r: print(f"  {r.label:<52} {'exact' if r.passed else 'MISS'}", flush=True),
            )
        )
        verdicts = [
            call_verdict(
                r.label,
                r.scenario.expect,
                r.stored,
                error=r.conversation.error,
                call_sid=r.conversation.call_sid,
            )
            for r in reports
        ]
        summary = quality_summary(verdicts)
        print()
        print(format_summary(summary))
        document = {
            "sets": sets,
            "voice": voice.describe(),
            "line": line.describe(),
            "summary": summary,
            "calls": [r.to_json() for r in reports],
        }
        path: Path = args.json_report or stack.log_dir / "report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")
        print(f"per-call results: {path}")


if __name__ == "__main__":
    main()
