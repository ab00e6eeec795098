"""Billing: usage metering per call, and the Stripe subscription of each business."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import tasks as billing_tasks
from billing.models import Invoice, Plan, StripeEvent, Subscription, UsageRecord, usage_minutes
from billing.selectors import call_provider_usage, provider_usage_cost_cents
from billing.stripe_gateway import stripe_client, stripe_event_verify
from calls.models import Call
from tenants.hooks import ErasurePart, TenantErasure
from tenants.models import Membership, Tenant, User
from tenants.services import audit_event_record
from voicedesk.core.tenancy import current_schema

logger = structlog.get_logger(__name__)


def usage_record_call(*, tenant: Tenant, call_id: int) -> UsageRecord | None:
    """Meter a finished call in ``tenant``'s schema; a second run returns the same record.

    Calls are billed by the started minute's seconds rounded up, from answer
    to hang-up. Unanswered calls and test calls (``Call.is_test``) cost
    nothing and are not recorded. The record also keeps what the call used of each engine and what that cost
    the platform (``call_provider_usage``, priced from the settings' table).
    """
    if current_schema() != tenant.schema_name:
        raise RuntimeError(f"usage_record_call for {tenant.schema_name} with schema {current_schema()} active")
    existing = UsageRecord.objects.filter(tenant=tenant, call_id=call_id).first()
    if existing is not None:
        return existing
    call = Call.objects.get(pk=call_id)
    duration = call.duration_seconds
    if duration is None or call.is_test:
        return None
    usage = call_provider_usage(tenant=tenant, call=call)
    try:
        with transaction.atomic():
            record = UsageRecord.objects.create(
                tenant=tenant,
                call_id=call_id,
                seconds=math.ceil(duration),
                provider_usage=usage,
                provider_cost_cents=provider_usage_cost_cents(usage),
            )
    except IntegrityError:
        return UsageRecord.objects.get(tenant=tenant, call_id=call_id)
    logger.info("usage_recorded", call_id=call_id, seconds=record.seconds)
    return record


def usage_unmetered_call_ids(*, tenant: Tenant) -> list[int]:
    """Finished, answered calls of ``tenant`` that have no usage record yet (test calls are never metered)."""
    metered = UsageRecord.objects.filter(tenant=tenant).values_list("call_id", flat=True)
    return list(
        Call.objects.filter(ended_at__isnull=False, answered_at__isnull=False, is_test=False)
        .exclude(pk__in=list(metered))
        .values_list("pk", flat=True)
    )


# -- Stripe: catalog, checkout, portal, webhooks, metering ---------------------------------

ACTIVE_STATUSES = frozenset({Subscription.Status.ACTIVE, Subscription.Status.TRIALING})
# Statuses in which a business still has a subscription it must manage through the portal.
LIVE_STATUSES = frozenset({*ACTIVE_STATUSES, Subscription.Status.PAST_DUE, Subscription.Status.UNPAID})
METER_EVENT_MAX_AGE = timedelta(days=35)


def billing_catalog_sync(*, client: stripe.StripeClient | None = None) -> list[Plan]:
    """Make sure Stripe has the usage meter and, for each active plan, its product and two prices.

    Existing ids are checked, not trusted: a price Stripe no longer has is
    made again.
    """
    client = client or stripe_client()
    meter_id = _meter_ensure(client)
    plans = list(Plan.objects.filter(is_active=True))
    for plan in plans:
        if not _stripe_has(client.v1.products.retrieve, plan.stripe_product_id):
            plan.stripe_product_id = client.v1.products.create(
                {"name": f"VoiceDesk {plan.name}", "metadata": {"plan": plan.code}}
            ).id
            plan.stripe_base_price_id = plan.stripe_metered_price_id = ""
        if not _stripe_has(client.v1.prices.retrieve, plan.stripe_base_price_id):
            plan.stripe_base_price_id = client.v1.prices.create(
                {"product": plan.stripe_product_id, "currency": "usd", "unit_amount": plan.monthly_price_cents,
                 "recurring": {"interval": "month"}, "nickname": f"{plan.name} monthly"},
            ).id  # fmt: skip
        if not _stripe_has(client.v1.prices.retrieve, plan.stripe_metered_price_id):
            plan.stripe_metered_price_id = client.v1.prices.create(
                {"product": plan.stripe_product_id, "currency": "usd", "nickname": f"{plan.name} minutes",
                 "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
                 "billing_scheme": "tiered", "tiers_mode": "graduated",
                 "tiers": [{"up_to": plan.included_minutes, "unit_amount": 0},
                           {"up_to": "inf", "unit_amount_decimal": plan.overage_cents_per_minute}]},
            ).id  # fmt: skip
        plan.save(update_fields=["stripe_product_id", "stripe_base_price_id", "stripe_metered_price_id"])
    return plans


def _meter_ensure(client: stripe.StripeClient) -> str:
    event_name = settings.STRIPE_METER_EVENT_NAME
    for meter in client.v1.billing.meters.list().data:
        if meter.event_name == event_name and meter.status == "active":
            return str(meter.id)
    return str(
        client.v1.billing.meters.create(
            {"display_name": "Call minutes", "event_name": event_name, "default_aggregation": {"formula": "sum"},
             "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
             "value_settings": {"event_payload_key": "value"}},
        ).id
    )  # fmt: skip


def _stripe_has(retrieve: Any, object_id: str) -> bool:
    if not object_id:
        return False
    try:
        retrieve(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing":
            return False
        raise
    return True


def subscription_for_tenant(*, tenant: Tenant) -> Subscription:
    """The tenant's billing row (made on first use, with no subscription)."""
    subscription, _ = Subscription.objects.get_or_create(tenant=tenant)
    return subscription


def _owner_check(tenant: Tenant, actor: User) -> None:
    if not Membership.objects.filter(tenant=tenant, user=actor, role=Membership.Role.OWNER).exists():
        raise PermissionDenied("Only the owner manages the subscription.")


def checkout_session_start(
    *, tenant: Tenant, plan: Plan, actor: User, success_url: str, cancel_url: str,
    client: stripe.StripeClient | None = None,
) -> str:  # fmt: skip
    """Start a Stripe Checkout for ``plan``; return the URL to send the owner to.

    The subscription is recorded when Stripe's webhooks say it exists, not
    here: the owner may abandon the payment page.
    """
    _owner_check(tenant, actor)
    if not plan.is_active:
        raise ValidationError("That plan is no longer offered.", code="plan_inactive")
    client = client or stripe_client()
    if not (plan.stripe_base_price_id and plan.stripe_metered_price_id):
        billing_catalog_sync(client=client)
        plan.refresh_from_db()
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_for_tenant(tenant=tenant).pk)
        if subscription.status in LIVE_STATUSES:
            raise ValidationError(
                "This business already has a subscription; change it in the billing portal.", code="subscribed"
            )
        if not subscription.stripe_customer_id:
            customer = client.v1.customers.create(
                {"email": actor.email, "name": tenant.name, "metadata": {"tenant": tenant.schema_name}},
                {"idempotency_key": f"tenant-{tenant.pk}-customer"},
            )
            subscription.stripe_customer_id = customer.id
            subscription.save(update_fields=["stripe_customer_id", "updated_at"])
        metadata = {"tenant": tenant.schema_name, "plan": plan.code}
        session = client.v1.checkout.sessions.create(
            {"mode": "subscription", "customer": subscription.stripe_customer_id,
             "client_reference_id": tenant.schema_name, "metadata": metadata,
             "line_items": [{"price": plan.stripe_base_price_id, "quantity": 1},
                            {"price": plan.stripe_metered_price_id}],
             "subscription_data": {"metadata": metadata},
             "success_url": success_url, "cancel_url": cancel_url},
        )  # fmt: skip
        audit_event_record(action="billing.checkout_started", actor=actor, tenant=tenant, plan=plan.code)
    return str(session.url)


