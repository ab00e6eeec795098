"""Reads for calls: the call history, one call with its transcript and latencies, the agent's settings and FAQ.

The tenant's schema must be active; the tenant is passed to make that explicit
and ``schema_check`` refuses a mismatch. ``schema_check`` and
``agent_timezone`` are the shared ones: other apps import them from here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from calls.models import (
    COLLECTABLE_FIELDS,
    AgentConfig,
    Call,
    CategoryExample,
    FaqEntry,
    ProviderKey,
    TurnLatency,
    Utterance,
)
from tenants.business_hours import business_hours_between, sla_due_at
from tenants.models import Tenant
from voicedesk.core.secrets import secret_decrypt
from voicedesk.core.tenancy import current_schema

UTC = ZoneInfo("UTC")

# Sort keys of the history, as the page's ``sort`` parameter spells them.
CALL_SORTS: dict[str, tuple[Any, ...]] = {
    "-started": (F("started_at").desc(), F("id").desc()),
    "started": (F("started_at").asc(), F("id").asc()),
    # Calls never answered have no duration; they go last either way.
    "-duration": (F("duration").desc(nulls_last=True), F("started_at").desc(), F("id").desc()),
    "duration": (F("duration").asc(nulls_last=True), F("started_at").desc(), F("id").desc()),
}
FIELD_LABELS: dict[str, str] = {
    "name": "Name",
    "callback_number": "Callback number",
    "reason": "Reason",
    "address": "Address",
    "email": "Email",
    "preferred_time": "Preferred time",
}


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``.

    Continuous: interpolates between the two nearest values, so p95 of
    100, 200, 300, 400, 500 is 480. Works on numbers and on intervals; the
    caller names the output field. NULL (``None``) over no rows.
    """

    function = "PERCENTILE_CONT"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"percentile fraction must be within [0, 1], not {fraction}")
        # A validated float, so it can be part of the SQL text safely.
        super().__init__(expression, fraction=repr(fraction), **extra)


def schema_check(*, tenant: Tenant, reader: str = "read") -> None:
    """Refuse to read for ``tenant`` unless its schema is the active one.

    Every selector that reads tenant tables calls this first: a query run with
    another tenant's schema (or public) active would silently read the wrong
    business's data, so a mismatch is a bug and raises ``RuntimeError``
    (``"<reader> for <tenant schema> with schema <active schema> active"``).
    Shared by the apps: the help desk's selectors use it too.
    """
    active = current_schema()
    if active != tenant.schema_name:
        raise RuntimeError(f"{reader} for {tenant.schema_name} with schema {active} active")


