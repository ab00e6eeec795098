"""How many simultaneous calls one server process carries: raise N until audio or tickets suffer.

Starts its own product (daphne on a free loopback port and a Dramatiq
worker) on a scratch database ``voicedesk_bench_concurrency``. For each N
(2, 4, 8, 12 by default) it runs N simulated calls at once, drawn in turn
from the public scenarios, and passes the level when

* at least 99.9% of the agent's outbound frames were sent on time (the
  server counts, per call, frames sent after the carrier needed them), and
* every call produced its ticket.

It stops at the first failing level and prints the largest passing N, with
the server's CPU seconds and memory per call (read from /proc), response
latency and carrier-side playback gaps (the buffer running dry mid-speech,
which the server's late-frame count does not see). The simulated callers
run in this process on the same machine; their CPU is printed too, since
they compete with the server for it.

    python bench/concurrency.py [--levels 2,4,8,12,16,24] [SCENARIO_DIR_OR_FILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from voice_latency import SHARED, bench_stack

if TYPE_CHECKING:
    from tests.live_stack import ServerStack

ON_TIME_TARGET = 0.999
MIB = 1024 * 1024


class PeakSampler:
    """Samples the stack's resident memory every ``interval_s`` in a thread; keeps the peak."""

    def __init__(self, stack: ServerStack, interval_s: float = 0.5) -> None:
        self._stack = stack
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_rss_bytes = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            usage = self._stack.usage()
            self.peak_rss_bytes = max(self.peak_rss_bytes, sum(u.rss_bytes for u in usage.values()))
            self._stop.wait(self._interval_s)


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", type=Path, default=[SHARED])
    parser.add_argument(
        "--levels", default="2,4,8,12,16,24", help="Comma-separated numbers of simultaneous calls, tried in order."
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]

    with bench_stack("concurrency") as stack:
        from django.conf import settings

        from voicedesk.simulator import percentile, simulate
        from voicedesk.simulator.scenario import load_scenarios

        scenarios = load_scenarios(args.scenarios)
        # One unmeasured call loads every model and cache (STT, TTS, VAD,
        # embeddings, FAQ index), so per-call memory is not the models' size.
        print("warm-up call...", flush=True)
        asyncio.run(simulate(scenarios[:1], base_url=stack.base_url, auth_token=settings.TWILIO_AUTH_TOKEN))
        idle_rss = sum(u.rss_bytes for u in stack.usage().values())
        print(f"warm idle server: {idle_rss / MIB:.0f} MiB resident (daphne, piper worker, Dramatiq worker)")
        header = (
            f"{'N':>3} {'calls ok':>8} {'tickets':>7} {'frames on time':>15} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'gaps':>5} {'srv CPU s/call':>14} {'peak RSS MiB':>12} {'MiB/call':>8} {'sim CPU s/call':>14}  verdict"
        )
        print(header, flush=True)
        largest = 0
        results: list[dict[str, object]] = []
        for n in levels:
            jobs = [scenarios[i % len(scenarios)] for i in range(n)]
            before = stack.usage()
            sim_before = _self_cpu_s()
            with PeakSampler(stack) as sampler:
                reports = asyncio.run(
                    simulate(jobs, base_url=stack.base_url, auth_token=settings.TWILIO_AUTH_TOKEN, concurrency=n)
                )
            after = stack.usage()
            sim_cpu = _self_cpu_s() - sim_before
            server_cpu = sum(after[k].cpu_s - before[k].cpu_s for k in after)
            sent = sum(r.stored.frames_sent for r in reports if r.stored is not None)
            late = sum(r.stored.frames_late for r in reports if r.stored is not None)
            tickets = sum(1 for r in reports if r.stored is not None and r.stored.ticket is not None)
            completed = sum(1 for r in reports if r.conversation.error is None)
            on_time = (sent - late) / sent if sent else 0.0
            latencies = [ms for r in reports for ms in r.conversation.latencies_ms]
            # Carrier-side stutters: the playback buffer ran dry mid-speech.
            gaps = sum(int(r.conversation.stream.get("playback_gaps", 0) or 0) for r in reports)
            ok = on_time >= ON_TIME_TARGET and tickets == n and completed == n
            verdict = "pass" if ok else "FAIL"
            if not ok:
                reasons = []
                if on_time < ON_TIME_TARGET:
                    reasons.append(f"{late} of {sent} frames late")
                if tickets < n:
                    reasons.append(f"{n - tickets} call(s) without a ticket")
                if completed < n:
                    errors = {r.conversation.error for r in reports if r.conversation.error}
                    reasons.append(f"{n - completed} call(s) failed: {'; '.join(sorted(errors))[:200]}")
                verdict += ": " + ", ".join(reasons)
            expectations = sum(r.passed for r in reports)
            print(
                f"{n:>3} {completed:>8} {tickets:>7} {on_time:>14.3%} "
                f"{percentile(latencies, 50) or 0:>7.0f} {percentile(latencies, 95) or 0:>7.0f} {gaps:>5} "
                f"{server_cpu / n:>14.1f} {sampler.peak_rss_bytes / MIB:>12.0f} "
                f"{(sampler.peak_rss_bytes - idle_rss) / MIB / n:>8.1f} {sim_cpu / n:>14.1f}  "
                f"{verdict} ({expectations}/{n} met their scenario's expect)",
                flush=True,
            )
            results.append(
                {
                    "n": n,
                    "passed": ok,
                    "verdict": verdict,
                    "frames_sent": sent,
                    "frames_late": late,
                    "tickets": tickets,
                    "server_cpu_s": round(server_cpu, 2),
                    "simulator_cpu_s": round(sim_cpu, 2),
                    "peak_rss_bytes": sampler.peak_rss_bytes,
                    "calls": [r.to_json() for r in reports],
                }
            )
            report_path = stack.log_dir / "report.json"
            report_path.write_text(json.dumps({"idle_rss_bytes": idle_rss, "levels": results}, indent=2))
            if not ok:
                break
            largest = n
    print(
        f"\nlargest passing N: {largest} simultaneous calls "
        f"(>= {ON_TIME_TARGET:.1%} of agent frames on time and a ticket for every call)"
    )
    print(f"per-call results: {stack.log_dir / 'report.json'}")


if __name__ == "__main__":
    main()