def portal_session_start(
    *, tenant: Tenant, actor: User, return_url: str, client: stripe.StripeClient | None = None
) -> str:
    """A Stripe Billing Portal session (cards, invoices, plan, cancellation); return its URL."""
    _owner_check(tenant, actor)
    subscription = subscription_for_tenant(tenant=tenant)
    if not subscription.stripe_customer_id:
        raise ValidationError("Choose a plan first.", code="no_customer")
    session = (client or stripe_client()).v1.billing_portal.sessions.create(
        {"customer": subscription.stripe_customer_id, "return_url": return_url}
    )
    return str(session.url)


def stripe_event_receive(*, payload: bytes, signature: str) -> tuple[StripeEvent, bool]:
    """Verify a webhook delivery and store its event once; return it and whether it is new.

    Raises ``stripe.SignatureVerificationError`` for a forged, stale or unsigned
    delivery (nothing is stored). A new event is processed by a worker after
    commit; a repeated one changes nothing.
    """
    event = stripe_event_verify(payload, signature)
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            event_id=event.id, defaults={"type": event.type, "payload": json.loads(payload)}
        )
        if created:
            transaction.on_commit(lambda: billing_tasks.stripe_event_process.send(stored.pk))
    logger.info("stripe_event_received", event_type=event.type, new=created)
    return stored, created


