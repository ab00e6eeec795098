"""Reads for billing. Every read takes the tenant it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from billing.models import Invoice, Plan, Subscription, UsageRecord, usage_minutes
from calls.hooks import CallAccess
from calls.models import AgentConfig, Call, Utterance
from calls.providers.registry import is_streaming_stt
from tenants.hooks import TenantLimits
from tenants.models import AuditEvent, Tenant, User
from voicedesk.core.tenancy import current_schema


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One engine's part of a call, for people: ``("Speech heard", "whisper", "41 s")``."""

    kind: str
    engine: str
    amount: str


@dataclass(frozen=True, slots=True)
class CallCost:
    """What one metered call cost: its minutes (and those past the plan's included ones) and its engines."""

    call_id: int
    at: datetime
    seconds: int
    minutes: int
    # Of this call's minutes, those beyond the plan's included minutes (calls use them up in order).
    overage_minutes: int
    minutes_cents: Decimal
    usage: list[UsageLine]
    provider_cost_cents: Decimal

    @property
    def total_cents(self) -> Decimal:
        return self.minutes_cents + self.provider_cost_cents


@dataclass(frozen=True, slots=True)
class BillingSummary:
    """A business's plan and its usage in the current billing period, with the bill it adds up to.

    ``calls`` are the period's metered calls, newest first, each with its cost.
    """

    subscription: Subscription | None
    plan: Plan | None
    period_start: datetime
    period_end: datetime
    used_minutes: int
    included_minutes: int
    overage_minutes: int
    estimated_cents: Decimal
    calls: list[CallCost]

    @property
    def included_left(self) -> int:
        return max(0, self.included_minutes - self.used_minutes)

    @property
    def provider_cost_cents(self) -> Decimal:
        return sum((call.provider_cost_cents for call in self.calls), Decimal(0))


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


_USAGE_KINDS = {
    "stt": ("Speech heard", "s"),
    "stt_stream": ("Speech streamed", "s"),
    "tts": ("Speech spoken", "s"),
    "tts_chars": ("Characters spoken", "characters"),
    "llm": ("Language model", "tokens"),
}


def usage_lines(usage: dict[str, dict[str, float]]) -> list[UsageLine]:
    """A call's provider usage as lines for people, in a fixed order of kinds and engines; zero amounts left out."""
    lines = []
    for role, (kind, unit) in _USAGE_KINDS.items():
        for engine, amount in sorted((usage.get(role) or {}).items()):
            if amount:
                shown = f"{amount:,.1f}".removesuffix(".0") if unit == "s" else f"{amount:,.0f}"
                lines.append(UsageLine(kind, engine, f"{shown} {unit}"))
    return lines


def billing_summary_for_tenant(*, tenant: Tenant, now: datetime | None = None) -> BillingSummary:
    """The billing period (the subscription's, else the calendar month in UTC), its minutes, its estimate,
    and the cost of each call: its minutes beyond the included ones at the plan's rate, and what its engines
    cost (``UsageRecord.provider_cost_cents``)."""
    now = now or timezone.now()
    subscription = Subscription.objects.filter(tenant=tenant).select_related("plan").first()
    plan = subscription.plan if subscription else None
    if subscription and subscription.current_period_start and subscription.current_period_end:
        start, end = subscription.current_period_start, subscription.current_period_end
    else:
        start, end = _month_bounds(now)
    records = UsageRecord.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end)
    included = plan.included_minutes if plan else 0
    calls: list[CallCost] = []
    used = 0
    fields = ("call_id", "seconds", "created_at", "provider_usage", "provider_cost_cents")
    for record in records.only(*fields).order_by("created_at", "pk"):
        minutes = usage_minutes(record.seconds)
        overage = max(0, used + minutes - included) - max(0, used - included) if plan else 0
        used += minutes
        rate = plan.overage_cents_per_minute if plan else Decimal(0)
        calls.append(
            CallCost(
                record.call_id, record.created_at, record.seconds, minutes, overage, overage * rate,
                usage_lines(record.provider_usage or {}), record.provider_cost_cents,
            )
        )  # fmt: skip
    calls.reverse()
    overage_total = max(0, used - included) if plan else 0
    estimate = Decimal(plan.monthly_price_cents) + overage_total * plan.overage_cents_per_minute if plan else Decimal(0)
    return BillingSummary(subscription, plan, start, end, used, included, overage_total, estimate, calls)


