"""Writes for calls and the agent configuration. Callers set the tenant schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from calls.dialogue.llm import OLLAMA_BASE_URL
from calls.hooks import CallAccess, CallFinished, call_finished_notify
from calls.models import (
    COLLECTABLE_FIELDS,
    AgentConfig,
    Call,
    CategoryExample,
    FaqEntry,
    TurnLatency,
    Utterance,
    default_sla_hours,
)
from calls.providers.registry import (
    POLICY_PROVIDERS,
    STT_PROVIDERS,
    TTS_PROVIDERS,
    ProviderConfigError,
    provider_key,
)
from calls.recordings import recording_name, recording_path, wav_create, wav_repair
from calls.selectors import call_active_count_before, call_test_active_count
from tenants.business_hours import WEEKDAYS, BusinessHoursError, business_hours_validate, timezone_validate
from tenants.hooks import TenantCreated
from tenants.models import Tenant, User
from tenants.services import audit_event_record
from voicedesk.core.errors import DomainError
from voicedesk.core.events import helpdesk_event_publish
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
TURNED_AWAY_PREFIX = "turned_away:"
# What the ticket of a call turned away says happened, by reason.
TURNED_AWAY_SUBJECTS = {
    OVER_CAPACITY: "Missed call: all lines were busy",
}
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
        call_finish(
            call_id=call.pk,
            end_reason=f"{TURNED_AWAY_PREFIX}{reason}",
            outcome=_turned_away_outcome(call, reason),
            completed=False,
            now=now,
        )
    logger.info("call_turned_away", tenant=tenant.schema_name, call_id=call_id, reason=reason)
    return CallAdmission(admitted=False, reason=reason)


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


def call_heartbeat(*, call_id: int, captured: dict[str, Any] | None = None, now: datetime | None = None) -> bool:
    """The process running the call is alive (at ``now``); ``captured`` is what the caller has said so far.

    Returns False, changing nothing, for a call that has ended (the sweeper may
    have finished it while this process stalled).
    """
    fields: dict[str, Any] = {"heartbeat_at": now or timezone.now()}
    if captured is not None:
        fields["captured"] = captured
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
    """Save one final utterance at once, so a crash loses at most the one in flight."""
    return Utterance.objects.create(
        call_id=call_id,
        speaker=speaker,
        text=text,
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
) -> TurnLatency:
    latency, _ = TurnLatency.objects.update_or_create(
        call_id=call_id,
        turn_index=turn_index,
        defaults={
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
    record are made by the apps that own them).
    """
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
    }
)
# What each dialogue provider may be given (``calls.dialogue.llm``); keys come only through ``key_ref``.
DIALOGUE_OPTIONS: dict[str, frozenset[str]] = {
    "receptionist": frozenset(),
    "openai": frozenset({"model", "base_url", "key_ref", "first_token_s", "temperature"}),
    "ollama": frozenset({"model", "base_url", "first_token_s", "temperature"}),
}
DIALOGUE_MODEL_MAX_LENGTH = 200


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
    return value


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