def stripe_event_process(*, event_pk: int, now: datetime | None = None) -> StripeEvent:
    """Apply one stored Stripe event to our records, once. Events may arrive in any order."""
    now = now or timezone.now()
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.processed_at is not None:
            return event
        obj: dict[str, Any] = event.payload["data"]["object"]
        created = datetime.fromtimestamp(int(event.payload.get("created", 0)), tz=UTC)
        if event.type == "checkout.session.completed":
            _checkout_completed(obj)
        elif event.type.startswith("customer.subscription."):
            _subscription_sync(obj, event_created=created, deleted=event.type == "customer.subscription.deleted")
        elif event.type in ("invoice.paid", "invoice.payment_failed"):
            _invoice_note(obj, event.type, event_created=created)
        event.processed_at = now
        event.save(update_fields=["processed_at"])
    return event


def _tenant_by_schema(schema_name: str | None) -> Tenant | None:
    if not schema_name:
        return None
    return Tenant.objects.filter(schema_name=schema_name, is_template=False).first()


def _checkout_completed(session: dict[str, Any]) -> None:
    tenant = _tenant_by_schema(session.get("client_reference_id"))
    if tenant is None:
        logger.warning("stripe_checkout_for_unknown_tenant")
        return
    subscription = Subscription.objects.select_for_update().get(pk=subscription_for_tenant(tenant=tenant).pk)
    subscription.stripe_customer_id = session.get("customer") or subscription.stripe_customer_id
    subscription.stripe_subscription_id = session.get("subscription") or subscription.stripe_subscription_id
    plan = Plan.objects.filter(code=(session.get("metadata") or {}).get("plan", "")).first()
    subscription.plan = plan or subscription.plan
    subscription.save()
    audit_event_record(action="billing.checkout_completed", tenant=tenant, plan=plan.code if plan else "")


def _subscription_sync(obj: dict[str, Any], *, event_created: datetime, deleted: bool) -> None:
    tenant = _tenant_by_schema((obj.get("metadata") or {}).get("tenant"))
    rows = Subscription.objects.select_for_update()
    subscription = (
        rows.filter(tenant=tenant).first()
        if tenant is not None
        else rows.filter(stripe_subscription_id=obj["id"]).first()
        or rows.filter(stripe_customer_id=obj["customer"]).first()
    )
    if subscription is None:
        if tenant is None:
            logger.warning("stripe_subscription_for_unknown_tenant")
            return
        subscription = Subscription.objects.create(tenant=tenant)
    if subscription.synced_at is not None and event_created < subscription.synced_at:
        return  # an older state delivered late
    items = (obj.get("items") or {}).get("data") or []
    prices = {item["price"]["id"] for item in items}
    previous = subscription.status
    subscription.stripe_subscription_id = obj["id"]
    subscription.stripe_customer_id = obj["customer"]
    subscription.status = Subscription.Status.CANCELED if deleted else obj["status"]
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    subscription.plan = Plan.objects.filter(stripe_base_price_id__in=prices).first() or subscription.plan
    if items:
        subscription.current_period_start = datetime.fromtimestamp(items[0]["current_period_start"], tz=UTC)
        subscription.current_period_end = datetime.fromtimestamp(items[0]["current_period_end"], tz=UTC)
    subscription.synced_at = event_created
    if previous != subscription.status:
        subscription.status_since = event_created
    subscription.save()
    if previous != subscription.status:
        # The plan at the time lets the owner's pages replay monthly revenue over time.
        audit_event_record(
            action="billing.subscription_status",
            tenant=subscription.tenant,
            previous=previous,
            status=subscription.status,
            plan=subscription.plan.code if subscription.plan else "",
        )


