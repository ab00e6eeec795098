"""Writes for calls and the agent configuration. Callers set the tenant schema."""

from __future__ import annotations

import asyncio
import filecmp
import hashlib
import io
import os
import re
import secrets
import shutil
import uuid
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import tenant_context

from calls.dialogue.llm import OLLAMA_BASE_URL
from calls.dialogue.summary import summary_transfer_restate
from calls.hooks import CallAccess, CallFinished, CallTransferChanged, call_finished_notify, call_transfer_notify
from calls.models import (
    COLLECTABLE_FIELDS,
    AgentConfig,
    Call,
    CategoryExample,
    FaqEntry,
    ProviderKey,
    TransferStatus,
    TurnLatency,
    Utterance,
    default_sla_hours,
)
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.pipeline.warm import tts_cache_warm_job
from calls.providers.assemblyai_batch import AssemblyAIRecordingTranscriber
from calls.providers.registry import (
    KEY_REF_OPTION,
    KEYED_PROVIDERS,
    POLICY_PROVIDERS,
    STT_PROVIDERS,
    TENANT_KEY_OPTION,
    TTS_PROVIDERS,
    VOICE_LISTINGS,
    VOICE_OPTIONS,
    EngineSpec,
    ProviderConfigError,
    local_voices,
    provider_key,
    provider_key_check,
)
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice
from calls.recordings import recording_name, recording_path, recordings_dir_name, wav_create, wav_repair
from calls.selectors import call_active_count_before, call_test_active_count, provider_key_for
from tenants.business_hours import WEEKDAYS, BusinessHoursError, business_hours_validate, timezone_validate
from tenants.hooks import ErasurePart, TenantCreated, TenantErasure
from tenants.models import Tenant, User
from tenants.services import audit_event_record, phone_number_normalize
from voicedesk.core.errors import DomainError
from voicedesk.core.events import helpdesk_event_publish
from voicedesk.core.redaction import transcript_mask
from voicedesk.core.secrets import SecretsUnavailableError, SecretUnreadableError, secret_encrypt, secret_rotate
from voicedesk.core.tenancy import current_schema

logger = structlog.get_logger(__name__)


class CallStateError(Exception):
    """A state change that the call's current state does not allow."""


DEFAULT_FAQS: tuple[tuple[str, str], ...] = (
    ("What are your opening hours?", "We are open Monday to Friday from 9 am to 5 pm."),
    ("Where are you located?", "Please ask us for directions and we will send them to you."),
    ("How soon can someone call me back?", "We return calls within one business day, urgent ones sooner."),
)


