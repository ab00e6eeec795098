"""Response latency of real-time phone calls at the caller's ear, with the server's stages beside it.

Starts its own product (daphne on a free loopback port and a Dramatiq
worker) on a scratch database ``voicedesk_bench_voice`` and plays scenarios
as a simulated caller dialling in like a carrier. A turn's latency is taken
at the caller's phone: from the last audible frame of the caller's line to
the first audible frame of the agent's answer. The caller speaks with a
voice other than the agent's (``--voice``, default piper slowed down with no
sampling noise). Beside it, the server's own stages per turn: pause seen,
transcript, turn ended, decision, first audio, first frame sent.

Machines here differ by up to two times from one run to the next, so an
absolute figure does not carry over. ``--baseline REV`` checks out an
earlier commit beside this one, starts it as a second product on the same
database, and plays every scenario on both at once (one call each), so both
see the same machine; it prints both and their ratio.

By default it plays four scenarios that cover every kind of turn (an
opening story, name, spelling, number in words, email, time, a question,
read-back, goodbye) and finishes within 10 minutes with a baseline.

    python bench/voice_latency.py [--baseline REV] [--voice SPEC] [--repeat K] [SCENARIO_DIR_OR_FILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _django import ROOT, django_setup

if TYPE_CHECKING:
    from tests.live_stack import ServerStack
    from voicedesk.simulator import CallReport

SHARED = ROOT.parent / "shared" / "scenarios"
CORPUS = ROOT / "scenarios" / "corpus"
DEFAULT_SCENARIOS = [
    SHARED / "acme-no-heat-urgent.yaml",
    SHARED / "brightsmile-appointment.yaml",
    CORPUS / "acct-question-first-deadline-office.yaml",
    CORPUS / "auto-nail-in-tire-no-preferred-time.yaml",
]
DEFAULT_VOICE = "piper:speed=0.9,variation=0"
STAGES = ("pause_ms", "transcript_ms", "endpoint_ms", "decision_ms", "first_audio_ms", "first_frame_ms")
STAGE_LABELS = ("pause", "transcript", "turn end", "decision", "1st audio", "1st frame")


_set_up: list[str] = []


def bench_django(name: str) -> None:
    """Django on a fresh scratch database ``voicedesk_bench_<name>``, once per process.

    With Dramatiq, cache and channel-layer namespaces of its own, so a
    development worker on the same Redis never takes the bench's tickets.
    Call it early to read the bench's input with the product's code before
    the stack starts; ``bench_stack`` calls it otherwise.
    """
    if _set_up:
        if _set_up != [name]:
            raise RuntimeError(f"Django is already set up for the bench {_set_up[0]!r}")
        return
    suffix = secrets.token_hex(4)
    os.environ["DRAMATIQ_NAMESPACE"] = f"vd-bench-{name}-{suffix}"
    os.environ["CHANNELS_PREFIX"] = f"vd-bench-{name}-{suffix}"
    os.environ["CACHE_KEY_PREFIX"] = f"vd-bench-{name}-{suffix}"
    django_setup(f"voicedesk_bench_{name}")
    _set_up.append(name)


@contextmanager
def bench_stack(name: str) -> Iterator[ServerStack]:
    """Scratch database ``voicedesk_bench_<name>`` migrated, and a private server stack on it."""
    bench_django(name)
    from django.core.management import call_command

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    call_command("migrate_schemas", verbosity=0)
    call_command("platform_init", verbosity=0)
    with _stack(ROOT / "var" / "bench" / name) as stack:
        yield stack


@contextmanager
def _stack(
    log_dir: Path, *, root: Path = ROOT, suffix: str = "", extra_env: dict[str, str] | None = None
) -> Iterator[ServerStack]:
    """A server stack running the checkout at ``root``, with queue, channel and cache names of its own."""
    from tests.live_stack import ServerStack

    env = {**os.environ, "LOG_LEVEL": "INFO", "LOG_FORMAT": "console", "PYTHONPATH": str(root), **(extra_env or {})}
    for name in ("DRAMATIQ_NAMESPACE", "CHANNELS_PREFIX", "CACHE_KEY_PREFIX"):
        env[name] = os.environ[name] + suffix
    stack = ServerStack(env=env, log_dir=log_dir, root=root)
    print(f"starting {root.name} on port {stack.port} (logs in {stack.log_dir})", flush=True)
    with stack:
        yield stack


_PROVISION = (
    "import sys, django; django.setup()\n"
    "from voicedesk.simulator import provision_tenant\n"
    "from voicedesk.simulator.scenario import load_scenario\n"
    "for path in sys.argv[1:]: provision_tenant(load_scenario(path).tenant)\n"
)


def baseline_database(root: Path, scenario_paths: list[Path]) -> dict[str, str]:
    """A database of the earlier commit's own, migrated and provisioned by its own code.

    Its schema may differ from this checkout's (new columns it would not
    fill), so it never shares this checkout's database. Returns the
    environment that points a process at it.
    """
    import psycopg
    from psycopg import sql

    head, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    name = "voicedesk_bench_voice_baseline"
    with psycopg.connect(f"{head}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = {"DATABASE_URL": f"{head}/{name}", "DJANGO_SETTINGS_MODULE": "voicedesk.settings.dev"}
    full = {**os.environ, **env, "PYTHONPATH": str(root)}
    for command in (["manage.py", "migrate_schemas", "-v", "0"], ["manage.py", "platform_init", "-v", "0"]):
        subprocess.run([sys.executable, *command], cwd=root, env=full, check=True)
    paths = [str(path.resolve()) for path in scenario_paths]
    subprocess.run([sys.executable, "-c", _PROVISION, *paths], cwd=root, env=full, check=True)
    return env


@contextmanager
def baseline_checkout(revision: str) -> Iterator[Path]:
    """A detached worktree of ``revision`` beside this checkout, sharing its name lexicon; removed after."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{revision}^{{commit}}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    path = ROOT / "var" / "bench" / f"baseline-{commit}"
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True, capture_output=True)
    try:
        (path / "var").mkdir(exist_ok=True)
        lexicon = ROOT / "var" / "name-lexicon-v2.tsv.gz"
        if lexicon.exists():
            # Under the name the baseline's own code looks for (older commits: no version in it).
            for name in ("name-lexicon.tsv.gz", lexicon.name):
                (path / "var" / name).symlink_to(lexicon)
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.0f}"