def _invoice_note(invoice: dict[str, Any], event_type: str, *, event_created: datetime) -> None:
    """Keep the invoice for the business's billing page (a newer event wins) and audit the payment."""
    subscription = Subscription.objects.filter(stripe_customer_id=invoice.get("customer", "")).first()
    if subscription is None:
        return
    fields = {
        "status": str(invoice.get("status") or ""),
        "amount_due_cents": int(invoice.get("amount_due") or 0),
        "amount_paid_cents": int(invoice.get("amount_paid") or 0),
        "currency": str(invoice.get("currency") or "usd"),
        "hosted_invoice_url": str(invoice.get("hosted_invoice_url") or ""),
    }
    stored = Invoice.objects.select_for_update().filter(stripe_invoice_id=invoice["id"]).first()
    if stored is None:
        Invoice.objects.create(
            tenant=subscription.tenant,
            stripe_invoice_id=invoice["id"],
            created_at=datetime.fromtimestamp(int(invoice.get("created") or event_created.timestamp()), tz=UTC),
            synced_at=event_created,
            **fields,
        )
    elif event_created >= stored.synced_at:
        Invoice.objects.filter(pk=stored.pk).update(synced_at=event_created, **fields)
    audit_event_record(
        action="billing.invoice_paid" if event_type == "invoice.paid" else "billing.payment_failed",
        tenant=subscription.tenant,
        invoice=invoice["id"],
        amount_cents=invoice.get("amount_paid") or invoice.get("amount_due"),
    )


def usage_meter_identifier(record: UsageRecord) -> str:
    """The meter event id of ``record``: the same on every run, so Stripe counts it once."""
    return f"voicedesk-usage-{record.pk}"


def usage_report_tenant(
    *, tenant: Tenant, client: stripe.StripeClient | None = None, now: datetime | None = None
) -> int:
    """Send ``tenant``'s unreported call minutes to Stripe's meter, one event per call; return how many.

    Each record is marked as soon as Stripe has it, so a run that dies
    part-way resumes where it stopped; an event Stripe already has (sent just
    before a crash, not yet marked) is recognised by its identifier and only
    marked.
    """
    now = now or timezone.now()
    subscription = Subscription.objects.filter(tenant=tenant).exclude(stripe_customer_id="").first()
    if subscription is None:
        return 0
    client = client or stripe_client()
    sent = 0
    for record in UsageRecord.objects.filter(tenant=tenant, reported_at__isnull=True).order_by("pk"):
        happened = max(record.created_at, now - METER_EVENT_MAX_AGE + timedelta(hours=1))
        try:
            client.v1.billing.meter_events.create(
                {"event_name": settings.STRIPE_METER_EVENT_NAME, "identifier": usage_meter_identifier(record),
                 "timestamp": int(happened.timestamp()),
                 "payload": {"stripe_customer_id": subscription.stripe_customer_id,
                             "value": str(usage_minutes(record.seconds))}},
            )  # fmt: skip
        except stripe.InvalidRequestError as exc:
            if exc.code != "meter_event_duplicate_identifier":
                raise
        UsageRecord.objects.filter(pk=record.pk, reported_at__isnull=True).update(reported_at=now)
        sent += 1
    if sent:
        logger.info("usage_reported", tenant=tenant.schema_name, events=sent)
    return sent


@dataclass(frozen=True, slots=True)
class ReconcileRow:
    tenant: str
    ours: int
    stripe: float

    @property
    def difference(self) -> float:
        return self.ours - self.stripe


