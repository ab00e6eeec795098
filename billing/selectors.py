"""Reads for billing. Every read takes the tenant it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from billing.models import Plan, Subscription, UsageRecord, usage_minutes
from tenants.models import AuditEvent, Tenant, User


@dataclass(frozen=True, slots=True)
class CallUsage:
    call_id: int
    seconds: int
    minutes: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BillingSummary:
    """A business's plan and its usage in the current billing period, with the bill it adds up to."""

    subscription: Subscription | None
    plan: Plan | None
    period_start: datetime
    period_end: datetime
    used_minutes: int
    included_minutes: int
    overage_minutes: int
    estimated_cents: Decimal
    calls: list[CallUsage]

    @property
    def included_left(self) -> int:
        return max(0, self.included_minutes - self.used_minutes)


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def billing_summary_for_tenant(*, tenant: Tenant, now: datetime | None = None, call_limit: int = 50) -> BillingSummary:
    """The billing period (the subscription's, else the calendar month in UTC), its minutes and its estimate."""
    now = now or timezone.now()
    subscription = Subscription.objects.filter(tenant=tenant).select_related("plan").first()
    plan = subscription.plan if subscription else None
    if subscription and subscription.current_period_start and subscription.current_period_end:
        start, end = subscription.current_period_start, subscription.current_period_end
    else:
        start, end = _month_bounds(now)
    records = list(
        UsageRecord.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end).order_by("-created_at")
    )
    used = sum(usage_minutes(r.seconds) for r in records)
    included = plan.included_minutes if plan else 0
    overage = max(0, used - included) if plan else 0
    estimate = Decimal(plan.monthly_price_cents) + overage * plan.overage_cents_per_minute if plan else Decimal(0)
    calls = [CallUsage(r.call_id, r.seconds, usage_minutes(r.seconds), r.created_at) for r in records[:call_limit]]
    return BillingSummary(subscription, plan, start, end, used, included, overage, estimate, calls)


def plan_list_active() -> list[Plan]:
    """The plans a business can choose, cheapest first."""
    return list(Plan.objects.filter(is_active=True))


@dataclass(frozen=True, slots=True)
class TenantBillingRow:
    tenant: Tenant
    plan: Plan | None
    status: str
    minutes_this_month: int
    monthly_cents: int


@dataclass(frozen=True, slots=True)
class BillingOverview:
    """The platform's revenue picture for its owner."""

    mrr_cents: int
    by_status: dict[str, int]
    rows: list[TenantBillingRow]
    minutes_per_day: list[tuple[str, int]]
    failed_payments: list[AuditEvent]


# Subscriptions that bring in money this month (past_due still owes it).
REVENUE_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.TRIALING, Subscription.Status.PAST_DUE)


def billing_overview(*, actor: User, now: datetime | None = None, days: int = 30) -> BillingOverview:
    """MRR, subscriptions by state, each business's plan and minutes, usage per day and recent failed payments.

    Only for platform staff; raises ``PermissionDenied`` for anyone else.
    """
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Platform staff only.")
    now = now or timezone.now()
    month_start, _ = _month_bounds(now)
    minutes: dict[int, int] = {}
    for tenant_id, seconds in UsageRecord.objects.filter(created_at__gte=month_start).values_list(
        "tenant_id", "seconds"
    ):
        minutes[tenant_id] = minutes.get(tenant_id, 0) + usage_minutes(seconds)
    subscriptions = {s.tenant_id: s for s in Subscription.objects.select_related("plan")}
    rows = []
    for tenant in Tenant.objects.filter(is_template=False).exclude(schema_name="public").order_by("name"):
        subscription = subscriptions.get(tenant.pk)
        status = subscription.status if subscription else Subscription.Status.NONE
        plan = subscription.plan if subscription else None
        paying = plan is not None and status in REVENUE_STATUSES
        rows.append(
            TenantBillingRow(
                tenant, plan, status, minutes.get(tenant.pk, 0), plan.monthly_price_cents if paying and plan else 0
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
    return BillingOverview(sum(r.monthly_cents for r in rows), by_status, rows, list(per_day.items()), failed)