def invoice_list_for_tenant(*, tenant: Tenant, limit: int = 24) -> list[Invoice]:
    """``tenant``'s latest invoices from Stripe's webhooks, newest first."""
    return list(Invoice.objects.filter(tenant=tenant)[:limit])


def plan_list_active() -> list[Plan]:
    """The plans a business can choose, cheapest first."""
    return list(Plan.objects.filter(is_active=True))


@dataclass(frozen=True, slots=True)
class TenantBillingRow:
    """One business this month: its plan and minutes, what it pays us and what its calls cost us."""

    tenant: Tenant
    plan: Plan | None
    status: str
    minutes_this_month: int
    monthly_cents: int
    # Base price plus minutes beyond the included ones, for a paying subscription.
    revenue_cents: Decimal = Decimal(0)
    # What the speech and language engines of this month's calls cost the platform.
    provider_cost_cents: Decimal = Decimal(0)

    @property
    def margin_cents(self) -> Decimal:
        return self.revenue_cents - self.provider_cost_cents

    @property
    def margin_percent(self) -> Decimal | None:
        """The margin as a share of revenue, to one decimal; none without revenue."""
        if not self.revenue_cents:
            return None
        return (self.margin_cents * 100 / self.revenue_cents).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class BillingOverview:
    """The platform's revenue picture for its owner."""

    mrr_cents: int
    by_status: dict[str, int]
    rows: list[TenantBillingRow]
    minutes_per_day: list[tuple[str, int]]
    failed_payments: list[AuditEvent]
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def revenue_cents(self) -> Decimal:
        return sum((row.revenue_cents for row in self.rows), Decimal(0))

    @property
    def provider_cost_cents(self) -> Decimal:
        return sum((row.provider_cost_cents for row in self.rows), Decimal(0))

    @property
    def margin_cents(self) -> Decimal:
        return self.revenue_cents - self.provider_cost_cents


# Subscriptions that bring in money this month (past_due still owes it).
REVENUE_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.TRIALING, Subscription.Status.PAST_DUE)