@dataclass(frozen=True)
class BusinessProfile:
    """When the business is open and how fast it resolves tickets, in its own time zone.

    The agent and the help desk read the same profile: the agent's settings
    page edits it, the help desk counts SLA and callback due times with it and
    shows dates in its zone. Stored with the agent's configuration, one per
    tenant schema.
    """

    timezone_name: str
    business_hours: dict[str, list[str]]
    sla_hours: dict[str, float]

    @property
    def zone(self) -> ZoneInfo:
        """The time zone; UTC when the name is unknown here, so a page never fails on a bad setting."""
        try:
            return ZoneInfo(self.timezone_name) if self.timezone_name else UTC
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    def due(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of business time have passed since ``start``."""
        return sla_due_at(
            start=start, hours=hours, business_hours=self.business_hours, timezone_name=self.timezone_name
        )

    def hours_between(self, start: datetime, end: datetime) -> float:
        """Hours of business time from ``start`` to ``end``."""
        return business_hours_between(start, end, self.business_hours, self.timezone_name)


# A schema without an agent configuration: open around the clock in UTC, no SLA targets.
ROUND_THE_CLOCK = BusinessProfile(timezone_name="UTC", business_hours={}, sla_hours={})


def business_profile_current() -> BusinessProfile:
    """The business profile of the tenant whose schema is active (services and actors)."""
    row = AgentConfig.objects.order_by("id").values("timezone", "business_hours", "sla_hours").first()
    if row is None:
        return ROUND_THE_CLOCK
    return BusinessProfile(
        timezone_name=row["timezone"], business_hours=row["business_hours"], sla_hours=row["sla_hours"]
    )


def business_profile_get(*, tenant: Tenant) -> BusinessProfile:
    """``tenant``'s business profile; its schema must be active."""
    schema_check(tenant=tenant, reader="business_profile_get")
    return business_profile_current()


def agent_timezone(*, tenant: Tenant) -> ZoneInfo:
    """The business's local time zone for showing and reading dates and times (UTC when unknown).

    The one reader of the business's time zone for every app; ``tenant``'s schema must be active.
    """
    schema_check(tenant=tenant, reader="agent_timezone")
    return business_profile_current().zone


def agent_config_get(*, tenant: Tenant) -> AgentConfig:
    """The tenant's agent configuration (every tenant has exactly one, made with the tenant)."""
    schema_check(tenant=tenant, reader="agent_config_get")
    return AgentConfig.objects.get()


def category_examples_list(*, tenant: Tenant) -> QuerySet[CategoryExample]:
    """The category examples learned from the help desk, by category, newest first."""
    schema_check(tenant=tenant, reader="category_examples_list")
    return CategoryExample.objects.all()


def faq_entry_list(*, tenant: Tenant) -> QuerySet[FaqEntry]:
    """The FAQ entries, active and inactive, in the order they were added."""
    schema_check(tenant=tenant, reader="faq_entry_list")
    return FaqEntry.objects.order_by("id")


def faq_entry_get(*, tenant: Tenant, entry_id: int) -> FaqEntry:
    """One FAQ entry; raises ``FaqEntry.DoesNotExist`` for an id that is not in this tenant's schema."""
    schema_check(tenant=tenant, reader="faq_entry_get")
    return FaqEntry.objects.get(pk=entry_id)


def call_recording_get(*, tenant: Tenant, call_id: int) -> Call:
    """A call with only what serving its recording needs (``recording``).

    Raises ``Call.DoesNotExist`` for an id that is not in this tenant's
    schema; the recording itself may be empty (check ``call.recording``).
    """
    schema_check(tenant=tenant, reader="call_recording_get")
    return Call.objects.only("id", "recording").get(pk=call_id)


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The aware instant a local calendar day begins in ``tz``."""
    return datetime.combine(day, time.min, tzinfo=tz)


@dataclass(frozen=True)
class CallFilters:
    """What the history is narrowed to. Dates are calendar days in the tenant's time zone, both inclusive."""

    q: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "-started"
    # "" for every call, "any" for calls the receptionist tried to put through, or one TransferStatus.
    transfer: str = ""


def call_list(*, tenant: Tenant, filters: CallFilters, tz: ZoneInfo) -> QuerySet[Call]:
    """Calls matching ``filters``, each with ``caller_name``, ``duration``, ``ticket_pk`` and ``turn_count``.

    One query per page whatever the page holds: the ticket comes from a
    one-to-one join and the turn count from a correlated subquery. The
    transcript is searched with EXISTS, so a call whose transcript matches
    several times is still listed once.
    """
    schema_check(tenant=tenant, reader="call_list")
    turns = (
        TurnLatency.objects.filter(call=OuterRef("pk")).order_by().values("call").annotate(n=Count("id")).values("n")
    )
    calls = Call.objects.annotate(
        caller_name=KT("captured__fields__name"),
        duration=ExpressionWrapper(F("ended_at") - F("answered_at"), output_field=DurationField()),
        # A subquery, not the one-to-one join: counting the pages then reads calls only.
        # The ticket is reached through the relation tickets declares, so calls imports nothing above it.
        ticket_pk=Subquery(
            Call.objects.filter(pk=OuterRef("pk")).values("ticket__pk")[:1], output_field=IntegerField()
        ),
        turn_count=Coalesce(Subquery(turns, output_field=IntegerField()), Value(0)),
    ).only(
        "id",
        "carrier",
        "carrier_call_id",
        "from_number",
        "status",
        "end_reason",
        "started_at",
        "answered_at",
        "ended_at",
        "is_test",
        "transfer_status",
        "transfer_to",
    )
    if filters.q:
        q = filters.q
        said = Utterance.objects.filter(call=OuterRef("pk"), text__icontains=q)
        calls = calls.filter(
            Q(from_number__icontains=q)
            | Q(captured__fields__name__icontains=q)
            | Q(carrier_call_id__icontains=q)
            | Exists(said)
        )
    if filters.status:
        calls = calls.filter(status=filters.status)
    if filters.transfer == "any":
        calls = calls.exclude(transfer_status="")
    elif filters.transfer:
        calls = calls.filter(transfer_status=filters.transfer)
    if filters.date_from is not None:
        calls = calls.filter(started_at__gte=local_day_start(filters.date_from, tz))
    if filters.date_to is not None:
        calls = calls.filter(started_at__lt=local_day_start(filters.date_to + timedelta(days=1), tz))
    return calls.order_by(*CALL_SORTS.get(filters.sort, CALL_SORTS["-started"]))


def call_get(*, tenant: Tenant, call_id: int) -> Call:
    """One call with its ticket (``call.ticket`` raises ``ObjectDoesNotExist`` when there is none).

    Raises ``Call.DoesNotExist`` for an id that is not in this tenant's schema.
    """
    schema_check(tenant=tenant, reader="call_get")
    return Call.objects.select_related("ticket").get(pk=call_id)


def call_caller_name(*, call: Call) -> str:
    """The name the caller gave, or an empty string."""
    fields = call.captured.get("fields") if isinstance(call.captured, dict) else None
    name = fields.get("name") if isinstance(fields, dict) else None
    return str(name) if name else ""


def call_captured_fields(*, call: Call) -> list[tuple[str, str]]:
    """The caller's details the agent captured, as ``(label, value)`` in the order the agent collects them."""
    fields = call.captured.get("fields") if isinstance(call.captured, dict) else None
    if not isinstance(fields, dict):
        return []
    known = [key for key in COLLECTABLE_FIELDS if key in fields]
    others = sorted(key for key in fields if key not in COLLECTABLE_FIELDS)
    return [
        (FIELD_LABELS.get(key, key.replace("_", " ").capitalize()), str(fields[key]))
        for key in known + others
        if fields[key] not in (None, "")
    ]


def call_transcript(*, tenant: Tenant, call: Call) -> QuerySet[Utterance]:
    """What was said on the call, in the order it was said."""
    schema_check(tenant=tenant, reader="call_transcript")
    return Utterance.objects.filter(call=call).order_by("start_s", "id")


def call_turn_latencies(*, tenant: Tenant, call: Call) -> QuerySet[TurnLatency]:
    """The per-turn timings of the call, by turn."""
    schema_check(tenant=tenant, reader="call_turn_latencies")
    return TurnLatency.objects.filter(call=call).order_by("turn_index")


def call_first_frame_percentiles(*, tenant: Tenant, call: Call) -> dict[str, float | None]:
    """p50 and p95 (continuous, as PostgreSQL's ``percentile_cont``) of the call's first-frame latency, in ms."""
    schema_check(tenant=tenant, reader="call_first_frame_percentiles")
    return TurnLatency.objects.filter(call=call).aggregate(
        p50=Percentile("first_frame_ms", fraction=0.5, output_field=FloatField()),
        p95=Percentile("first_frame_ms", fraction=0.95, output_field=FloatField()),
    )


# A call counts as in progress for the concurrent-call limit while it is, for
# at most this long (a process that died mid-call leaves its row behind); a
# ringing call only while its stream may still connect (the stream token's age).
ACTIVE_CALL_MAX_AGE = timedelta(hours=2)
RINGING_CALL_MAX_AGE = timedelta(minutes=5)


def call_active_count_before(*, tenant: Tenant, call: Call, now: datetime) -> int:
    """Calls of ``tenant`` ringing or in progress that started before ``call`` (a lower id).

    Counting only earlier calls makes two simultaneous arrivals agree: the
    first is admitted, the second sees it.
    """
    schema_check(tenant=tenant, reader="call_active_count_before")
    return (
        # Test calls from the dashboard never make a real caller hear that the lines are busy.
        Call.objects.filter(pk__lt=call.pk, is_test=False)
        .filter(
            Q(status=Call.Status.IN_PROGRESS, started_at__gte=now - ACTIVE_CALL_MAX_AGE)
            | Q(status=Call.Status.RINGING, started_at__gte=now - RINGING_CALL_MAX_AGE)
        )
        .count()
    )


def call_test_active_count(*, tenant: Tenant, now: datetime) -> int:
    """Test calls of ``tenant`` in progress now (rows older than ``ACTIVE_CALL_MAX_AGE`` are dead processes')."""
    schema_check(tenant=tenant, reader="call_test_active_count")
    return Call.objects.filter(
        is_test=True, status=Call.Status.IN_PROGRESS, started_at__gte=now - ACTIVE_CALL_MAX_AGE
    ).count()


def call_ticket_id(*, tenant: Tenant, call_id: int) -> int | None:
    """The id of the ticket ``call_id`` became, or None while there is none (it is made after the call ends)."""
    schema_check(tenant=tenant, reader="call_ticket_id")
    # The reverse one-to-one of the ticket app, read by name: calls does not import tickets.
    ticket_id: int | None = Call.objects.filter(pk=call_id).values_list("ticket__pk", flat=True).first()
    return ticket_id


def call_post_call_webhook_matches(*, tenant: Tenant, call_id: int, transcript_id: str, token: str) -> bool:
    """Whether a webhook post is the answer to ``call_id``'s post-call transcript request: its id and token."""
    schema_check(tenant=tenant)
    call = Call.objects.filter(pk=call_id).only("post_call_ref", "post_call_token").first()
    if call is None or not call.post_call_token or not token or call.post_call_ref != transcript_id:
        return False
    return hmac.compare_digest(call.post_call_token.encode(), token.encode())


@dataclass(frozen=True)
class ProviderKeyShown:
    """A stored provider key as pages may show it: which provider, its last four characters, when set."""

    provider: str
    label: str
    last4: str
    updated_at: datetime


@dataclass(frozen=True)
class TenantKey:
    """A business's decrypted key for one provider; ``version`` changes whenever the key does.

    The key stays out of ``repr`` (and so out of logs and tracebacks' locals dumps).
    """

    provider: str
    secret: str = field(repr=False)
    version: str = ""


def provider_keys_list(*, tenant: Tenant) -> list[ProviderKeyShown]:
    """The business's stored provider keys, shown by their last four characters only."""
    schema_check(tenant=tenant, reader="provider_keys_list")
    return [
        ProviderKeyShown(
            provider=row.provider, label=row.get_provider_display(), last4=row.last4, updated_at=row.updated_at
        )
        for row in ProviderKey.objects.order_by("provider")
    ]


def provider_key_for(*, tenant: Tenant, provider: str) -> TenantKey | None:
    """The business's own key for ``provider``, decrypted (None if it stored none).

    Raises ``SecretUnreadableError`` for a key none of the platform's keys opens.
    """
    schema_check(tenant=tenant, reader="provider_key_for")
    row = ProviderKey.objects.filter(provider=provider).first()
    if row is None:
        return None
    return TenantKey(
        provider=provider, secret=secret_decrypt(row.ciphertext), version=f"{row.pk}:{row.updated_at.isoformat()}"
    )


@dataclass(frozen=True, slots=True)
class PostCallTranscription:
    """Whether the business's recordings are transcribed again after each call, and with whose key."""

    enabled: bool
    own_key: bool  # with the business's own AssemblyAI key (else the platform's)
    key_stored: bool  # the business has an AssemblyAI key stored


def post_call_transcription_get(*, tenant: Tenant) -> PostCallTranscription:
    """The business's post-call transcription setting, for its settings page."""
    schema_check(tenant=tenant, reader="post_call_transcription_get")
    options = AgentConfig.objects.values_list("post_call_transcription", flat=True).get()
    return PostCallTranscription(
        enabled=bool(options),
        own_key=bool(options) and options.get("tenant_key") is True,
        key_stored=ProviderKey.objects.filter(provider="assemblyai").exists(),
    )
