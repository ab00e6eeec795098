"""Play scenario phone calls against a running VoiceDesk, as the carrier and the caller.

    manage.py simulate_call --scenario ../shared/scenarios/acme-leak-basic.yaml
    manage.py simulate_call --scenario ../shared/scenarios --concurrency 4 --json-report var/sim.json
    manage.py simulate_call --scenario scenarios/corpus --voice espeak:en-gb --impair noise=18,loss=0.01

Calls run in real time over the Twilio Media Streams protocol; each
conversation is printed when its call ends, then every scenario's
``expect`` is checked against what the product stored. Any mismatch makes
the command fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
from argparse import ArgumentParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from voicedesk.simulator import CallReport, simulate, summarize
from voicedesk.simulator.caller import SpeechModels, VoiceSpec, VoiceSpecError
from voicedesk.simulator.impair import ImpairmentError, LineImpairment
from voicedesk.simulator.scenario import Scenario, ScenarioError, TenantSpec, load_scenarios


class Command(BaseCommand):
    help = "Simulate scenario phone calls against a running server and check what the product stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--scenario",
            action="append",
            required=True,
            metavar="FILE",
            help="Scenario YAML file, or a directory of them; repeat for several.",
        )
        parser.add_argument("--concurrency", type=int, default=1, metavar="N", help="Calls in progress at once.")
        parser.add_argument("--repeat", type=int, default=1, metavar="K", help="Run each scenario K times.")
        parser.add_argument(
            "--base-url",
            default="http://localhost:8000",
            help="Where the server listens; its host must be the public site's (default: %(default)s).",
        )
        parser.add_argument("--json-report", type=Path, metavar="PATH", help="Write per-call results as JSON here.")
        parser.add_argument("--record-dir", type=Path, metavar="DIR", help="Write each call's stereo WAV here.")
        parser.add_argument(
            "--ticket-wait", type=float, default=30.0, metavar="SECONDS", help="How long to wait for each ticket."
        )
        parser.add_argument(
            "--voice",
            metavar="ENGINE[:OPTIONS]",
            help="The caller's voice: a TTS engine and its options, e.g. piper:speed=0.85, espeak:en-gb, "
            "espeak:voice=en-us+f3,pitch=60 (default: the product's offline voice).",
        )
        parser.add_argument(
            "--impair",
            default="",
            metavar="SPEC",
            help="Line impairments on the caller's audio: noise=SNR_DB, gain=DB, loss=FRACTION, clip=FRACTION, "
            "seed=N, e.g. noise=18,gain=-10,loss=0.01,clip=0.9.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            scenarios = load_scenarios(options["scenario"])
        except ScenarioError as exc:
            raise CommandError(str(exc)) from exc
        concurrency, repeat = options["concurrency"], options["repeat"]
        if concurrency < 1 or repeat < 1:
            raise CommandError("--concurrency and --repeat must be at least 1")
        base_url = str(options["base_url"]).rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise CommandError(f"--base-url {base_url!r} must be an http(s) URL with a host")
        token = settings.TWILIO_AUTH_TOKEN
        if not token:
            raise CommandError("TWILIO_AUTH_TOKEN is not set: the webhook signature cannot be computed")
        models = self._speech_models(options["voice"], options["impair"])

        # faster-whisper logs every decode at INFO; the conversations say it better.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        total = len(scenarios) * repeat
        self.stdout.write(f"Simulating {total} call(s) against {base_url}, {concurrency} at a time.")
        try:
            reports = asyncio.run(
                simulate(
                    scenarios,
                    base_url=base_url,
                    auth_token=token,
                    concurrency=concurrency,
                    repeat=repeat,
                    record_dir=options["record_dir"],
                    ticket_wait_s=options["ticket_wait"],
                    models=models,
                    on_provisioned=self._provisioned,
                    on_call_start=self._call_started,
                    on_report=self._report,
                )
            )
        except ValidationError as exc:
            raise CommandError(f"cannot set up a scenario's tenant: {' '.join(exc.messages)}") from exc
        summary = summarize(reports)
        if options["json_report"] is not None:
            path: Path = options["json_report"]
            path.parent.mkdir(parents=True, exist_ok=True)
            document = {"base_url": base_url, "summary": summary, "calls": [r.to_json() for r in reports]}
            path.write_text(json.dumps(document, indent=2), encoding="utf-8")
            self.stdout.write(f"JSON report: {path}")
        self._print_summary(summary)
        failed = [r for r in reports if not r.passed]
        if failed:
            details = "; ".join(f"{r.label}: {_first_problem(r)}" for r in failed)
            raise CommandError(f"{len(failed)} of {len(reports)} call(s) failed: {details}")

    def _speech_models(self, voice: str | None, impair: str) -> SpeechModels | None:
        """The caller's voice and line; None (the shared default) when neither is set."""
        try:
            line = LineImpairment.parse(impair)
            spec = VoiceSpec.parse(voice) if voice else None
            if spec is None and line.is_clean:
                return None
            tts = spec.build() if spec is not None else None
        except (VoiceSpecError, ImpairmentError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Caller voice: {spec.describe() if spec else 'offline'}; line: {line.describe()}.")
        return SpeechModels(tts=tts, line=line)

    # -- output ------------------------------------------------------------------
    def _provisioned(self, spec: TenantSpec, outcome: str) -> None:
        self.stdout.write(f"Tenant {spec.slug} ({spec.name}, {spec.phone_number}): {outcome}.")

    def _call_started(self, scenario: Scenario, repeat: int) -> None:
        self.stdout.write(f"... calling {scenario.tenant.phone_number} for {scenario.id}#{repeat}")

    def _report(self, report: CallReport) -> None:
        style = self.style.SUCCESS if report.passed else self.style.ERROR
        text = report.format()
        head, _, rest = text.partition("\n")
        self.stdout.write(style(head))
        if rest:
            self.stdout.write(rest)

    def _print_summary(self, summary: dict[str, Any]) -> None:
        latency = summary["latency_ms"]
        ratio = summary["frames_on_time_ratio"]
        self.stdout.write(
            f"\n{summary['passed']}/{summary['calls']} call(s) passed. "
            f"Response latency over {latency['turns']} turn(s): "
            f"p50 {_ms(latency['p50'])}, p95 {_ms(latency['p95'])}, max {_ms(latency['max'])}. "
            f"Agent frames on time: {'n/a' if ratio is None else f'{ratio:.4%}'} "
            f"({summary['frames_late']} late of {summary['frames_sent']})."
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _first_problem(report: CallReport) -> str:
    if report.conversation.error:
        return report.conversation.error
    problems = report.mismatches
    return problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
