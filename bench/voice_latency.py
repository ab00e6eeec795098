"""Response latency of real-time phone calls: p50 and p95 over every public scenario.

Starts its own product (daphne on a free loopback port and a Dramatiq
worker) on a scratch database ``voicedesk_bench_voice``, then plays every
scenario in ../shared/scenarios as a simulated caller, one call at a time,
so each call has the machine to itself. A turn's latency is measured at the
carrier: the caller's last speech frame sent -> the first audible agent
frame received. The server's own view (end of speech -> first frame sent)
is printed next to it.

    python bench/voice_latency.py [--concurrency N] [--repeat K] [SCENARIO_DIR_OR_FILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from _django import ROOT, django_setup

if TYPE_CHECKING:
    from tests.live_stack import ServerStack

DEFAULT_SCENARIOS = ROOT.parent / "shared" / "scenarios"


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

    from tests.live_stack import ServerStack

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    call_command("migrate_schemas", verbosity=0)
    call_command("platform_init", verbosity=0)
    env = {**os.environ, "LOG_LEVEL": "INFO", "LOG_FORMAT": "console"}
    stack = ServerStack(env=env, log_dir=ROOT / "var" / "bench" / name)
    print(f"starting daphne on port {stack.port} (logs in {stack.log_dir})", flush=True)
    with stack:
        yield stack


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", type=Path, default=[DEFAULT_SCENARIOS])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with bench_stack("voice") as stack:
        from django.conf import settings

        from voicedesk.simulator import percentile, simulate
        from voicedesk.simulator.scenario import load_scenarios

        scenarios = load_scenarios(args.scenarios)
        print(f"{len(scenarios) * args.repeat} call(s), {args.concurrency} at a time, in real time...", flush=True)
        reports = asyncio.run(
            simulate(
                scenarios,
                base_url=stack.base_url,
                auth_token=settings.TWILIO_AUTH_TOKEN,
                concurrency=args.concurrency,
                repeat=args.repeat,
                on_report=lambda r: print(f"  {r.label:<32} {'pass' if r.passed else 'FAIL'}  "
                                          f"{len(r.conversation.latencies_ms)} turns", flush=True),
            )
        )  # fmt: skip

    print(f"\n{'scenario':<32} {'turns':>5} {'p50 ms':>7} {'p95 ms':>7} {'server p50':>10}  result")
    caller_all: list[float] = []
    server_all: list[float] = []
    for report in reports:
        latencies = report.conversation.latencies_ms
        server = list(report.stored.first_frame_ms) if report.stored is not None else []
        caller_all += latencies
        server_all += server
        result = (
            "pass" if report.passed else "FAIL: " + "; ".join(report.mismatches or [report.conversation.error or ""])
        )
        print(
            f"{report.label:<32} {len(latencies):>5} {_fmt(percentile(latencies, 50))}  "
            f"{_fmt(percentile(latencies, 95))}  {_fmt(percentile(server, 50))}      {result[:90]}"
        )
    passed = sum(r.passed for r in reports)
    print(
        f"\nresponse latency over {len(caller_all)} turns in {len(reports)} calls ({passed} passed): "
        f"p50 {_fmt(percentile(caller_all, 50)).strip()} ms, p95 {_fmt(percentile(caller_all, 95)).strip()} ms "
        f"(caller's last speech frame sent -> first audible agent frame received)"
    )
    print(
        f"server-side first frame over {len(server_all)} turns: p50 {_fmt(percentile(server_all, 50)).strip()} ms, "
        f"p95 {_fmt(percentile(server_all, 95)).strip()} ms (end of speech -> first frame sent)"
    )
    from voicedesk.simulator import summarize

    report_path = stack.log_dir / "report.json"
    document = {"summary": summarize(reports), "calls": [r.to_json() for r in reports]}
    report_path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    print(f"per-call results: {report_path}")


if __name__ == "__main__":
    main()