def agent_config_create_default(
    *, business_name: str, faqs: list[dict[str, str]] | None = None, **overrides: Any
) -> AgentConfig:
    """Create the agent configuration a new tenant starts with, with example FAQs."""
    unknown = set(overrides.get("collect", [])) - set(COLLECTABLE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown fields to collect: {sorted(unknown)}")
    with transaction.atomic():
        config = AgentConfig.objects.create(business_name=business_name, **overrides)
        entries = faqs if faqs is not None else [{"q": q, "a": a} for q, a in DEFAULT_FAQS]
        FaqEntry.objects.bulk_create(FaqEntry(question=e["q"], answer=e["a"]) for e in entries)
    return config


def agent_config_provision(event: TenantCreated) -> None:
    """Tenant-created hook: the new tenant's agent starts from the defaults asked for at sign-up."""
    agent_config_create_default(business_name=event.tenant.name, **event.agent_defaults)


def call_start(*, tenant: Tenant, carrier: str, carrier_call_id: str, from_number: str, to_number: str) -> Call:
    """Record a ringing call in ``tenant``'s schema. A carrier retry returns the same row."""
    with tenant_context(tenant), transaction.atomic():
        call, created = Call.objects.get_or_create(
            carrier=carrier,
            carrier_call_id=carrier_call_id,
            defaults={"from_number": from_number[:32], "to_number": to_number[:32]},
        )
        if created:
            helpdesk_event_publish(kind="call.started", data={"call_id": call.pk, "from_number": call.from_number})
    if created:
        logger.info("call_started", tenant=tenant.schema_name, call_id=call.pk)
    return call


# How many test calls one business may have in progress at once: each holds speech engines
# on a voice process, and a dashboard left open in two tabs should not hold more.
TEST_CALLS_AT_ONCE = 2


class TestCallRefusedError(DomainError):
    """A test call the business may not start now."""

    __test__ = False  # not a pytest class, whatever its name


def call_test_start(*, tenant: Tenant, actor: User, now: datetime | None = None) -> Call:
    """Start a test call in ``tenant``'s schema: a member talking to the agent from the dashboard.

    The call is answered at once (the browser is already connected) and marked
    ``is_test``: it runs the same session and makes the same ticket as a phone
    call, but is not metered or billed and analytics leave it out by default.
    It has no caller ID. Raises ``TestCallRefusedError`` when the business
    already has ``TEST_CALLS_AT_ONCE`` test calls in progress. Audited as
    ``call.test_started`` with the member who placed it.
    """
    now = now or timezone.now()
    with tenant_context(tenant), transaction.atomic():
        # One business's test calls are counted one start at a time.
        AgentConfig.objects.select_for_update().get()
        if call_test_active_count(tenant=tenant, now=now) >= TEST_CALLS_AT_ONCE:
            raise TestCallRefusedError(f"At most {TEST_CALLS_AT_ONCE} test calls at once; end one first.")
        call = Call.objects.create(
            carrier=Call.Carrier.BROWSER,
            carrier_call_id=f"test-{uuid.uuid4().hex}",
            is_test=True,
            from_number="",
            to_number="",
            status=Call.Status.IN_PROGRESS,
            answered_at=now,
            stream_id=f"user-{actor.pk}",
        )
        audit_event_record(action="call.test_started", actor=actor, tenant=tenant, call_id=call.pk)
        helpdesk_event_publish(kind="call.started", data={"call_id": call.pk, "from_number": ""})
    logger.info("call_test_started", tenant=tenant.schema_name, call_id=call.pk, user_id=actor.pk)
    return call


# -- Admission: the receptionist, or a short message and a ticket -----------------------------

OVER_CAPACITY = "over_capacity"
# Every voice process the stream was offered to was running as many calls as it may.
NO_VOICE_CAPACITY = "no_voice_capacity"
TURNED_AWAY_PREFIX = "turned_away:"
# What the ticket of a call turned away says happened, by reason.
TURNED_AWAY_SUBJECTS = {
    OVER_CAPACITY: "Missed call: all lines were busy",
    NO_VOICE_CAPACITY: "Missed call: no line was free to answer",
}
# Reasons the caller hears "all our lines are busy" for.
BUSY_REASONS = frozenset({OVER_CAPACITY, NO_VOICE_CAPACITY})
TURNED_AWAY_SUBJECT_DEFAULT = "Missed call: the line was not taking calls"


@dataclass(frozen=True, slots=True)
class CallAdmission:
    """Whether a call gets the receptionist; if not, why (``over_capacity`` or the access provider's reason)."""

    admitted: bool
    reason: str = ""


def _turned_away_outcome(call: Call, reason: str) -> dict[str, Any]:
    """What the ticket of a call turned away holds: the caller's number, and a callback when there is one."""
    subject = TURNED_AWAY_SUBJECTS.get(reason, TURNED_AWAY_SUBJECT_DEFAULT)
    caller = call.from_number
    return {
        "fields": {"callback_number": caller} if caller else {},
        "reason": subject,
        "summary": f"{subject} ({reason}). The caller heard a short message"
        + (" that someone will call them back." if caller else " to call again later; no caller ID was sent."),
        "callback_requested": bool(caller),
        "priority": "normal",
        "turned_away": reason,
    }


def call_admit(*, tenant: Tenant, call_id: int, access: CallAccess, now: datetime | None = None) -> CallAdmission:
    """Decide, when a call starts, whether it gets the receptionist.

    It does unless ``access`` says the tenant is not taking calls, or the
    tenant already has ``access.max_concurrent_calls`` earlier calls ringing
    or in progress (``over_capacity``). A call turned away is finished at once
    through ``call_finish`` (end reason ``turned_away:<reason>``) with the
    caller's number, so its ticket and callback are made like any other's;
    it is never answered, so it is not metered. A carrier retry gets the
    same answer; a call already answered is admitted.
    """
    now = now or timezone.now()
    with tenant_context(tenant), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.end_reason.startswith(TURNED_AWAY_PREFIX):
            return CallAdmission(admitted=False, reason=call.end_reason.removeprefix(TURNED_AWAY_PREFIX))
        if call.status != Call.Status.RINGING:
            return CallAdmission(admitted=True)
        reason = ""
        if not access.full_service:
            reason = access.reason or "not_taking_calls"
        elif (
            access.max_concurrent_calls is not None
            and call_active_count_before(tenant=tenant, call=call, now=now) >= access.max_concurrent_calls
        ):
            reason = OVER_CAPACITY
        if not reason:
            return CallAdmission(admitted=True)
        _call_turn_away(call, reason, now=now)
    logger.info("call_turned_away", tenant=tenant.schema_name, call_id=call_id, reason=reason)
    return CallAdmission(admitted=False, reason=reason)


def _call_turn_away(call: Call, reason: str, *, now: datetime) -> None:
    """Finish a call that was never answered as turned away: its ticket holds the caller's number and a callback."""
    call_finish(
        call_id=call.pk,
        end_reason=f"{TURNED_AWAY_PREFIX}{reason}",
        outcome=_turned_away_outcome(call, reason),
        completed=False,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What a call does once the carrier's media stream has ended.

    ``dial``: the agent is transferring the caller; put them through to
    ``dial_to``. ``hangup``: the call was answered and is over (or ending).
    ``retry``: offer the stream again at ``retry_url``. ``turned_away``: the
    caller hears that the lines are busy (``reason``) and the call is finished
    with its ticket.
    """

    action: str
    retry_url: str = ""
    reason: str = ""
    dial_to: str = ""


def call_stream_ended(
    *, tenant: Tenant, call_id: int, retry_urls: Sequence[str] = (), now: datetime | None = None
) -> StreamEnd:
    """Decide what a call does after its media stream ended (the carrier asks when ``<Connect>`` ends).

    A call the agent is transferring (``TransferStatus.DIALING`` with a
    number) is put through to that number: the agent ended the stream for it.
    Any other call whose stream was answered hangs up. A call still ringing was never
    answered: every voice process it reached was at its capacity and refused
    the stream (or the stream could not connect). It is offered to the next of
    ``retry_urls`` (other voice processes, or the proxy again), one more each
    time; when none is left it is turned away (``no_voice_capacity``): the
    caller hears the lines are busy and the call gets a ticket and a callback
    like any call turned away, so no caller is dropped silently. A repeated
    request for a call already turned away gets the same answer.
    """
    now = now or timezone.now()
    with tenant_context(tenant), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.transfer_status == TransferStatus.DIALING and call.transfer_to:
            return StreamEnd(action="dial", dial_to=call.transfer_to)
        if call.end_reason.startswith(TURNED_AWAY_PREFIX):
            return StreamEnd(action="turned_away", reason=call.end_reason.removeprefix(TURNED_AWAY_PREFIX))
        if call.status != Call.Status.RINGING or call.ended_at is not None:
            return StreamEnd(action="hangup")
        if call.stream_retries < len(retry_urls):
            retry_url = retry_urls[call.stream_retries]
            call.stream_retries += 1
            call.save(update_fields=["stream_retries"])
            logger.info("call_stream_retried", call_id=call.pk, retries=call.stream_retries)
            return StreamEnd(action="retry", retry_url=retry_url)
        _call_turn_away(call, NO_VOICE_CAPACITY, now=now)
    logger.warning("call_turned_away", tenant=tenant.schema_name, call_id=call_id, reason=NO_VOICE_CAPACITY)
    return StreamEnd(action="turned_away", reason=NO_VOICE_CAPACITY)


def call_answer(*, call_id: int, stream_id: str, now: datetime | None = None) -> Call:
    """The media stream is up: the agent is on the line (at ``now``, default the current time)."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.status != Call.Status.RINGING:
            raise CallStateError(f"call {call_id} is {call.status}, not ringing")
        call.status = Call.Status.IN_PROGRESS
        call.stream_id = stream_id[:64]
        call.answered_at = call.heartbeat_at = now or timezone.now()
        call.save(update_fields=["status", "stream_id", "answered_at", "heartbeat_at"])
    return call


# -- Redaction of stored transcripts -------------------------------------------------------

# The free text of a call's outcome: what the caller said, in their words or
# summarised. The captured ``fields`` (the callback number and email the
# business asked for) are the point of the call and stay as given; FAQ
# questions, category and flags are the business's own words or codes.
OUTCOME_FREE_TEXT = ("summary", "reason", "unanswered_questions")


def transcript_redaction_enabled() -> bool:
    """Whether the current schema's business masks numbers and emails in its stored transcripts."""
    return AgentConfig.objects.filter(redact_transcripts=True).exists()


def outcome_redact(outcome: dict[str, Any]) -> dict[str, Any]:
    """``outcome`` with phone numbers and emails masked in its free text, its captured fields kept."""
    redacted = dict(outcome)
    for key in OUTCOME_FREE_TEXT:
        value = redacted.get(key)
        if isinstance(value, str):
            redacted[key] = transcript_mask(value)
        elif isinstance(value, list):
            redacted[key] = [transcript_mask(item) if isinstance(item, str) else item for item in value]
    return redacted


def call_heartbeat(*, call_id: int, captured: dict[str, Any] | None = None, now: datetime | None = None) -> bool:
    """The process running the call is alive (at ``now``); ``captured`` is what the caller has said so far.

    Returns False, changing nothing, for a call that has ended (the sweeper may
    have finished it while this process stalled). A business that redacts its
    transcripts gets ``captured`` stored with its free text masked.
    """
    fields: dict[str, Any] = {"heartbeat_at": now or timezone.now()}
    if captured is not None:
        fields["captured"] = outcome_redact(captured) if transcript_redaction_enabled() else captured
    return Call.objects.filter(pk=call_id, ended_at__isnull=True).update(**fields) == 1


def call_recording_start(*, call_id: int, sample_rate: int) -> Path:
    """Create the call's recording file (a WAV with no audio yet) and attach it to the call; return its path.

    The session appends to it as the call runs, so a call whose process dies
    keeps its audio up to the last append.
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        name = recording_name(
            schema_name=current_schema(),
            call_id=call.pk,
            started_year=call.started_at.year,
            started_month=call.started_at.month,
        )
        path = recording_path(name)
        wav_create(path, sample_rate=sample_rate)
        call.recording.name = name
        call.save(update_fields=["recording"])
    return path


def utterance_record(
    *,
    call_id: int,
    speaker: str,
    text: str,
    start_s: float,
    end_s: float,
    confidence: float | None = None,
    interrupted: bool = False,
) -> Utterance:
    """Save one final utterance at once, so a crash loses at most the one in flight.

    A business that redacts its transcripts gets the text stored with phone
    numbers and emails masked (``transcript_mask``), whoever said them.
    """
    return Utterance.objects.create(
        call_id=call_id,
        speaker=speaker,
        text=transcript_mask(text) if transcript_redaction_enabled() else text,
        start_s=round(start_s, 3),
        end_s=round(end_s, 3),
        confidence=confidence,
        interrupted=interrupted,
    )


def turn_latency_record(
    *,
    call_id: int,
    turn_index: int,
    transcript_ms: float,
    decision_ms: float,
    first_audio_ms: float,
    first_frame_ms: float,
    pause_ms: float | None = None,
    endpoint_ms: float | None = None,
) -> TurnLatency:
    """Store one caller turn's stage timings (ms after the caller stopped speaking)."""
    latency, _ = TurnLatency.objects.update_or_create(
        call_id=call_id,
        turn_index=turn_index,
        defaults={
            "pause_ms": None if pause_ms is None else round(pause_ms, 1),
            "endpoint_ms": None if endpoint_ms is None else round(endpoint_ms, 1),
            "transcript_ms": round(transcript_ms, 1),
            "decision_ms": round(decision_ms, 1),
            "first_audio_ms": round(first_audio_ms, 1),
            "first_frame_ms": round(first_frame_ms, 1),
        },
    )
    return latency


def call_finish(
    *,
    call_id: int,
    end_reason: str,
    outcome: dict[str, Any],
    completed: bool,
    status: str | None = None,
    now: datetime | None = None,
) -> Call:
    """End a call: store what was captured and close its recording, then make the ticket.

    Idempotent: a second finish (socket drop after ``stop``, or the sweeper
    after the process came back) changes nothing. ``now`` is when the call
    ended (default: the current time). The status is completed or abandoned
    by ``completed`` unless ``status`` says otherwise (``failed_over``). The
    recording file written during the call gets its final header. After
    commit the registered ``calls.hooks`` run (the ticket and the usage
    record are made by the apps that own them). A business that redacts its
    transcripts gets the outcome's free text masked (``outcome_redact``), so
    the ticket made from it carries no number or email but in its fields.
    """
    if transcript_redaction_enabled():
        outcome = outcome_redact(outcome)
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.ended_at is not None:
            return call
        call.status = status or (Call.Status.COMPLETED if completed else Call.Status.ABANDONED)
        call.end_reason = end_reason[:50]
        call.ended_at = now or timezone.now()
        call.captured = outcome
        if call.recording:
            try:
                wav_repair(recording_path(call.recording.name))
            except OSError:
                # A disk problem costs the recording's header, never the call record.
                logger.exception("call_recording_repair_failed", call_id=call.pk)
        call.save()
        event = CallFinished(schema_name=current_schema(), call_id=call.pk, status=call.status, completed=completed)
        transaction.on_commit(lambda: call_finished_notify(event))
        helpdesk_event_publish(kind="call.finished", data={"call_id": call.pk, "status": call.status})
    logger.info("call_finished", call_id=call.pk, status=call.status, end_reason=end_reason)
    return call


# -- Transfers to a person ---------------------------------------------------------------------


class CallTransferError(DomainError):
    """A transfer change the call's state does not allow."""


def call_transfer_update(
    *,
    call_id: int,
    status: str,
    to: str = "",
    captured: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Call:
    """Record a transfer of the caller to a person: begun (``dialing``) or how it ended.

    ``dialing`` stores the number and what was captured so far, so the ticket
    made by the transfer hooks holds the caller's request before anyone
    answers. An end (``answered``, ``busy``, ``no_answer``, ``failed``)
    closes the attempt; it may come after the call ended (Twilio reports
    its ``<Dial>`` to a webhook once the media stream is gone). A repeated
    report changes nothing. After commit the registered transfer hooks run
    (``tickets`` makes the ticket, and queues the callback of a failed
    transfer) and the dashboards hear ``call.transfer``.
    """
    if status not in TransferStatus.values or not status:
        raise CallTransferError(f"Unknown transfer status {status!r}.")
    now = now or timezone.now()
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if status == TransferStatus.DIALING:
            if call.transfer_status:
                return call  # one transfer per call; a retried begin changes nothing
            call.transfer_to = to[:32]
            call.transfer_started_at = now
            if captured is not None and call.ended_at is None:
                call.captured = captured
        else:
            if call.transfer_status != TransferStatus.DIALING:
                if call.transfer_status == status:
                    return call
                raise CallTransferError(f"call {call_id} has no transfer in progress ({call.transfer_status!r})")
            call.transfer_ended_at = now
            if isinstance(call.captured, dict) and "transfer" in call.captured:
                # Reported after the call ended (Twilio): what was captured, and the summary, say how it went too.
                restated = {**call.captured, "transfer": status}
                if isinstance(call.captured.get("summary"), str):
                    restated["summary"] = summary_transfer_restate(call.captured["summary"], status)
                call.captured = restated
        call.transfer_status = status
        call.save(
            update_fields=["transfer_to", "transfer_status", "transfer_started_at", "transfer_ended_at", "captured"]
        )
        event = CallTransferChanged(schema_name=current_schema(), call_id=call.pk, status=status)
        transaction.on_commit(lambda: call_transfer_notify(event))
        helpdesk_event_publish(kind="call.transfer", data={"call_id": call.pk, "status": status})
    logger.info("call_transfer", call_id=call.pk, status=status)
    return call


# -- Calls whose process died or whose stream never came ------------------------------------

FAILED_OVER = "voice_process_lost"
NEVER_CONNECTED = "never_connected"
FAILED_OVER_SUBJECT = "Call cut off by a system fault"
NEVER_CONNECTED_SUBJECT = "Missed call: the call never connected"


@dataclass(frozen=True, slots=True)
class CallSweep:
    """What one sweep of a tenant finished: calls cut off, and calls that never connected."""

    failed_over: list[int]
    never_connected: list[int]


def _failed_over_outcome(call: Call) -> dict[str, Any]:
    """The last captured state of a call cut off mid-way, turned into a ticket that asks for a callback."""
    outcome = dict(call.captured or {})
    fields = dict(outcome.get("fields") or {})
    if not fields.get("callback_number") and call.from_number:
        fields["callback_number"] = call.from_number
    lasted = int(((call.heartbeat_at or call.started_at) - (call.answered_at or call.started_at)).total_seconds())
    said = str(outcome.get("summary") or "")
    outcome.update(
        fields=fields,
        reason=outcome.get("reason") or FAILED_OVER_SUBJECT,
        summary=f"The call was cut off by a system fault after about {lasted} s; call the caller back."
        + (f" So far: {said}" if said else ""),
        callback_requested=bool(fields.get("callback_number")),
        priority=outcome.get("priority") or "normal",
        resolved=False,
        completed=False,
        failed_over=True,
    )
    return outcome


def _never_connected_outcome(call: Call) -> dict[str, Any]:
    caller = call.from_number
    return {
        "fields": {"callback_number": caller} if caller else {},
        "reason": NEVER_CONNECTED_SUBJECT,
        "summary": NEVER_CONNECTED_SUBJECT + (". Call the caller back." if caller else "; no caller ID was sent."),
        "callback_requested": bool(caller),
        "priority": "normal",
        "never_connected": True,
    }


def call_sweep_abandoned(*, now: datetime | None = None) -> CallSweep:
    """Finish the calls of the current schema that nobody is running any more.

    A call in progress whose heartbeat is ``CALL_STALE_AFTER_S`` old lost its
    voice process: it ends as ``failed_over`` at its last heartbeat, with what
    was captured at that heartbeat, its transcript and its recording so far,
    and a ticket asking for a callback. A call still ringing after
    ``CALL_RINGING_MAX_S`` never got its media stream: it ends abandoned
    (``never_connected``) with a missed-call ticket. Each is finished through
    ``call_finish`` under the call's lock after checking again, so a call
    whose heartbeat resumed, or that its process finished meanwhile, is left
    alone, and each gets exactly one ticket.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.CALL_STALE_AFTER_S)
    ringing_before = now - timedelta(seconds=settings.CALL_RINGING_MAX_S)
    unended = Call.objects.filter(ended_at__isnull=True)
    lost_ids = list(
        unended.filter(status=Call.Status.IN_PROGRESS)
        .filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, answered_at__lt=stale_before))
        .values_list("pk", flat=True)
    )
    ringing_ids = list(
        unended.filter(status=Call.Status.RINGING, started_at__lt=ringing_before).values_list("pk", flat=True)
    )
    failed_over: list[int] = []
    never_connected: list[int] = []
    for call_id in lost_ids:
        with transaction.atomic():
            call = Call.objects.select_for_update().get(pk=call_id)
            last_alive = call.heartbeat_at or call.answered_at
            if call.ended_at is not None or call.status != Call.Status.IN_PROGRESS or last_alive is None:
                continue
            if last_alive >= stale_before:
                continue
            call_finish(
                call_id=call.pk,
                end_reason=FAILED_OVER,
                outcome=_failed_over_outcome(call),
                completed=False,
                status=Call.Status.FAILED_OVER,
                now=last_alive,
            )
        failed_over.append(call_id)
    for call_id in ringing_ids:
        with transaction.atomic():
            call = Call.objects.select_for_update().get(pk=call_id)
            if call.ended_at is not None or call.status != Call.Status.RINGING:
                continue
            call_finish(
                call_id=call.pk,
                end_reason=NEVER_CONNECTED,
                outcome=_never_connected_outcome(call),
                completed=False,
                now=call.started_at + timedelta(seconds=settings.CALL_RINGING_MAX_S),
            )
        never_connected.append(call_id)
    if failed_over or never_connected:
        logger.warning("calls_swept", schema=current_schema(), failed_over=failed_over, never_connected=never_connected)
    return CallSweep(failed_over=failed_over, never_connected=never_connected)


# Limits that keep what the agent says short enough to speak and what the
# pages show readable; the FAQ question column holds 500 characters.
GREETING_MAX_LENGTH = 1000
PERSONA_MAX_LENGTH = 4000
TERM_MAX_LENGTH = 50
TERMS_MAX_COUNT = 50
FAQ_QUESTION_MAX_LENGTH = 500
CATEGORY_DESCRIPTION_MAX_LENGTH = 300
# Learned examples kept per category: the newest, so the desk's recent habits count.
CATEGORY_EXAMPLES_MAX = 50
FAQ_ANSWER_MAX_LENGTH = 2000
# About a year of 40-hour weeks; a longer resolution target is a typo.
SLA_HOURS_MAX = 2000
REQUIRED_COLLECT_FIELDS = ("name", "callback_number", "reason")
SLA_PRIORITIES: tuple[str, ...] = tuple(default_sla_hours())
AGENT_CONFIG_FIELDS = frozenset(
    {
        "business_name",
        "greeting",
        "persona",
        "stt_provider",
        "tts_provider",
        "collect",
        "categories",
        "category_descriptions",
        "urgent_keywords",
        "vocabulary",
        "timezone",
        "business_hours",
        "sla_hours",
        "dialogue_provider",
        "dialogue_options",
        "transfer_number",
        "redact_transcripts",
    }
)
# What each dialogue provider may be given (``calls.dialogue.llm``); keys come only through ``key_ref``.
DIALOGUE_OPTIONS: dict[str, frozenset[str]] = {
    "receptionist": frozenset(),
    "openai": frozenset({"model", "base_url", "key_ref", "first_token_s", "temperature"}),
    "ollama": frozenset({"model", "base_url", "first_token_s", "temperature"}),
}
DIALOGUE_MODEL_MAX_LENGTH = 200


# Settings whose change changes what the agent says or how it sounds: its phrases are warmed again.
TTS_WARM_FIELDS = frozenset({"business_name", "greeting", "tts_provider"})


def _tts_warm_after_commit() -> None:
    """Warm the business's voice (``calls.pipeline.warm``) once the change commits, when the shared cache is on."""
    if settings.TTS_CACHE_REDIS:
        transaction.on_commit(tts_cache_warm_job.send)


def _audit_tenant() -> Tenant | None:
    """The tenant whose schema is active, as a model row for the public audit table."""
    # Under ``schema_context`` django-tenants holds a stand-in, not a row.
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant):
        return tenant
    return Tenant.objects.filter(schema_name=current_schema()).first()


def agent_terms_normalize(values: Iterable[object], *, label: str, lower: bool = True) -> list[str]:
    """Trimmed, single-spaced, de-duplicated terms in the order given (case-insensitive duplicates).

    Raises ``ValidationError`` naming ``label`` when a term or the list is too long.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for raw in values:
        term = " ".join(str(raw).split())
        if lower:
            term = term.lower()
        if not term or term.casefold() in seen:
            continue
        if len(term) > TERM_MAX_LENGTH:
            raise ValidationError(f"{label}: each entry can be at most {TERM_MAX_LENGTH} characters long.")
        seen.add(term.casefold())
        terms.append(term)
    if len(terms) > TERMS_MAX_COUNT:
        raise ValidationError(f"{label}: at most {TERMS_MAX_COUNT} entries.")
    return terms


def _sla_hours_clean(value: object) -> dict[str, float | int]:
    if not isinstance(value, dict) or set(value) != set(SLA_PRIORITIES):
        raise ValidationError(f"Give SLA hours for each priority: {', '.join(SLA_PRIORITIES)}.")
    cleaned: dict[str, float | int] = {}
    for priority in SLA_PRIORITIES:
        hours = value[priority]
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise ValidationError(f"SLA hours for {priority} must be a number.")
        if not 0 < hours <= SLA_HOURS_MAX:
            raise ValidationError(f"SLA hours for {priority} must be more than 0 and at most {SLA_HOURS_MAX}.")
        # Whole hours stay integers, so the stored JSON matches what was typed.
        cleaned[priority] = int(hours) if float(hours).is_integer() else float(hours)
    return cleaned


def dialogue_base_url_check(value: str) -> None:
    """Refuse a server URL that is not plain http(s) with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("The server URL must start with http:// or https:// and name a host.")


def dialogue_key_refs(config: AgentConfig) -> list[str]:
    """The key names a business may pick: those the operator offers, plus the one it already uses."""
    refs = list(settings.DIALOGUE_KEY_REFS)
    stored = (config.dialogue_options or {}).get("key_ref")
    if config.dialogue_provider == "openai" and isinstance(stored, str) and stored and stored not in refs:
        refs.append(stored)
    return refs


def dialogue_options_clean(provider: str, options: object, *, key_refs: Iterable[str] = ()) -> dict[str, Any]:
    """The options of dialogue ``provider``, checked: known names only, a model for a language model,
    an http(s) server URL, and a ``key_ref`` only among the variables the operator offers
    (``key_refs``, see ``dialogue_key_refs``), so no business can send another secret of the platform
    to a server."""
    allowed = DIALOGUE_OPTIONS.get(provider)
    if allowed is None:
        raise ValidationError(f"Unknown receptionist {provider!r}.")
    if not isinstance(options, dict):
        raise ValidationError("Receptionist options must be a mapping.")
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(f"Options the {provider} receptionist does not take: {', '.join(unknown)}.")
    cleaned: dict[str, Any] = dict(options)
    if provider == "receptionist":
        return cleaned
    model = " ".join(str(cleaned.get("model") or "").split())
    if not model:
        raise ValidationError("Give the model's name, e.g. gpt-4o-mini or llama3.1.")
    if len(model) > DIALOGUE_MODEL_MAX_LENGTH:
        raise ValidationError(f"The model's name can be at most {DIALOGUE_MODEL_MAX_LENGTH} characters long.")
    cleaned["model"] = model
    if "base_url" in cleaned:
        cleaned["base_url"] = str(cleaned["base_url"]).strip()
        dialogue_base_url_check(cleaned["base_url"])
    if "key_ref" in cleaned and cleaned["key_ref"] not in set(key_refs):
        raise ValidationError("Choose one of the keys the platform offers.")
    if provider == "openai" and not cleaned.get("key_ref") and not cleaned.get("base_url"):
        raise ValidationError("An OpenAI model needs a key.")
    return cleaned


class DialogueServerError(DomainError):
    """A model server could not be asked for its models; the message says why, without the key."""


def dialogue_models_list(*, config: AgentConfig, provider: str, base_url: str = "", key_ref: str = "") -> list[str]:
    """The model ids the server of an ``openai`` or ``ollama`` receptionist offers, sorted.

    Nothing is stored. ``base_url`` and ``key_ref`` are checked as when they are
    saved. ``base_url`` is for ``ollama`` only (empty: the local Ollama): an
    ``openai`` listing goes where the platform's key may go, the ``base_url``
    the operator stored in ``config`` or else OpenAI itself (``OPENAI_BASE_URL``
    if set), never to a URL typed by the business. A server that is down, slow
    (``DIALOGUE_MODELS_TIMEOUT_S``), refuses the key or answers with an error
    raises ``DialogueServerError``.
    """
    if provider == "receptionist":
        raise DialogueServerError("The built-in receptionist needs no model.")
    options: dict[str, Any] = {"model": "-"}
    if provider == "openai" and config.dialogue_provider == "openai":
        base_url = str((config.dialogue_options or {}).get("base_url") or "")
    elif provider == "openai":
        base_url = ""
    if base_url:
        options["base_url"] = base_url
    if key_ref and provider == "openai":
        options["key_ref"] = key_ref
    try:
        options = dialogue_options_clean(provider, options, key_refs=dialogue_key_refs(config))
    except ValidationError as exc:
        raise DialogueServerError(" ".join(exc.messages)) from exc
    if provider == "ollama":
        api_key, url = "ollama", options.get("base_url") or OLLAMA_BASE_URL  # Ollama ignores the key
    else:
        try:
            api_key = provider_key(options["key_ref"]) if options.get("key_ref") else "unused"
        except ProviderConfigError as exc:
            raise DialogueServerError(
                f"No key is stored under {options['key_ref']}; ask the platform's operator to set it."
            ) from exc
        url = options.get("base_url") or None
    # The SDK loads on first use, as the engines' libraries do (``calls.providers.registry``).
    import openai

    client = openai.OpenAI(api_key=api_key, base_url=url, timeout=settings.DIALOGUE_MODELS_TIMEOUT_S, max_retries=0)
    where = str(client.base_url).rstrip("/")
    try:
        ids = sorted({model.id for model in client.models.list()})
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        logger.info("dialogue_models_refused", provider=provider, status=exc.status_code)
        raise DialogueServerError(f"The server at {where} refused the key.") from exc
    except openai.APIStatusError as exc:
        logger.info("dialogue_models_failed", provider=provider, status=exc.status_code)
        raise DialogueServerError(f"The server at {where} answered with an error (HTTP {exc.status_code}).") from exc
    except openai.APIConnectionError as exc:  # also a timeout
        logger.info("dialogue_models_unreachable", provider=provider)
        raise DialogueServerError(f"Could not reach a model server at {where}. Is it running?") from exc
    finally:
        client.close()
    return ids


def _agent_config_clean(name: str, value: Any) -> Any:
    """Validate and normalise one agent setting; raise ``ValidationError`` saying what is wrong."""
    if name == "business_name":
        value = " ".join(str(value).split())
        if not value or len(value) > 200:
            raise ValidationError("The business name is required (at most 200 characters).")
    elif name in ("greeting", "persona"):
        value = str(value).strip()
        limit = GREETING_MAX_LENGTH if name == "greeting" else PERSONA_MAX_LENGTH
        if len(value) > limit:
            raise ValidationError(f"The {name} can be at most {limit} characters long.")
    elif name == "tts_provider":
        if value not in TTS_PROVIDERS:
            raise ValidationError(f"Unknown voice {value!r}; choose one of {', '.join(sorted(TTS_PROVIDERS))}.")
    elif name == "dialogue_provider":
        if value not in POLICY_PROVIDERS or value not in DIALOGUE_OPTIONS:
            raise ValidationError(f"Unknown receptionist {value!r}.")
    elif name == "stt_provider":
        if value not in STT_PROVIDERS:
            raise ValidationError(
                f"Unknown speech recognition {value!r}; choose one of {', '.join(sorted(STT_PROVIDERS))}."
            )
    elif name == "collect":
        fields = list(dict.fromkeys(value))
        unknown = set(fields) - set(COLLECTABLE_FIELDS)
        if unknown:
            raise ValidationError(f"Unknown fields to collect: {sorted(unknown)}")
        missing = [f for f in REQUIRED_COLLECT_FIELDS if f not in fields]
        if missing:
            raise ValidationError(f"These fields are always collected: {', '.join(REQUIRED_COLLECT_FIELDS)}.")
        # Ask in the order of COLLECTABLE_FIELDS whatever order the form sent.
        value = [f for f in COLLECTABLE_FIELDS if f in fields]
    elif name == "categories":
        value = agent_terms_normalize(value, label="Categories")
        if not value:
            raise ValidationError("Give at least one category, e.g. general.")
    elif name == "category_descriptions":
        if not isinstance(value, dict):
            raise ValidationError("Category descriptions must map a category to a sentence.")
        value = {
            str(k).strip().lower(): " ".join(str(v).split())
            for k, v in value.items()
            if str(k).strip() and str(v).strip()
        }
        too_long = [k for k, v in value.items() if len(v) > CATEGORY_DESCRIPTION_MAX_LENGTH]
        if too_long:
            raise ValidationError(
                f"Keep each description under {CATEGORY_DESCRIPTION_MAX_LENGTH} characters ({', '.join(too_long)})."
            )
    elif name == "urgent_keywords":
        value = agent_terms_normalize(value, label="Urgent keywords")
    elif name == "vocabulary":
        # Names and brands keep their spelling: it is what the recogniser is primed with.
        value = agent_terms_normalize(value, label="Vocabulary", lower=False)
    elif name == "timezone":
        value = str(value).strip()
        if not value:
            raise ValidationError("The time zone is required, e.g. America/New_York.")
        try:
            timezone_validate(value)
        except BusinessHoursError as exc:
            raise ValidationError(str(exc)) from exc
    elif name == "business_hours":
        try:
            spans = business_hours_validate(value)
        except BusinessHoursError as exc:
            raise ValidationError(str(exc)) from exc
        # Closed days are left out, the format the SLA clock reads.
        value = {day: [t.isoformat(timespec="minutes") for t in spans[day]] for day in WEEKDAYS if day in spans}
    elif name == "sla_hours":
        value = _sla_hours_clean(value)
    elif name == "transfer_number":
        value = transfer_number_clean(value)
    elif name == "redact_transcripts" and not isinstance(value, bool):
        raise ValidationError("Transcript redaction is on or off.")
    return value


# A transfer number as typed: "+", the country code, then digits, spaces, dots, dashes or brackets.
_INTERNATIONAL_NUMBER = re.compile(r"\+[1-9][0-9 .()-]{5,20}")


def transfer_number_clean(value: object) -> str:
    """The transfer number in E.164 (empty: no transfers); ``ValidationError`` saying what is wrong.

    Only the international form is taken: the number is dialled from the
    carrier's network, where a local form could reach another country.
    """
    raw = str(value or "").strip()
    if not raw:
        return ""
    if not _INTERNATIONAL_NUMBER.fullmatch(raw):
        raise ValidationError("Give the transfer number in international form, e.g. +1 555 010 0199.")
    return phone_number_normalize(raw)


def agent_config_update(*, config: AgentConfig, actor: User | None = None, **changes: Any) -> AgentConfig:
    """Change the agent's configuration and record who changed which settings.

    Every value is validated and normalised first; the first problems found
    are raised together as ``ValidationError`` keyed by setting name and
    nothing is saved. Unknown setting names raise ``ValueError``. ``voice``
    names the text-to-speech engine, so ``tts_provider`` follows it. Only
    settings whose value differs are saved and named in the audit row
    (``agent_config.updated``); the next call loads the new configuration.
    ``dialogue_provider`` comes with its ``dialogue_options``, which are
    checked against it (``dialogue_options_clean``).
    """
    unknown_attrs = set(changes) - AGENT_CONFIG_FIELDS
    if unknown_attrs:
        raise ValueError(f"Unknown agent settings: {sorted(unknown_attrs)}")
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[ValidationError]] = {}
    for name, value in changes.items():
        try:
            cleaned[name] = _agent_config_clean(name, value)
        except ValidationError as exc:
            errors[name] = exc.error_list
    if "dialogue_options" in cleaned and "dialogue_provider" not in errors:
        # Options are checked against the provider they will be used with.
        provider = cleaned.get("dialogue_provider", config.dialogue_provider)
        try:
            cleaned["dialogue_options"] = dialogue_options_clean(
                provider, cleaned["dialogue_options"], key_refs=dialogue_key_refs(config)
            )
        except ValidationError as exc:
            errors["dialogue_options"] = exc.error_list
    elif "dialogue_provider" in cleaned:
        errors["dialogue_options"] = [ValidationError("Give the receptionist's options with its provider.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = AgentConfig.objects.select_for_update().get(pk=config.pk)
        changed = sorted(name for name, value in cleaned.items() if getattr(locked, name) != value)
        for name in changed:
            setattr(locked, name, cleaned[name])
            setattr(config, name, cleaned[name])
        if changed:
            locked.save(update_fields=[*changed, "updated_at"])
            config.updated_at = locked.updated_at
            audit_event_record(action="agent_config.updated", actor=actor, tenant=_audit_tenant(), fields=changed)
            if TTS_WARM_FIELDS.intersection(changed):
                _tts_warm_after_commit()
    if changed:
        logger.info("agent_config_updated", fields=changed)
    return config


def _faq_text_clean(*, question: object, answer: object) -> tuple[str, str]:
    errors: dict[str, str] = {}
    question_text = " ".join(str(question).split())
    answer_text = str(answer).strip()
    if not question_text:
        errors["question"] = "The question is required."
    elif len(question_text) > FAQ_QUESTION_MAX_LENGTH:
        errors["question"] = f"The question can be at most {FAQ_QUESTION_MAX_LENGTH} characters long."
    if not answer_text:
        errors["answer"] = "The answer is required."
    elif len(answer_text) > FAQ_ANSWER_MAX_LENGTH:
        errors["answer"] = f"The answer can be at most {FAQ_ANSWER_MAX_LENGTH} characters long."
    if errors:
        raise ValidationError(errors)
    return question_text, answer_text


def _faq_duplicate_check(question: str, *, exclude_id: int | None = None) -> None:
    # Two entries with one question would split the matches between them.
    duplicates = FaqEntry.objects.filter(question__iexact=question)
    if exclude_id is not None:
        duplicates = duplicates.exclude(pk=exclude_id)
    if duplicates.exists():
        raise ValidationError({"question": "There is already an entry with this question."})


def faq_entry_create(*, actor: User | None, question: str, answer: str, is_active: bool = True) -> FaqEntry:
    """Add an FAQ entry; the next call's FAQ index includes it when it is active.

    Raises ``ValidationError`` keyed by ``question``/``answer`` for an empty,
    too long or duplicate question or an empty or too long answer.
    """
    question, answer = _faq_text_clean(question=question, answer=answer)
    with transaction.atomic():
        _faq_duplicate_check(question)
        entry = FaqEntry.objects.create(question=question, answer=answer, is_active=bool(is_active))
        audit_event_record(
            action="faq_entry.created",
            actor=actor,
            tenant=_audit_tenant(),
            entry_id=entry.pk,
            question=entry.question,
            is_active=entry.is_active,
        )
        if entry.is_active:
            _tts_warm_after_commit()
    logger.info("faq_entry_created", faq_id=entry.pk)
    return entry


def faq_entry_update(*, entry_id: int, actor: User | None, **changes: Any) -> FaqEntry:
    """Change an FAQ entry's ``question``, ``answer`` or ``is_active``.

    Raises ``FaqEntry.DoesNotExist`` for an unknown id, ``ValueError`` for
    other attributes and ``ValidationError`` for bad values. Only a real
    change is saved and audited (``faq_entry.updated`` naming the fields).
    """
    unknown = set(changes) - {"question", "answer", "is_active"}
    if unknown:
        raise ValueError(f"Unknown FAQ entry fields: {sorted(unknown)}")
    with transaction.atomic():
        entry = FaqEntry.objects.select_for_update().get(pk=entry_id)
        question, answer = _faq_text_clean(
            question=changes.get("question", entry.question), answer=changes.get("answer", entry.answer)
        )
        wanted: dict[str, Any] = {"question": question, "answer": answer}
        if "is_active" in changes:
            wanted["is_active"] = bool(changes["is_active"])
        changed = sorted(name for name, value in wanted.items() if getattr(entry, name) != value)
        if "question" in changed:
            _faq_duplicate_check(question, exclude_id=entry.pk)
        if changed:
            for name in changed:
                setattr(entry, name, wanted[name])
            entry.save(update_fields=changed)
            audit_event_record(
                action="faq_entry.updated",
                actor=actor,
                tenant=_audit_tenant(),
                entry_id=entry.pk,
                question=entry.question,
                fields=changed,
            )
            if entry.is_active and {"answer", "is_active"}.intersection(changed):
                _tts_warm_after_commit()
    return entry


def faq_entry_delete(*, entry_id: int, actor: User | None) -> None:
    """Delete an FAQ entry for good (deactivating keeps it); ``FaqEntry.DoesNotExist`` if unknown.

    Tickets that cite the entry keep the question text they recorded.
    """
    with transaction.atomic():
        entry = FaqEntry.objects.select_for_update().get(pk=entry_id)
        audit_event_record(
            action="faq_entry.deleted", actor=actor, tenant=_audit_tenant(), entry_id=entry.pk, question=entry.question
        )
        entry.delete()
    logger.info("faq_entry_deleted", faq_id=entry_id)


def faq_entries_replace(*, entries: list[dict[str, str]]) -> list[FaqEntry]:
    """Replace the whole FAQ with ``entries`` (each ``{"q": ..., "a": ...}``)."""
    with transaction.atomic():
        FaqEntry.objects.all().delete()
        return FaqEntry.objects.bulk_create(FaqEntry(question=e["q"], answer=e["a"]) for e in entries)


def category_example_learn(*, category: str, text: str, ticket_id: int | None = None) -> CategoryExample | None:
    """Remember ``text`` (a caller's reason) as an example of ``category``; the next call classifies with it.

    Called when an agent moves a phone ticket to another category. Nothing is
    stored for an empty text or a category the business does not have; the
    oldest examples beyond ``CATEGORY_EXAMPLES_MAX`` per category are dropped.
    """
    text = " ".join(text.split())[:300]
    config = AgentConfig.objects.get()
    if not text or category not in config.categories or category.lower() == "general":
        return None
    with transaction.atomic():
        example, created = CategoryExample.objects.get_or_create(
            category=category, text=text, defaults={"ticket_id": ticket_id}
        )
        stale = CategoryExample.objects.filter(category=category).order_by("-created_at", "-pk")[CATEGORY_EXAMPLES_MAX:]
        CategoryExample.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    if created:
        logger.info("category_example_learned", category=category, ticket_id=ticket_id)
    return example


def category_example_delete(*, example_id: int, actor: User | None = None) -> None:
    """Forget one learned example (raises ``CategoryExample.DoesNotExist`` when there is none)."""
    CategoryExample.objects.get(pk=example_id).delete()
    logger.info("category_example_deleted", example_id=example_id, actor_id=getattr(actor, "pk", None))


# -- Post-call transcripts --------------------------------------------------------------------

# The header AssemblyAI's webhook carries back; its value is the call's own token.
POST_CALL_WEBHOOK_HEADER = "X-VoiceDesk-Webhook"


# The opt-in a business makes on its settings page: AssemblyAI with the business's own key.
POST_CALL_OWN_KEY_OPTIONS: dict[str, Any] = {"provider": "assemblyai", TENANT_KEY_OPTION: True}


def post_call_transcriber(options: dict[str, Any], *, tenant: Tenant | None) -> AssemblyAIRecordingTranscriber:
    """The business's post-call transcriber from its ``post_call_transcription`` options.

    With ``tenant_key`` the business's own stored AssemblyAI key is used;
    otherwise the platform's key that ``key_ref`` names. Raises
    ``ProviderConfigError`` for an unknown provider or a missing key.
    """
    if options.get("provider", "assemblyai") != "assemblyai":
        raise ProviderConfigError(f"no post-call transcriber called {options.get('provider')!r}")
    base_url = str(options.get("base_url") or settings.SPEECH_PROVIDER_BASE_URLS.get("assemblyai", ""))
    if options.get(TENANT_KEY_OPTION) is True:
        own = provider_key_for(tenant=tenant, provider="assemblyai") if tenant is not None else None
        if own is None:
            raise ProviderConfigError("no AssemblyAI key of the business's own is stored")
        return AssemblyAIRecordingTranscriber(api_key=own.secret, base_url=base_url)
    key_ref = options.get(KEY_REF_OPTION)
    if not isinstance(key_ref, str) or not key_ref:
        raise ProviderConfigError("post-call transcription needs a key_ref")
    return AssemblyAIRecordingTranscriber(api_key=provider_key(key_ref), base_url=base_url)


def post_call_transcription_set(*, enabled: bool, actor: User | None) -> AgentConfig:
    """Turn the business's post-call transcripts on, with its own AssemblyAI key, or off; one audit row.

    Turning it on needs the key stored first (``ValidationError`` otherwise).
    Turning it off also drops a platform-configured transcriber. Calls that
    end from now on follow the new setting.
    """
    with transaction.atomic():
        config = AgentConfig.objects.select_for_update().get()
        if enabled and not ProviderKey.objects.filter(provider="assemblyai").exists():
            raise ValidationError("Store an AssemblyAI key first: the recordings are sent with your own key.")
        config.post_call_transcription = dict(POST_CALL_OWN_KEY_OPTIONS) if enabled else {}
        config.save(update_fields=["post_call_transcription"])
        audit_event_record(
            action="agent.post_call_transcription_set", actor=actor, tenant=_audit_tenant(), enabled=enabled
        )
    return config


def post_call_webhook_url(call: Call) -> str:
    """Where the vendor posts when this call's transcript is ready (the public site: no tenant host needed)."""
    path = reverse(
        "post-call-transcript-webhook", args=[current_schema(), call.pk], urlconf=settings.PUBLIC_SCHEMA_URLCONF
    )
    return settings.VOICEDESK_PUBLIC_URL.rstrip("/") + path


def call_transcript_request(*, call_id: int) -> Call:
    """Ask for the post-call transcript of a finished call's recording, when the business opted in.

    Once per call: a call already requested (or failed) is left as it is. The
    recording is uploaded and the vendor is given a webhook with a token of
    this call's own; the request (or why it could not be made) is audited.
    """
    options = AgentConfig.objects.get().post_call_transcription
    call = Call.objects.get(pk=call_id)
    if not options or not call.recording or call.ended_at is None or call.post_call_status:
        return call
    token = secrets.token_urlsafe(32)
    try:
        transcriber = post_call_transcriber(options, tenant=_audit_tenant())
        recording = recording_path(call.recording.name).read_bytes()
        ref = transcriber.submit(
            recording, webhook_url=post_call_webhook_url(call), auth_header=(POST_CALL_WEBHOOK_HEADER, token)
        )
    except (ProviderConfigError, SecretUnreadableError, EngineError, OSError) as exc:
        with transaction.atomic():
            call = Call.objects.select_for_update().get(pk=call_id)
            call.post_call_status = Call.PostCallTranscript.FAILED
            call.save(update_fields=["post_call_status"])
            audit_event_record(
                action="call.post_call_transcript_failed", tenant=_audit_tenant(), call_id=call.pk, error=str(exc)
            )
        return call
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        call.post_call_status = Call.PostCallTranscript.REQUESTED
        call.post_call_ref = ref[:64]
        call.post_call_token = token
        call.save(update_fields=["post_call_status", "post_call_ref", "post_call_token"])
        audit_event_record(action="call.post_call_transcript_requested", tenant=_audit_tenant(), call_id=call.pk)
    return call


def call_transcript_store(*, call_id: int, transcript_id: str) -> Call | None:
    """The vendor says a transcript is ready: fetch it and store it beside the live one.

    None when the call asked for no such transcript (nothing changes). A
    transcript not finished yet leaves the call as it is; a failed one marks
    it failed. Storing is audited once.
    """
    call = Call.objects.filter(pk=call_id).first()
    if call is None or not call.post_call_ref or call.post_call_ref != transcript_id:
        return None
    if call.post_call_status != Call.PostCallTranscript.REQUESTED:
        return call
    try:
        transcriber = post_call_transcriber(AgentConfig.objects.get().post_call_transcription, tenant=_audit_tenant())
        transcript = transcriber.fetch(transcript_id)
    except (ProviderConfigError, SecretUnreadableError, EngineError) as exc:
        transcript, failure = None, str(exc)
    else:
        failure = ""
        if transcript is None:
            return call  # not done yet: the next webhook (or a retry) comes back
    data: dict[str, Any]
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.post_call_status != Call.PostCallTranscript.REQUESTED:
            return call
        if transcript is not None:
            # Masked like the live transcript when the business redacts transcripts.
            call.post_call_transcript = (
                transcript_mask(transcript.text) if transcript_redaction_enabled() else transcript.text
            )
            call.post_call_status = Call.PostCallTranscript.COMPLETED
            action, data = "call.post_call_transcript_stored", {"chars": len(transcript.text)}
        else:
            call.post_call_status = Call.PostCallTranscript.FAILED
            action, data = "call.post_call_transcript_failed", {"error": failure}
        call.save(update_fields=["post_call_transcript", "post_call_status"])
        audit_event_record(action=action, tenant=_audit_tenant(), call_id=call.pk, **data)
    return call


# -- Recordings on disk: one folder per tenant ------------------------------------------------


@dataclass
class RecordingsRelocation:
    """What ``call_recordings_relocate`` did, by call id."""

    moved: list[int] = field(default_factory=list)
    # The file was already in place (a run stopped between moving it and saving the call): only the call was saved.
    relinked: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    # A different file is already where this one should go: both are left as they are.
    conflicts: list[int] = field(default_factory=list)


def call_recordings_relocate(*, dry_run: bool = False) -> RecordingsRelocation:
    """Move the current schema's recordings stored outside its folder to ``recordings/<schema>/<year>/<month>/``.

    Recordings made before they were kept per tenant sit at
    ``recordings/<year>/<month>/call-<id>[_suffix].wav``, mixed with other
    tenants'. Each is moved (a rename, atomic on one file system) to the name
    ``recording_name`` gives it, then the call is saved with the new name, so
    a run that stops part-way is finished by the next. Idempotent: a call
    already in its folder is left alone. ``dry_run`` only reports.
    """
    schema = current_schema()
    folder = recordings_dir_name(schema)
    result = RecordingsRelocation()
    calls = Call.objects.exclude(recording="").exclude(recording__startswith=folder).order_by("pk")
    for call in calls.only("pk", "recording", "started_at"):
        old = call.recording.name
        new = recording_name(
            schema_name=schema, call_id=call.pk, started_year=call.started_at.year, started_month=call.started_at.month
        )
        source, target = recording_path(old), recording_path(new)
        if target.exists():
            if source.exists() and not filecmp.cmp(source, target, shallow=False):
                result.conflicts.append(call.pk)
                logger.warning("call_recording_relocation_conflict", call_id=call.pk)
                continue
            result.relinked.append(call.pk)
            if not dry_run:
                source.unlink(missing_ok=True)
        elif source.exists():
            result.moved.append(call.pk)
            if not dry_run:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
        else:
            result.missing.append(call.pk)
            continue
        if not dry_run:
            Call.objects.filter(pk=call.pk, recording=old).update(recording=new)
    if result.moved or result.relinked or result.conflicts or result.missing:
        logger.info(
            "call_recordings_relocated",
            schema=schema,
            dry_run=dry_run,
            moved=len(result.moved),
            relinked=len(result.relinked),
            missing=len(result.missing),
            conflicts=len(result.conflicts),
        )
    return result


def tenant_recordings_erase(event: TenantErasure) -> ErasurePart:
    """The tenant-erasure hook: every recording of the tenant, in its folder or where an older call left it.

    Files go before the rows that name them (a failure later leaves nothing
    of the tenant on disk, and a second erasure finishes the rest).
    """
    tenant = event.tenant
    with tenant_context(tenant):
        elsewhere = [
            recording_path(name)
            for name in Call.objects.exclude(recording="")
            .exclude(recording__startswith=recordings_dir_name(tenant.schema_name))
            .values_list("recording", flat=True)
        ]
    folder = recording_path(recordings_dir_name(tenant.schema_name))
    files = [path for path in elsewhere if path.is_file()]
    if folder.is_dir():
        files += [path for path in folder.rglob("*") if path.is_file()]
    if not event.dry_run:
        for path in files:
            path.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
    return ErasurePart(app="calls", counts={"recording_files": len(files)})


# -- The business's own keys for cloud speech providers ----------------------

PROVIDER_KEY_MIN_LENGTH = 8
PROVIDER_KEY_MAX_LENGTH = 512


class ProviderKeyError(DomainError):
    """A provider key that cannot be stored, found or tested."""


def _provider_key_provider_check(provider: str) -> str:
    if provider not in ProviderKey.Provider.values:
        raise ValidationError({"provider": f"Unknown provider {provider!r}."})
    return provider


def provider_key_save(*, provider: str, api_key: str, actor: User | None) -> ProviderKey:
    """Store (or replace) the business's key for ``provider``, encrypted, with one audit row.

    The key is checked for shape only (``provider_key_test`` asks the
    provider). Only its last four characters are kept in clear, for pages and
    the audit row. The next call's engines use the new key.
    """
    _provider_key_provider_check(provider)
    key = api_key.strip()
    if not key:
        raise ValidationError({"api_key": "Paste the key."})
    if (
        not PROVIDER_KEY_MIN_LENGTH <= len(key) <= PROVIDER_KEY_MAX_LENGTH
        or not key.isprintable()
        or any(char.isspace() for char in key)
    ):
        raise ValidationError(
            {
                "api_key": f"That does not look like an API key: {PROVIDER_KEY_MIN_LENGTH}-{PROVIDER_KEY_MAX_LENGTH} "
                "characters with no spaces."
            }
        )
    try:
        ciphertext = secret_encrypt(key)
    except SecretsUnavailableError as exc:
        logger.error("provider_key_unencryptable", error=str(exc))
        raise ProviderKeyError("Keys cannot be stored yet: the platform's operator has not set up encryption.") from exc
    with transaction.atomic():
        row = ProviderKey.objects.select_for_update().filter(provider=provider).first()
        replaced = row is not None
        if row is None:
            row = ProviderKey(provider=provider)
        row.ciphertext = ciphertext
        row.last4 = key[-4:]
        row.save()
        audit_event_record(
            action="provider_key.saved",
            actor=actor,
            tenant=_audit_tenant(),
            provider=provider,
            last4=row.last4,
            replaced=replaced,
        )
        _tts_voices_forget(provider)
    logger.info("provider_key_saved", provider=provider, replaced=replaced)
    return row


def provider_key_delete(*, provider: str, actor: User | None) -> None:
    """Forget the business's key for ``provider``; ``ProviderKey.DoesNotExist`` if none is stored.

    Engines that took the key from the store have nothing to use from the next
    call on: the chain moves to its next engine.
    """
    with transaction.atomic():
        row = ProviderKey.objects.select_for_update().get(provider=provider)
        last4 = row.last4
        row.delete()
        audit_event_record(
            action="provider_key.deleted", actor=actor, tenant=_audit_tenant(), provider=provider, last4=last4
        )
        _tts_voices_forget(provider)
    logger.info("provider_key_deleted", provider=provider)


def provider_keys_rotate() -> int:
    """Re-encrypt every key stored in the current schema with the platform's first key; the count done.

    The keys themselves do not change (engines keep theirs). A key no
    configured key opens raises ``SecretUnreadableError`` and nothing of
    this schema is changed.
    """
    with transaction.atomic():
        rows = list(ProviderKey.objects.select_for_update().order_by("pk"))
        for row in rows:
            row.ciphertext = secret_rotate(row.ciphertext)
        for row in rows:
            # ``updated_at`` stays: it dates the key, which has not changed.
            row.save(update_fields=["ciphertext"])
    return len(rows)


def provider_url(config: AgentConfig, provider: str) -> str:
    """Where ``provider``'s API is for this business: the ``base_url`` (``api_host`` for AssemblyAI)
    of the first of its engines of that provider that names one, else the platform's
    ``SPEECH_PROVIDER_BASE_URLS``; empty means the provider's own."""
    option = KEYED_PROVIDERS.get(provider, "base_url")
    engines = [
        (config.tts_provider, config.tts_options),
        *((entry.get("provider"), entry.get("options")) for entry in _fallback_entries(config.tts_fallbacks)),
        (config.stt_provider, config.stt_options),
        *((entry.get("provider"), entry.get("options")) for entry in _fallback_entries(config.stt_fallbacks)),
    ]
    for name, options in engines:
        if name == provider and isinstance(options, dict) and isinstance(options.get(option), str) and options[option]:
            return str(options[option])
    return str(settings.SPEECH_PROVIDER_BASE_URLS.get(provider, ""))


def _fallback_entries(fallbacks: object) -> list[dict[str, Any]]:
    return [entry for entry in fallbacks if isinstance(entry, dict)] if isinstance(fallbacks, list) else []


def provider_key_test(*, tenant: Tenant, provider: str) -> KeyCheck:
    """Ask ``provider`` whether the business's stored key works, within ``SPEECH_PROVIDER_CHECK_TIMEOUT_S``.

    Goes where the business's engines of that provider go (``provider_url``).
    Nothing is stored; ``ProviderKeyError`` if no key is stored.
    """
    _provider_key_provider_check(provider)
    try:
        stored = provider_key_for(tenant=tenant, provider=provider)
    except SecretUnreadableError as exc:
        raise ProviderKeyError("The stored key cannot be read any more; paste it again.") from exc
    if stored is None:
        raise ProviderKeyError(f"No {ProviderKey.Provider(provider).label} key is stored.")
    config = AgentConfig.objects.get()
    check = provider_key_check(
        provider,
        api_key=stored.secret,
        url=provider_url(config, provider),
        timeout_s=settings.SPEECH_PROVIDER_CHECK_TIMEOUT_S,
    )
    logger.info("provider_key_tested", provider=provider, outcome=check.outcome)
    return check


# -- The business's voice: listing the provider's voices, previews, the choice ----

# How long a provider's voice list and a voice's preview stay cached (per business schema).
TTS_VOICES_CACHE_S = 3600
TTS_PREVIEW_CACHE_S = 7 * 24 * 3600
# How long a preview may take to synthesize.
TTS_PREVIEW_TIMEOUT_S = 10.0
PREVIEW_TEXT = "Thanks for calling {business}. This is how I will sound to your callers."


class VoiceListError(DomainError):
    """The provider's voices cannot be listed or previewed; the message says why, for the page."""


def _tts_voices_cache_key(provider: str, url: str) -> str:
    # The schema is added by the cache's key function; the API key is not part of it.
    return f"tts-voices:{provider}:{url}"


def _tts_voices_forget(provider: str) -> None:
    """Drop the cached voice list of ``provider`` once the transaction commits: another key may see other voices."""
    if provider not in VOICE_LISTINGS:
        return
    cache_key = _tts_voices_cache_key(provider, provider_url(AgentConfig.objects.get(), provider))
    transaction.on_commit(lambda: cache.delete(cache_key))


def _tts_engine_key(*, tenant: Tenant, spec: EngineSpec) -> str:
    """The API key the business's ``spec`` speaks with: its own stored one, or the platform's it names."""
    label = ProviderKey.Provider(spec.name).label if spec.name in ProviderKey.Provider.values else spec.name
    options = spec.kwargs()
    if spec.uses_tenant_key() or KEY_REF_OPTION not in options:
        try:
            stored = provider_key_for(tenant=tenant, provider=spec.name)
        except SecretUnreadableError as exc:
            raise VoiceListError(f"The stored {label} key cannot be read any more; paste it again.") from exc
        if stored is None:
            raise VoiceListError(f"Store your {label} key under Speech providers to list its voices.")
        return stored.secret
    try:
        return provider_key(str(options[KEY_REF_OPTION]))
    except ProviderConfigError as exc:
        raise VoiceListError(f"The platform's {label} key is not set up; ask its operator.") from exc


def _tts_spec(config: AgentConfig) -> EngineSpec:
    try:
        return EngineSpec.of(config.tts_provider, config.tts_options)
    except ProviderConfigError as exc:
        raise VoiceListError(f"The voice's options are not valid: {exc}") from exc


def tts_voices_list(*, tenant: Tenant, config: AgentConfig) -> list[ProviderVoice]:
    """The voices of the business's text-to-speech provider, cached per provider and server.

    Cloud providers are asked with the key the business's engine uses
    (``SPEECH_PROVIDER_CHECK_TIMEOUT_S``); offline engines list their
    installed voices. A provider with no listing gives an empty list;
    ``VoiceListError`` says why a listing failed (failures are not cached).
    """
    provider = config.tts_provider
    listing = VOICE_LISTINGS.get(provider)
    url = provider_url(config, provider) if listing is not None else ""
    cache_key = _tts_voices_cache_key(provider, url)
    cached = cache.get(cache_key)
    if cached is not None:
        return list(cached)
    if listing is None:
        voices = local_voices(provider)
    else:
        api_key = _tts_engine_key(tenant=tenant, spec=_tts_spec(config))
        try:
            voices = listing(api_key=api_key, base_url=url, timeout_s=settings.SPEECH_PROVIDER_CHECK_TIMEOUT_S)
        except ProviderCallError as exc:
            logger.info("tts_voices_unlisted", provider=provider, outcome=exc.check.outcome)
            raise VoiceListError(exc.check.detail) from exc
    cache.set(cache_key, voices, TTS_VOICES_CACHE_S)
    return voices


def _tts_voice_check(*, tenant: Tenant, config: AgentConfig, voice_id: str) -> ProviderVoice:
    for voice in tts_voices_list(tenant=tenant, config=config):
        if voice.voice_id == voice_id:
            return voice
    raise VoiceListError(f"The voice {voice_id!r} is not one the provider offers.")


def _wav(pcm: Pcm16, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


async def _spoken(engine: TextToSpeech, text: str) -> Pcm16:
    chunks: list[Pcm16] = []
    async with asyncio.timeout(TTS_PREVIEW_TIMEOUT_S):
        try:
            async for chunk in engine.synthesize(text):
                chunks.append(chunk)
        finally:
            close = getattr(engine, "aclose", None)
            if close is not None:
                await close()
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def tts_voice_preview(*, tenant: Tenant, config: AgentConfig, voice_id: str) -> bytes:
    """A short sample of ``voice_id`` (one the provider lists) as a mono 16-bit WAV, cached.

    Spoken by the business's engine with only its voice changed, so the same
    server and key are used as on a call. ``VoiceListError`` for a voice the
    provider does not list or a synthesis that fails. Run from synchronous
    code (it runs its own event loop).
    """
    provider = config.tts_provider
    option = VOICE_OPTIONS.get(provider)
    if option is None:
        raise VoiceListError("This voice has no voices to preview.")
    _tts_voice_check(tenant=tenant, config=config, voice_id=voice_id)
    text = PREVIEW_TEXT.format(business=config.business_name)
    url = provider_url(config, provider) if provider in VOICE_LISTINGS else ""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    cache_key = f"tts-preview:{provider}:{url}:{voice_id}:{digest}"
    cached = cache.get(cache_key)
    if cached is not None:
        return bytes(cached)
    spec = EngineSpec.of(provider, {**(config.tts_options or {}), option: voice_id})
    context = {"api_key": _tts_engine_key(tenant=tenant, spec=spec)} if provider in VOICE_LISTINGS else {}
    # The key goes in as the engine's argument; the spec keeps only the reference to it.
    spec_options = {k: v for k, v in spec.kwargs().items() if k != KEY_REF_OPTION}
    spec_options.pop(TENANT_KEY_OPTION, None)
    try:
        engine = TTS_PROVIDERS.build(EngineSpec.of(provider, spec_options), **context)
        pcm = asyncio.run(_spoken(engine, text))
    except (EngineError, ValueError, TimeoutError, OSError) as exc:
        detail = exc.detail if isinstance(exc, EngineError) else type(exc).__name__
        logger.info("tts_voice_preview_failed", provider=provider, error=detail)
        raise VoiceListError(f"The preview could not be made ({detail}).") from exc
    if not pcm.size:
        raise VoiceListError("The provider sent no audio for the preview.")
    wav = _wav(pcm, engine.sample_rate)
    cache.set(cache_key, wav, TTS_PREVIEW_CACHE_S)
    return wav


def agent_voice_choose(*, tenant: Tenant, config: AgentConfig, voice_id: str, actor: User | None) -> AgentConfig:
    """Make ``voice_id`` (one the provider lists) the voice of the business's engine, with one audit row.

    Stored in ``tts_options`` under the engine's voice option; other options
    stay. ``ValidationError`` (``voice``) for a voice the provider does not
    offer, or an engine without voices to choose; nothing is saved then.
    """
    option = VOICE_OPTIONS.get(config.tts_provider)
    if option is None:
        raise ValidationError({"voice": "This voice has no voices to choose from."})
    try:
        _tts_voice_check(tenant=tenant, config=config, voice_id=voice_id)
    except VoiceListError as exc:
        raise ValidationError({"voice": str(exc)}) from exc
    with transaction.atomic():
        locked = AgentConfig.objects.select_for_update().get(pk=config.pk)
        options = dict(locked.tts_options or {})
        if options.get(option) == voice_id:
            return config
        options[option] = voice_id
        locked.tts_options = options
        locked.save(update_fields=["tts_options", "updated_at"])
        config.tts_options, config.updated_at = options, locked.updated_at
        audit_event_record(action="agent_config.updated", actor=actor, tenant=_audit_tenant(), fields=["tts_options"])
    logger.info("agent_voice_chosen", provider=config.tts_provider)
    return config
