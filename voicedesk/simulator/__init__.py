"""The simulated caller: plays scenario phone calls against the product, as a carrier would.

Modules:

* ``scenario``: load and validate scenario YAML (format v1) into dataclasses;
* ``carrier``: the Twilio side of a call (signed webhook, Media Stream, playback buffer);
* ``caller``: the caller's rules ("brain"), voice (TTS) and ear (STT);
* ``expect``: compare what the product stored with the scenario's ``expect``.

This module ties them together: ``simulate`` provisions each scenario's
tenant, runs the calls concurrently in real time and checks the results.
The private server stack the acceptance tests and the benchmarks start
(daphne and a Dramatiq worker) is test support: ``tests.live_stack``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, FaqEntry
from calls.services import agent_config_update, faq_entries_replace
from tenants.models import PhoneNumber, Tenant, User
from tenants.services import phone_number_normalize, phone_number_register, tenant_create
from voicedesk.simulator.caller import (
    CallerBrain,
    ConversationResult,
    SimulatedCaller,
    SpeechModels,
    shared_speech_models,
)
from voicedesk.simulator.expect import TICKET_WAIT_S, StoredCall, check_expectations, fetch_stored_call
from voicedesk.simulator.scenario import Scenario, TenantSpec

__all__ = [
    "CallReport",
    "percentile",
    "provision_tenant",
    "simulate",
    "summarize",
]


@dataclass(slots=True)
class CallReport:
    """One simulated call: the conversation, what the product stored, and the verdict."""

    scenario: Scenario
    repeat: int  # 1-based repetition of the scenario
    conversation: ConversationResult
    stored: StoredCall | None = None
    mismatches: list[str] = field(default_factory=list)
    recording_path: str | None = None

    @property
    def passed(self) -> bool:
        """The call completed and everything ``expect`` asks for was stored."""
        return self.conversation.error is None and not self.mismatches

    @property
    def label(self) -> str:
        """``scenario-id#repeat``, for output."""
        return f"{self.scenario.id}#{self.repeat}"

    def format(self) -> str:
        """The conversation and verdict as printable text."""
        conv = self.conversation
        head = (
            f"=== {self.label}  {'PASS' if self.passed else 'FAIL'}  call {conv.call_sid}  "
            f"{conv.duration_s:.1f} s  ended: {conv.end_reason or '?'}"
        )
        lines = [head]
        if self.scenario.description:
            lines.append(f"  {self.scenario.description}")
        lines.append(conv.format())
        if conv.latencies_ms:
            shown = ", ".join(f"{ms:.0f}" for ms in conv.latencies_ms)
            lines.append(f"  response latency per turn (ms): {shown}")
        if self.stored is not None:
            sent, late = self.stored.frames_sent, self.stored.frames_late
            lines.append(f"  server: call {self.stored.call_id} {self.stored.status}, frames sent {sent}, late {late}")
            if self.stored.ticket is not None:
                t = self.stored.ticket
                lines.append(
                    f"  ticket {t.number}: name={t.caller_name!r} number={t.callback_number!r} "
                    f"category={t.category!r} priority={t.priority!r} status={t.status!r} "
                    f"faq={list(t.faq_answered)!r} unanswered={t.unanswered_questions} "
                    f"callback={t.callback_requested}"
                )
                lines.append(f"  summary: {t.summary!r}")
        if conv.error:
            lines.append(f"  ERROR: {conv.error}")
        for mismatch in self.mismatches:
            lines.append(f"  MISMATCH {mismatch}")
        if not self.passed and self.stored is not None and self.stored.utterances:
            lines.append("  what the product heard and said:")
            lines.extend(f"    {speaker:>6}: {text}" for speaker, text in self.stored.utterances)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Per-call results for ``--json-report`` and the benchmarks."""
        conv = self.conversation
        stored = self.stored
        return {
            "scenario": self.scenario.id,
            "repeat": self.repeat,
            "call_sid": conv.call_sid,
            "passed": self.passed,
            "error": conv.error,
            "mismatches": list(self.mismatches),
            "duration_s": conv.duration_s,
            "end_reason": conv.end_reason,
            "latencies_ms": list(conv.latencies_ms),
            "stream": conv.stream,
            "server": None
            if stored is None
            else {
                "call_id": stored.call_id,
                "status": stored.status,
                "end_reason": stored.end_reason,
                "frames_sent": stored.frames_sent,
                "frames_late": stored.frames_late,
                "first_frame_ms": list(stored.first_frame_ms),
                "ticket": stored.ticket is not None,
            },
            "transcript": [
                {"at_s": e.at_s, "speaker": e.speaker, "text": e.text, "intent": e.intent, "latency_ms": e.latency_ms}
                for e in sorted(conv.transcript, key=lambda e: e.at_s)
            ],
            "recording": self.recording_path,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(reports: Sequence[CallReport]) -> dict[str, Any]:
    """Totals over a run: pass count, latency percentiles and server frame timing."""
    latencies = [ms for r in reports for ms in r.conversation.latencies_ms]
    sent = sum(r.stored.frames_sent for r in reports if r.stored is not None)
    late = sum(r.stored.frames_late for r in reports if r.stored is not None)
    return {
        "calls": len(reports),
        "passed": sum(r.passed for r in reports),
        "failed": [r.label for r in reports if not r.passed],
        "latency_ms": {
            "turns": len(latencies),
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "max": max(latencies) if latencies else None,
        },
        "frames_sent": sent,
        "frames_late": late,
        "frames_on_time_ratio": (sent - late) / sent if sent else None,
    }


# -- provisioning -----------------------------------------------------------------------


def provision_tenant(spec: TenantSpec) -> str:
    """Create or update the scenario's tenant; return "created", "updated" or "unchanged".

    Idempotent: settings and FAQ entries are only written when they differ, so
    the product's per-tenant caches survive repeated runs.
    """
    outcome = "unchanged"
    tenant = Tenant.objects.filter(schema_name=spec.slug.replace("-", "_")).first()
    if tenant is None:
        email = f"owner@{spec.slug}.localhost"
        owner = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=None)
        tenant = tenant_create(name=spec.name, slug=spec.slug, owner=owner)
        outcome = "created"
    elif tenant.name != spec.name:
        Tenant.objects.filter(pk=tenant.pk).update(name=spec.name)
        outcome = "updated"

    with tenant_context(tenant):
        config = AgentConfig.objects.get()
        wanted: dict[str, Any] = {"business_name": spec.name, "greeting": spec.greeting or ""}
        if spec.categories is not None:
            wanted["categories"] = list(spec.categories)
        if spec.urgent_keywords is not None:
            wanted["urgent_keywords"] = list(spec.urgent_keywords)
        if spec.collect is not None:
            wanted["collect"] = list(spec.collect)
        changes = {name: value for name, value in wanted.items() if getattr(config, name) != value}
        if changes:
            agent_config_update(config=config, **changes)
            outcome = "updated" if outcome == "unchanged" else outcome
        entries = [{"q": faq.q, "a": faq.a} for faq in spec.faqs]
        current = [
            {"q": q, "a": a}
            for q, a in FaqEntry.objects.filter(is_active=True).order_by("pk").values_list("question", "answer")
        ]
        if current != entries or FaqEntry.objects.filter(is_active=False).exists():
            faq_entries_replace(entries=entries)
            outcome = "updated" if outcome == "unchanged" else outcome

    existing = (
        PhoneNumber.objects.filter(e164=phone_number_normalize(spec.phone_number)).select_related("tenant").first()
    )
    if existing is not None and existing.tenant_id != tenant.pk:
        raise ValidationError(
            f"{spec.phone_number} is registered to tenant {existing.tenant.schema_name!r}, "
            f"but the scenario dials it for {spec.slug!r}"
        )
    if existing is None:
        phone_number_register(tenant=tenant, number=spec.phone_number)
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def _waves(jobs: list[tuple[Scenario, int]]) -> list[list[tuple[Scenario, int]]]:
    """Split jobs so that within a wave every tenant has one configuration.

    Two scenarios that configure the same tenant differently cannot run at
    the same time; they go to different waves, provisioned in turn.
    """
    waves: list[tuple[dict[str, TenantSpec], list[tuple[Scenario, int]]]] = []
    for job in jobs:
        spec = job[0].tenant
        for specs, members in waves:
            if specs.get(spec.slug, spec) == spec:
                specs[spec.slug] = spec
                members.append(job)
                break
        else:
            waves.append(({spec.slug: spec}, [job]))
    return [members for _, members in waves]


# -- running ----------------------------------------------------------------------------


async def simulate(
    scenarios: Sequence[Scenario],
    *,
    base_url: str,
    auth_token: str,
    concurrency: int = 1,
    repeat: int = 1,
    record_dir: Path | None = None,
    ticket_wait_s: float = TICKET_WAIT_S,
    start_gap_s: float = 1.0,
    models: SpeechModels | None = None,
    on_provisioned: Callable[[TenantSpec, str], None] | None = None,
    on_call_start: Callable[[Scenario, int], None] | None = None,
    on_report: Callable[[CallReport], None] | None = None,
) -> list[CallReport]:
    """Run every scenario ``repeat`` times, ``concurrency`` calls at a time, and check each.

    Calls start at least ``start_gap_s`` apart: real calls do not all ring in
    the same millisecond, and a synchronized start would measure a thundering
    herd of greetings rather than N calls in progress. A scenario may be
    listed more than once. Returns the reports in job order. Call failures are reported, never raised; provisioning
    errors (a bad tenant) are raised.
    """
    if concurrency < 1 or repeat < 1:
        raise ValueError("concurrency and repeat must be at least 1")
    models = models or shared_speech_models()
    await models.warm_up()
    # Synthesize what the callers will probably say now, while the machine is
    # idle, so a caller answers as fast as a person would, even under load.
    await models.prepare(sorted({line.spoken for s in scenarios for line in CallerBrain(s.caller).predictable_lines()}))
    next_start = 0.0
    start_lock = asyncio.Lock()
    if record_dir is not None:
        record_dir.mkdir(parents=True, exist_ok=True)
    # A scenario listed twice counts as two repetitions of it.
    jobs: list[tuple[Scenario, int]] = []
    seen: dict[str, int] = {}
    for _ in range(repeat):
        for scenario in scenarios:
            seen[scenario.id] = seen.get(scenario.id, 0) + 1
            jobs.append((scenario, seen[scenario.id]))
    reports: dict[tuple[str, int], CallReport] = {}
    provision = sync_to_async(provision_tenant, thread_sensitive=True)
    for wave in _waves(jobs):
        provisioned: set[str] = set()
        for scenario, _ in wave:
            if scenario.tenant.slug not in provisioned:
                provisioned.add(scenario.tenant.slug)
                outcome = await provision(scenario.tenant)
                if on_provisioned is not None:
                    on_provisioned(scenario.tenant, outcome)
        slots = asyncio.Semaphore(concurrency)

        async def one(scenario: Scenario, k: int, slots: asyncio.Semaphore = slots) -> None:
            nonlocal next_start
            async with slots:
                async with start_lock:
                    wait = next_start - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    next_start = time.monotonic() + start_gap_s
                if on_call_start is not None:
                    on_call_start(scenario, k)
                conversation = await SimulatedCaller(
                    scenario.caller,
                    scenario_id=scenario.id,
                    to_number=scenario.tenant.phone_number,
                    base_url=base_url,
                    auth_token=auth_token,
                    models=models,
                    record=record_dir is not None,
                ).run()
            report = CallReport(scenario=scenario, repeat=k, conversation=conversation)
            if conversation.error is None:
                report.stored = await fetch_stored_call(
                    scenario.tenant.slug, conversation.call_sid, timeout_s=ticket_wait_s
                )
                report.mismatches = check_expectations(scenario.expect, report.stored, call_sid=conversation.call_sid)
            if record_dir is not None and conversation.recording is not None:
                path = record_dir / f"{scenario.id}-{k}-{conversation.call_sid}.wav"
                await asyncio.to_thread(path.write_bytes, conversation.recording)
                report.recording_path = str(path)
                conversation.recording = None  # written; do not keep megabytes per call in memory
            reports[(scenario.id, k)] = report
            if on_report is not None:
                on_report(report)

        await asyncio.gather(*(one(scenario, k) for scenario, k in wave))
    return [reports[(scenario.id, k)] for scenario, k in jobs]
