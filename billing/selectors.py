"""Reads for billing. Every read takes the tenant it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from billing.models import Plan, Subscription, UsageRecord, usage_minutes
from tenants.models import Tenant


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