def billing_reconcile(
    *, start: datetime, end: datetime, client: stripe.StripeClient | None = None
) -> list[ReconcileRow]:
    """Our reported minutes per subscribed business against Stripe's meter summary, for ``[start, end)``."""
    client = client or stripe_client()
    meter_id = _meter_ensure(client)
    rows = []
    for subscription in Subscription.objects.exclude(stripe_customer_id="").select_related("tenant"):
        ours = sum(
            usage_minutes(seconds)
            for seconds in UsageRecord.objects.filter(
                tenant=subscription.tenant, reported_at__isnull=False, created_at__gte=start, created_at__lt=end
            ).values_list("seconds", flat=True)
        )
        summaries = client.v1.billing.meters.event_summaries.list(
            meter_id,
            {"customer": subscription.stripe_customer_id, "start_time": int(start.timestamp()),
             "end_time": int(end.timestamp())},
        ).data  # fmt: skip
        rows.append(ReconcileRow(subscription.tenant.schema_name, ours, sum(s.aggregated_value for s in summaries)))
    return rows


def usage_report_tenant_ids() -> list[int]:
    """Businesses with a Stripe customer and minutes not yet reported."""
    customers = Subscription.objects.exclude(stripe_customer_id="").values_list("tenant_id", flat=True)
    return list(
        UsageRecord.objects.filter(tenant_id__in=customers, reported_at__isnull=True)
        .values_list("tenant_id", flat=True)
        .distinct()
        .order_by("tenant_id")
    )


# The plans a new platform offers (also made by migration 0004); the owner edits them in the admin.
DEFAULT_PLANS: tuple[dict[str, Any], ...] = (
    {"code": "starter", "name": "Starter", "monthly_price_cents": 4900, "included_minutes": 300,
     "overage_cents_per_minute": Decimal("12.000"), "max_concurrent_calls": 2, "max_numbers": 1, "max_seats": 3},
    {"code": "growth", "name": "Growth", "monthly_price_cents": 14900, "included_minutes": 1200,
     "overage_cents_per_minute": Decimal("10.000"), "max_concurrent_calls": 5, "max_numbers": 3, "max_seats": 10},
    {"code": "pro", "name": "Pro", "monthly_price_cents": 39900, "included_minutes": 4000,
     "overage_cents_per_minute": Decimal("8.000"), "max_concurrent_calls": 15, "max_numbers": 10, "max_seats": 30},
)  # fmt: skip


def plan_defaults_ensure() -> list[Plan]:
    """Create the default plans that are missing; plans already there are left as the owner edited them."""
    return [Plan.objects.get_or_create(code=plan["code"], defaults=plan)[0] for plan in DEFAULT_PLANS]


# Subscription states in which Stripe no longer bills the customer.
SUBSCRIPTION_ENDED = frozenset({Subscription.Status.NONE, Subscription.Status.CANCELED})


def tenant_billing_erase(event: TenantErasure) -> ErasurePart:
    """The tenant-erasure hook: the business's usage records and subscription row.

    The invoices are Stripe's (kept there as accounting law requires, under
    the customer's id, which the erasure's audit row keeps). So the erasure
    waits until Stripe has everything: a subscription still billing must be
    canceled first, and minutes not yet reported go in the next usage report
    (every quarter hour). Then our copies go with the tenant.
    """
    tenant = event.tenant
    subscription = Subscription.objects.filter(tenant=tenant).first()
    records = UsageRecord.objects.filter(tenant=tenant)
    part = ErasurePart(
        app="billing", counts={"usage_records": records.count(), "subscriptions": int(bool(subscription))}
    )
    if subscription is not None and subscription.stripe_customer_id:
        part.kept = {
            "stripe_customer_id": subscription.stripe_customer_id,
            "stripe_subscription_id": subscription.stripe_subscription_id,
        }
        if subscription.stripe_subscription_id and subscription.status not in SUBSCRIPTION_ENDED:
            part.blockers.append(
                f"The Stripe subscription is {subscription.status}: "
                "cancel it first, so the business is no longer billed."
            )
        unreported = records.filter(reported_at__isnull=True).count()
        if unreported:
            part.blockers.append(
                f"{unreported} call(s) not yet reported to Stripe: wait for the usage report (every quarter hour)."
            )
    if not event.dry_run and not part.blockers:
        records.delete()
        Subscription.objects.filter(tenant=tenant).delete()
    return part