def billing_overview(*, actor: User, now: datetime | None = None, days: int = 30) -> BillingOverview:
    """MRR, subscriptions by state, each business's plan, minutes, revenue, provider cost and margin this
    calendar month (UTC), usage per day and recent failed payments.

    Only for platform staff; raises ``PermissionDenied`` for anyone else.
    """
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Platform staff only.")
    now = now or timezone.now()
    month_start, month_end = _month_bounds(now)
    minutes: dict[int, int] = {}
    costs: dict[int, Decimal] = {}
    for tenant_id, seconds, cost in UsageRecord.objects.filter(
        created_at__gte=month_start, created_at__lt=month_end
    ).values_list("tenant_id", "seconds", "provider_cost_cents"):
        minutes[tenant_id] = minutes.get(tenant_id, 0) + usage_minutes(seconds)
        costs[tenant_id] = costs.get(tenant_id, Decimal(0)) + cost
    subscriptions = {s.tenant_id: s for s in Subscription.objects.select_related("plan")}
    rows = []
    for tenant in Tenant.objects.filter(is_template=False).exclude(schema_name="public").order_by("name"):
        subscription = subscriptions.get(tenant.pk)
        status = subscription.status if subscription else Subscription.Status.NONE
        plan = subscription.plan if subscription else None
        used = minutes.get(tenant.pk, 0)
        revenue = Decimal(0)
        if plan is not None and status in REVENUE_STATUSES:
            revenue = plan.monthly_price_cents + max(0, used - plan.included_minutes) * plan.overage_cents_per_minute
        rows.append(
            TenantBillingRow(
                tenant=tenant,
                plan=plan,
                status=status,
                minutes_this_month=used,
                monthly_cents=plan.monthly_price_cents if revenue and plan else 0,
                revenue_cents=revenue,
                provider_cost_cents=costs.get(tenant.pk, Decimal(0)),
            )
        )
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    since = (now - timedelta(days=days - 1)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = {(since + timedelta(days=i)).date().isoformat(): 0 for i in range(days)}
    for created_at, seconds in UsageRecord.objects.filter(created_at__gte=since).values_list("created_at", "seconds"):
        day = created_at.astimezone(UTC).date().isoformat()
        if day in per_day:
            per_day[day] += usage_minutes(seconds)
    failed = list(
        AuditEvent.objects.filter(action="billing.payment_failed", created_at__gte=now - timedelta(days=days))
        .select_related("tenant")
        .order_by("-created_at")[:50]
    )
    return BillingOverview(
        sum(r.monthly_cents for r in rows), by_status, rows, list(per_day.items()), failed, month_start, month_end
    )


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One calendar month (UTC) of the platform: recurring revenue at its end, usage, money in, failed payments."""

    month: date
    # Base prices of the subscriptions paying at the month's end (now, for this month).
    mrr_cents: int
    minutes: int
    provider_cost_cents: Decimal
    # Paid invoices issued in the month.
    collected_cents: int
    failed_payments: int

    @property
    def label(self) -> str:
        return f"{self.month:%b %Y}"


def _months_back(now: datetime, months: int) -> list[tuple[datetime, datetime]]:
    """The last ``months`` calendar months (UTC) up to the current one, oldest first, as [start, end)."""
    bounds = [_month_bounds(now)]
    while len(bounds) < months:
        start = bounds[-1][0]
        bounds.append(_month_bounds(start - timedelta(days=1)))
    return bounds[::-1]


def _status_at(
    instant: datetime, events: list[tuple[datetime, dict[str, Any]]], subscription: Subscription | None
) -> tuple[str, str]:
    """A business's subscription state and plan code at ``instant``, replayed from its state changes.

    Before its first recorded change it was in that change's ``previous``
    state. A subscription with no recorded change has been in its state since
    ``status_since`` (else since it was last saved).
    """
    current_plan = subscription.plan.code if subscription and subscription.plan else ""
    before = [data for at, data in events if at < instant]
    if before:
        return str(before[-1].get("status", "")), str(before[-1].get("plan") or current_plan)
    if events:
        return str(events[0][1].get("previous", "")), str(events[0][1].get("plan") or current_plan)
    if subscription is not None and (subscription.status_since or subscription.updated_at) < instant:
        return subscription.status, current_plan
    return Subscription.Status.NONE, ""


def billing_history(*, actor: User, now: datetime | None = None, months: int = 12) -> list[MonthFigures]:
    """The platform month by month, oldest first: MRR at each month's end, billed minutes, provider cost,
    money collected and failed payments.

    MRR is replayed from the recorded subscription state changes
    (``billing.subscription_status``), priced at each plan's current base
    price. Only for platform staff; raises ``PermissionDenied`` for anyone else.
    """
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Platform staff only.")
    now = now or timezone.now()
    bounds = _months_back(now, months)
    since = bounds[0][0]
    prices = dict(Plan.objects.values_list("code", "monthly_price_cents"))
    subscriptions = {s.tenant_id: s for s in Subscription.objects.select_related("plan")}
    events: dict[int, list[tuple[datetime, dict[str, Any]]]] = {}
    for tenant_id, at, data in (
        AuditEvent.objects.filter(action="billing.subscription_status", tenant__isnull=False)
        .order_by("created_at", "pk")
        .values_list("tenant_id", "created_at", "data")
    ):
        events.setdefault(tenant_id, []).append((at, data))
    tenants = Tenant.objects.filter(is_template=False).exclude(schema_name="public")
    tenant_ids = list(tenants.values_list("pk", flat=True))

    def month_of(at: datetime) -> date:
        return at.astimezone(UTC).date().replace(day=1)

    minutes: dict[date, int] = {}
    costs: dict[date, Decimal] = {}
    for created_at, seconds, cost in UsageRecord.objects.filter(created_at__gte=since).values_list(
        "created_at", "seconds", "provider_cost_cents"
    ):
        minutes[month_of(created_at)] = minutes.get(month_of(created_at), 0) + usage_minutes(seconds)
        costs[month_of(created_at)] = costs.get(month_of(created_at), Decimal(0)) + cost
    collected: dict[date, int] = {}
    for created_at, paid in Invoice.objects.filter(status="paid", created_at__gte=since).values_list(
        "created_at", "amount_paid_cents"
    ):
        collected[month_of(created_at)] = collected.get(month_of(created_at), 0) + paid
    failed: dict[date, int] = {}
    for created_at in AuditEvent.objects.filter(action="billing.payment_failed", created_at__gte=since).values_list(
        "created_at", flat=True
    ):
        failed[month_of(created_at)] = failed.get(month_of(created_at), 0) + 1
    figures = []
    for start, end in bounds:
        instant = min(end, now)
        mrr = 0
        for tenant_id in tenant_ids:
            status, plan_code = _status_at(instant, events.get(tenant_id, []), subscriptions.get(tenant_id))
            if status in REVENUE_STATUSES:
                mrr += prices.get(plan_code, 0)
        month = start.date()
        figures.append(
            MonthFigures(month, mrr, minutes.get(month, 0), costs.get(month, Decimal(0)),
                         collected.get(month, 0), failed.get(month, 0))
        )  # fmt: skip
    return figures


# -- Service access: what the subscription's state gives the business --------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """Whether the business's calls get the receptionist, and what its pages should say about billing.

    ``reason`` names why calls are not taken (``unpaid``, ``canceled``,
    ``trial_ended``, ``paused``, ``past_due``); ``notice`` is the banner
    for the business's pages (empty: none), ``level`` its tone.
    """

    full_service: bool
    reason: str = ""
    notice: str = ""
    level: str = "warning"
    grace_until: datetime | None = None


_NOT_TAKING_CALLS = "Callers hear a short message that you will call them back, and each call still becomes a ticket."
_CLOSED_NOTICES = {
    "unpaid": "Your subscription is unpaid, so your receptionist is not answering calls.",
    "canceled": "Your subscription has ended, so your receptionist is not answering calls.",
    "trial_ended": "Your free trial has ended, so your receptionist is not answering calls.",
    "paused": "Your subscription is paused, so your receptionist is not answering calls.",
    "past_due": "Your payment is overdue and the grace period has ended, so your receptionist is not answering calls.",
}


def service_access_for_tenant(*, tenant: Tenant, now: datetime | None = None) -> ServiceAccess:
    """What the subscription's state gives ``tenant``.

    Active: full service. Trialing: full service until the trial's period
    ends. Past due: full service with a banner for
    ``BILLING_PAST_DUE_GRACE_DAYS`` after the state began, then as unpaid.
    Unpaid, canceled and paused: callers hear a short message and still leave
    a ticket. No subscription yet (or a first payment still incomplete):
    full service while the business sets up; its checklist asks for a plan.
    """
    now = now or timezone.now()
    subscription = Subscription.objects.filter(tenant=tenant).first()
    status = subscription.status if subscription else Subscription.Status.NONE
    if subscription is None or status in (
        Subscription.Status.NONE,
        Subscription.Status.INCOMPLETE,
        Subscription.Status.ACTIVE,
    ):
        return ServiceAccess(full_service=True)
    reason = ""
    if status == Subscription.Status.TRIALING:
        if subscription.current_period_end is None or now < subscription.current_period_end:
            return ServiceAccess(full_service=True)
        reason = "trial_ended"
    elif status == Subscription.Status.PAST_DUE:
        since = subscription.status_since or subscription.synced_at or subscription.updated_at
        grace_until = since + timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS)
        if now < grace_until:
            return ServiceAccess(
                full_service=True,
                notice=f"Your last payment did not go through. Please update your card before "
                f"{grace_until:%B} {grace_until.day} to keep your receptionist answering calls.",
                grace_until=grace_until,
            )
        reason = "past_due"
    elif status == Subscription.Status.PAUSED:
        reason = "paused"
    else:
        reason = "canceled" if status == Subscription.Status.CANCELED else "unpaid"
    return ServiceAccess(
        full_service=False, reason=reason, notice=f"{_CLOSED_NOTICES[reason]} {_NOT_TAKING_CALLS}", level="error"
    )


def plan_for_tenant(*, tenant: Tenant) -> Plan | None:
    """The plan of ``tenant``'s subscription, if it has one."""
    subscription = Subscription.objects.filter(tenant=tenant).select_related("plan").first()
    return subscription.plan if subscription else None


def tenant_call_access(tenant: Tenant) -> CallAccess:
    """``calls.hooks`` provider: the subscription's state and the plan's concurrent-call limit."""
    access = service_access_for_tenant(tenant=tenant)
    plan = plan_for_tenant(tenant=tenant)
    return CallAccess(
        full_service=access.full_service,
        reason=access.reason,
        max_concurrent_calls=plan.max_concurrent_calls if plan else None,
    )


def tenant_plan_limits(tenant: Tenant) -> TenantLimits:
    """``tenants.hooks`` provider: the plan's seats and numbers; no plan yet, no limits."""
    plan = plan_for_tenant(tenant=tenant)
    if plan is None:
        return TenantLimits()
    return TenantLimits(max_seats=plan.max_seats, max_numbers=plan.max_numbers)


# -- Provider usage and cost of a call -------------------------------------------------------

ProviderUsage = dict[str, dict[str, float]]
# Roles a switch moves between engines.
SPEECH_ROLES = ("stt", "tts")
# Priced per minute: seconds of speech heard (``stt``) and spoken (``tts``), and seconds
# of audio streamed to a vendor that bills the open stream (``stt_stream``).
PER_MINUTE_ROLES = ("stt", "tts", "stt_stream")
# Priced per 1,000: language-model tokens (``llm``) and characters sent to a voice
# priced by the character (``tts_chars``).
PER_THOUSAND_ROLES = ("llm", "tts_chars")
USAGE_ROLES = (*PER_MINUTE_ROLES, *PER_THOUSAND_ROLES)


def _engine_name(engine: str) -> str:
    """``"whisper(model=tiny)"`` -> ``"whisper"``: engines are priced by name, whatever their options."""
    return engine.split("(", 1)[0]


def call_provider_usage(*, tenant: Tenant, call: Call) -> ProviderUsage:
    """What ``call`` used of each engine, per role (``USAGE_ROLES``).

    An engine that reports its own usage in the call's outcome
    (``captured["provider_usage"]``, same shape) is believed. Otherwise the
    usage is read from the transcript: each caller utterance was heard by the
    speech-to-text engine and each agent utterance spoken (its seconds, and
    its characters) by the text-to-speech engine in use when it was saved,
    which is the agent's configured one until the call's first switch of that
    role (``captured["provider_switches"]``), and the engine switched to
    after. A streaming engine hears the whole call, not just the caller's
    words: from the answer until its switch (or the end) is ``stt_stream``.
    Characters are an upper bound: a phrase replayed from the voice cache
    counts again. The rule-based receptionist uses no language model; a language-model
    receptionist's tokens are in ``captured["llm_usage"]`` (by model and
    kind: ``"gpt-4o-mini:in"``, ``":cached"``, ``":out"``, each priced as
    ``llm:<that name>``).
    """
    if current_schema() != tenant.schema_name:
        raise RuntimeError(f"call_provider_usage for {tenant.schema_name} with schema {current_schema()} active")
    captured = call.captured or {}
    reported = captured.get("provider_usage")
    if isinstance(reported, dict):
        return {
            role: {str(engine): float(amount) for engine, amount in (reported.get(role) or {}).items()}
            for role in USAGE_ROLES
        }
    config = AgentConfig.objects.first()
    configured = {
        "stt": _engine_name((config.stt_provider if config else "") or settings.VOICEDESK_STT),
        "tts": _engine_name((config.tts_provider if config else "") or settings.VOICEDESK_TTS),
    }
    switches = sorted(
        (datetime.fromisoformat(s["at"]), s["role"], _engine_name(s["to_engine"]))
        for s in captured.get("provider_switches", [])
        if s.get("role") in SPEECH_ROLES
    )
    usage: ProviderUsage = {role: {} for role in USAGE_ROLES}
    for speaker, start_s, end_s, text, saved_at in Utterance.objects.filter(call=call).values_list(
        "speaker", "start_s", "end_s", "text", "created_at"
    ):
        role = "stt" if speaker == Utterance.Speaker.CALLER else "tts"
        engine = configured[role]
        for at, switch_role, to_engine in switches:
            if switch_role == role and at <= saved_at:
                engine = to_engine
        usage[role][engine] = round(usage[role].get(engine, 0.0) + max(0.0, end_s - start_s), 3)
        if role == "tts":
            usage["tts_chars"][engine] = usage["tts_chars"].get(engine, 0.0) + len(text)
    if is_streaming_stt(configured["stt"]) and call.answered_at is not None and call.ended_at is not None:
        until = next((at for at, role, _ in switches if role == "stt"), call.ended_at)
        streamed = (min(until, call.ended_at) - call.answered_at).total_seconds()
        usage["stt_stream"][configured["stt"]] = round(max(0.0, streamed), 3)
    llm = captured.get("llm_usage")
    if isinstance(llm, dict):
        usage["llm"] = {str(kind): float(tokens) for kind, tokens in llm.items()}
    return usage


def provider_usage_cost_cents(usage: ProviderUsage) -> Decimal:
    """The price of ``usage`` in cents from ``settings.BILLING_PROVIDER_UNIT_COSTS`` (an unlisted engine: 0)."""
    costs = settings.BILLING_PROVIDER_UNIT_COSTS
    total = Decimal(0)
    for role, engines in usage.items():
        for engine, amount in engines.items():
            rate = Decimal(str(costs.get(f"{role}:{engine}", 0)))
            units = Decimal(str(amount)) / (60 if role in PER_MINUTE_ROLES else 1000)
            total += units * rate
    return total.quantize(Decimal("0.0001"))