def _arm_summary(label: str, reports: list[CallReport]) -> dict[str, Any]:
    """The ear's percentiles and each server stage's p50 over ``reports``, printed as one row."""
    from voicedesk.simulator import percentile

    ear = [ms for r in reports for ms in r.conversation.latencies_ms]
    turns = [turn for r in reports if r.stored is not None for turn in r.stored.stage_ms]
    stages = {s: percentile([v for t in turns if (v := t.get(s)) is not None], 50) for s in STAGES}
    passed = sum(r.passed for r in reports)
    print(
        f"{label:<12} {len(ear):>5} {passed:>3}/{len(reports):<3} "
        f"{_fmt(percentile(ear, 50))}  {_fmt(percentile(ear, 95))}  "
        + " ".join(f"{_fmt(stages[s]):>10}" for s in STAGES)
    )
    return {"ear_p50": percentile(ear, 50), "ear_p95": percentile(ear, 95), "turns": len(ear), "stages": stages}


def _print_calls(label: str, reports: list[CallReport]) -> None:
    from voicedesk.simulator import percentile

    for report in reports:
        latencies = report.conversation.latencies_ms
        result = (
            "pass" if report.passed else "FAIL: " + "; ".join(report.mismatches or [report.conversation.error or ""])
        )
        if label != "this" and report.conversation.error is None:
            result = "ticket not checked (the baseline keeps its own database)"
        print(
            f"  {label:<10} {report.label:<44} {len(latencies):>3} turns  p50 {_fmt(percentile(latencies, 50))}  "
            f"p95 {_fmt(percentile(latencies, 95))}  {result[:70]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", type=Path, default=DEFAULT_SCENARIOS)
    parser.add_argument("--baseline", help="an earlier commit to play beside this checkout, e.g. HEAD~3")
    parser.add_argument("--voice", default=DEFAULT_VOICE, help="the caller's voice (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    bench_django("voice")
    from django.conf import settings

    from voicedesk.simulator import simulate
    from voicedesk.simulator.caller import CallerBrain, SpeechModels, VoiceSpec
    from voicedesk.simulator.expect import TICKET_WAIT_S
    from voicedesk.simulator.scenario import load_scenarios

    scenarios = load_scenarios(args.scenarios) * args.repeat
    voice = VoiceSpec.parse(args.voice)
    models = SpeechModels(tts=voice.build())
    arms: dict[str, list[CallReport]] = {"this": []}
    with contextlib.ExitStack() as running:
        stacks = {"this": running.enter_context(bench_stack("voice"))}
        if args.baseline:
            root = running.enter_context(baseline_checkout(args.baseline))
            paths = [p for arg in args.scenarios for p in (sorted(arg.glob("*.yaml")) if arg.is_dir() else [arg])]
            database = baseline_database(root, paths)
            stacks["baseline"] = running.enter_context(
                _stack(ROOT / "var" / "bench" / "voice-baseline", root=root, suffix="-baseline", extra_env=database)
            )
            arms["baseline"] = []
        how = "on both checkouts at once" if args.baseline else "one at a time"
        print(f"{len(scenarios)} call(s) {how}, in real time, caller voice {voice.describe()}...", flush=True)

        async def play() -> None:
            # Both arms' callers share this event loop: their voice is synthesized up front, so
            # neither call waits on the other's preparation.
            await models.warm_up()
            await models.prepare(
                sorted({line.spoken for s in scenarios for line in CallerBrain(s.caller).predictable_lines()})
            )
            for scenario in scenarios:
                results = await asyncio.gather(
                    *(
                        simulate(
                            [scenario],
                            base_url=stack.base_url,
                            auth_token=settings.TWILIO_AUTH_TOKEN,
                            models=models,
                            # The baseline stores its calls in its own database: only the ear is measured there.
                            ticket_wait_s=TICKET_WAIT_S if label == "this" else 0.0,
                        )
                        for label, stack in stacks.items()
                    )
                )
                for label, reports in zip(stacks, results, strict=True):
                    arms[label] += reports
                    _print_calls(label, reports)

        asyncio.run(play())

    print(f"\n{'checkout':<12} {'turns':>5} {'pass':>7} {'ear p50':>7} {'ear p95':>7}   server p50 per stage (ms)")
    print(f"{'':<12} {'':>5} {'':>7} {'':>7} {'':>7}  " + " ".join(f"{label:>10}" for label in STAGE_LABELS))
    summaries = {label: _arm_summary(label, reports) for label, reports in arms.items()}
    print("(ear: the caller's last audible frame -> the agent's first audible frame, at the caller's phone)")
    if "baseline" in summaries:
        this, base = summaries["this"], summaries["baseline"]
        ratios = [
            f"{key.removeprefix('ear_')} {this[key] / base[key]:.2f}" for key in ("ear_p50", "ear_p95") if base[key]
        ]
        print(f"this / baseline ({args.baseline}) at the caller's ear: " + ", ".join(ratios))
    from voicedesk.simulator import summarize

    report_path = ROOT / "var" / "bench" / "voice" / "report.json"
    document = {
        label: {"summary": summarize(reports), "calls": [r.to_json() for r in reports]}
        for label, reports in arms.items()
    }
    report_path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    print(f"per-call results: {report_path}")


if __name__ == "__main__":
    main()
