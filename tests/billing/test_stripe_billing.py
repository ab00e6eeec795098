"""Subscriptions and metering through the real stripe SDK, against the Stripe emulator on loopback."""

from __future__ import annotations

import io
import json
import urllib.request
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import Invoice, Plan, StripeEvent, Subscription, UsageRecord
from billing.services import (
    billing_catalog_sync,
    billing_reconcile,
    checkout_session_start,
    portal_session_start,
    stripe_event_process,
    usage_meter_identifier,
    usage_report_tenant,
)
from billing.stripe_emulator import StripeEmulator
from billing.stripe_gateway import stripe_client
from tenants.models import AuditEvent
from tests.billing.conftest import webhook_post
from tests.factories import MembershipFactory


def _pay(url: str) -> None:
    """The owner presses "Subscribe" on the hosted page (the redirect target is not served here)."""
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 (loopback emulator)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 (loopback emulator)


def _deliver_all(emulator: StripeEmulator, *, start: int = 0) -> list[StripeEvent]:
    """Deliver the emulator's events through the webhook endpoint, then apply them as the worker would."""
    stored = []
    for event in emulator.state.events[start:]:
        assert webhook_post(event).status_code == 200
        stored.append(StripeEvent.objects.get(event_id=event["id"]))
    for row in stored:
        stripe_event_process(event_pk=row.pk)
    return stored


@pytest.fixture
def subscribed(tenant_a, stripe_emulator: StripeEmulator) -> Subscription:
    starter = Plan.objects.get(code="starter")
    url = checkout_session_start(
        tenant=tenant_a.tenant, plan=starter, actor=tenant_a.owner,
        success_url="http://127.0.0.1:9/billing/done", cancel_url="http://127.0.0.1:9/billing",
    )  # fmt: skip
    _pay(url)
    _deliver_all(stripe_emulator)
    return Subscription.objects.get(tenant=tenant_a.tenant)


def test_catalog_sync_makes_the_meter_and_each_plans_prices_once(db, stripe_emulator: StripeEmulator) -> None:
    plans = billing_catalog_sync()
    again = billing_catalog_sync()

    assert [p.code for p in plans] == ["starter", "growth", "pro"]
    assert [(p.stripe_base_price_id, p.stripe_metered_price_id) for p in plans] == [
        (p.stripe_base_price_id, p.stripe_metered_price_id) for p in again
    ]
    client = stripe_client()
    starter = Plan.objects.get(code="starter")
    base = client.v1.prices.retrieve(starter.stripe_base_price_id)
    minutes = client.v1.prices.retrieve(starter.stripe_metered_price_id)
    assert (base.unit_amount, base.recurring.usage_type) == (4900, "licensed")
    assert (minutes.recurring.usage_type, [t["up_to"] for t in minutes.tiers]) == ("metered", [300, None])
    assert [t["unit_amount_decimal"] for t in minutes.tiers] == [Decimal("0"), Decimal("12.000")]
    assert len(client.v1.billing.meters.list().data) == 1


def test_catalog_sync_remakes_prices_stripe_no_longer_has(db, stripe_emulator: StripeEmulator) -> None:
    Plan.objects.filter(code="starter").update(
        stripe_product_id="prod_gone", stripe_base_price_id="price_gone", stripe_metered_price_id="price_gone2"
    )
    billing_catalog_sync()
    starter = Plan.objects.get(code="starter")
    assert starter.stripe_base_price_id.startswith("price_")
    assert starter.stripe_base_price_id != "price_gone"
    assert stripe_client().v1.prices.retrieve(starter.stripe_base_price_id).unit_amount == 4900


def test_checkout_then_webhooks_make_the_business_active_on_its_plan(subscribed: Subscription) -> None:
    assert subscribed.status == Subscription.Status.ACTIVE
    assert subscribed.plan == Plan.objects.get(code="starter")
    assert subscribed.stripe_customer_id.startswith("cus_")
    assert subscribed.stripe_subscription_id.startswith("sub_")
    assert subscribed.current_period_end - subscribed.current_period_start == timedelta(days=30)
    assert set(AuditEvent.objects.filter(tenant=subscribed.tenant).values_list("action", flat=True)) >= {
        "billing.checkout_started", "billing.checkout_completed", "billing.subscription_status", "billing.invoice_paid",
    }  # fmt: skip


def test_only_the_owner_starts_a_checkout_and_nothing_changes_otherwise(tenant_a, stripe_emulator) -> None:
    admin = MembershipFactory(tenant=tenant_a.tenant, role="admin").user
    with pytest.raises(PermissionDenied):
        checkout_session_start(
            tenant=tenant_a.tenant, plan=Plan.objects.get(code="starter"), actor=admin,
            success_url="http://x/ok", cancel_url="http://x/no",
        )  # fmt: skip
    assert not Subscription.objects.filter(tenant=tenant_a.tenant).exclude(stripe_customer_id="").exists()
    assert [o for o in stripe_emulator.state.objects.values() if o["object"] == "customer"] == []


def test_a_subscribed_business_is_sent_to_the_portal_not_a_second_checkout(tenant_a, subscribed) -> None:
    with pytest.raises(ValidationError) as excinfo:
        checkout_session_start(
            tenant=tenant_a.tenant, plan=Plan.objects.get(code="growth"), actor=tenant_a.owner,
            success_url="http://x/ok", cancel_url="http://x/no",
        )  # fmt: skip
    assert excinfo.value.code == "subscribed"
    url = portal_session_start(tenant=tenant_a.tenant, actor=tenant_a.owner, return_url="http://x/billing")
    assert "/p/session/bps_" in url


def test_payment_failure_then_cancellation_follow_stripe(subscribed: Subscription, stripe_emulator) -> None:
    start = len(stripe_emulator.state.events)
    stripe_emulator.subscription_status_set(subscribed.stripe_subscription_id, "past_due")
    _deliver_all(stripe_emulator, start=start)
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.PAST_DUE
    assert AuditEvent.objects.filter(tenant=subscribed.tenant, action="billing.payment_failed").count() == 1

    start = len(stripe_emulator.state.events)
    stripe_emulator.subscription_cancel(subscribed.stripe_subscription_id)
    _deliver_all(stripe_emulator, start=start)
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.CANCELED


def test_an_older_event_delivered_late_does_not_undo_a_newer_state(subscribed: Subscription, stripe_emulator) -> None:
    start = len(stripe_emulator.state.events)
    stripe_emulator.subscription_status_set(subscribed.stripe_subscription_id, "past_due")
    stripe_emulator.subscription_status_set(subscribed.stripe_subscription_id, "active")
    events = [e for e in stripe_emulator.state.events[start:] if e["type"] == "customer.subscription.updated"]
    events[0]["created"] -= 60  # the past_due update happened a minute before the recovery
    for event in reversed(events):  # delivered newest first
        webhook_post(event)
        stripe_event_process(event_pk=StripeEvent.objects.get(event_id=event["id"]).pk)
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.ACTIVE


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [("whsec_forged", 0), ("whsec_billing_tests", 301)],
    ids=["forged", "stale"],
)
def test_forged_and_stale_webhooks_are_refused_and_change_nothing(db, stripe_emulator, secret: str, age_s: int) -> None:
    event = stripe_emulator.event_emit("customer.subscription.deleted", {"id": "sub_x", "customer": "cus_x"})
    response = webhook_post(event, secret=secret, age_s=age_s)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_unsigned_or_oversized_webhook_is_refused(db, stripe_emulator) -> None:
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    assert client.post("/stripe/webhook", data=b"{}", content_type="application/json").status_code == 400
    huge = client.post("/stripe/webhook", data=b"x" * 600_000, content_type="application/json")
    assert huge.status_code == 413
    assert not StripeEvent.objects.exists()


def test_a_replayed_webhook_is_stored_and_applied_once(subscribed: Subscription, stripe_emulator) -> None:
    first = stripe_emulator.state.events[0]
    replay = webhook_post(first)
    assert (replay.status_code, json.loads(replay.content)) == (200, {"received": True, "duplicate": True})
    assert StripeEvent.objects.filter(event_id=first["id"]).count() == 1


def _usage(tenant: Any, seconds: list[int]) -> list[UsageRecord]:
    return [UsageRecord.objects.create(tenant=tenant, call_id=1000 + i, seconds=s) for i, s in enumerate(seconds)]


def _stripe_minutes(subscription: Subscription) -> float:
    now = timezone.now()
    start, end = now - timedelta(days=1), now + timedelta(days=1)
    rows = billing_reconcile(start=start, end=end)
    return next(row.stripe for row in rows if row.tenant == subscription.tenant.schema_name)


def test_usage_is_reported_in_started_minutes_once(tenant_a, subscribed: Subscription) -> None:
    _usage(tenant_a.tenant, [59, 60, 61, 600])

    assert usage_report_tenant(tenant=tenant_a.tenant) == 4
    assert usage_report_tenant(tenant=tenant_a.tenant) == 0

    assert _stripe_minutes(subscribed) == 1 + 1 + 2 + 10
    assert not UsageRecord.objects.filter(tenant=tenant_a.tenant, reported_at__isnull=True).exists()


def test_a_run_that_died_after_sending_resumes_and_counts_each_minute_once(tenant_a, subscribed) -> None:
    records = _usage(tenant_a.tenant, [120, 180, 240])
    # What a run killed after Stripe took the first event, before marking it, leaves behind.
    stripe_client().v1.billing.meter_events.create(
        {"event_name": "voicedesk_call_minutes", "identifier": usage_meter_identifier(records[0]),
         "payload": {"stripe_customer_id": subscribed.stripe_customer_id, "value": "2"}}
    )  # fmt: skip

    assert usage_report_tenant(tenant=tenant_a.tenant) == 3

    assert _stripe_minutes(subscribed) == 2 + 3 + 4
    rows = billing_reconcile(start=timezone.now() - timedelta(days=1), end=timezone.now() + timedelta(days=1))
    assert [(r.tenant, r.ours, r.difference) for r in rows] == [("alpha", 9, 0.0)]


def test_nothing_is_reported_for_a_business_without_a_stripe_customer(tenant_a, stripe_emulator) -> None:
    _usage(tenant_a.tenant, [60])
    assert usage_report_tenant(tenant=tenant_a.tenant) == 0
    assert UsageRecord.objects.get(tenant=tenant_a.tenant).reported_at is None
    assert stripe_emulator.state.meter_events == {}


def test_stripe_errors_other_than_a_duplicate_stop_the_run_and_leave_the_record_unreported(
    tenant_a, subscribed: Subscription
) -> None:
    Subscription.objects.filter(pk=subscribed.pk).update(stripe_customer_id="cus_unknown")
    _usage(tenant_a.tenant, [60])
    with pytest.raises(stripe.InvalidRequestError):
        usage_report_tenant(tenant=tenant_a.tenant)
    assert UsageRecord.objects.get(tenant=tenant_a.tenant).reported_at is None


def _invoices(tenant) -> list[tuple[str, int, int, str]]:
    return [
        (i.status, i.amount_due_cents, i.amount_paid_cents, i.hosted_invoice_url)
        for i in Invoice.objects.filter(tenant=tenant)
    ]


def test_invoices_are_kept_from_the_webhooks_and_a_late_older_event_does_not_undo_a_payment(
    subscribed: Subscription, stripe_emulator
) -> None:
    paid = next(o for o in stripe_emulator.state.objects.values() if o["object"] == "invoice")
    assert _invoices(subscribed.tenant) == [("paid", 4900, 4900, f"{stripe_emulator.url}/i/{paid['id']}")]

    start = len(stripe_emulator.state.events)
    stripe_emulator.subscription_status_set(subscribed.stripe_subscription_id, "past_due")
    failed = next(e for e in stripe_emulator.state.events[start:] if e["type"] == "invoice.payment_failed")
    # The retry that later paid this invoice, delivered before the older failure.
    retried = json.loads(json.dumps(failed))
    retried.update(id="evt_retry_paid", type="invoice.paid", created=failed["created"] + 60)
    retried["data"]["object"].update(status="paid", amount_paid=4900)
    for event in (retried, failed):
        assert webhook_post(event).status_code == 200
        stripe_event_process(event_pk=StripeEvent.objects.get(event_id=event["id"]).pk)

    invoice_id = failed["data"]["object"]["id"]
    assert Invoice.objects.get(stripe_invoice_id=invoice_id).status == "paid"
    assert _invoices(subscribed.tenant) == [
        ("paid", 4900, 4900, f"{stripe_emulator.url}/i/{invoice_id}"),
        ("paid", 4900, 4900, f"{stripe_emulator.url}/i/{paid['id']}"),
    ]


def test_the_report_command_names_an_unknown_business(db) -> None:
    with pytest.raises(CommandError, match=r"No business 'nowhere'\."):
        call_command("billing_report_usage", "--tenant", "nowhere")


def test_reconcile_lists_each_business_and_the_differences_from_stripe(tenant_a, subscribed: Subscription) -> None:
    _usage(tenant_a.tenant, [60, 120])
    assert usage_report_tenant(tenant=tenant_a.tenant) == 2
    period = f"{timezone.now():%Y-%m}"
    out = io.StringIO()
    call_command("billing_reconcile", "--period", period, stdout=out)
    assert out.getvalue().splitlines() == ["alpha: ours 3 min, Stripe 3 min", "1 businesses, 0 differ."]

    # A minute we believe reported that Stripe never had.
    UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=2000, seconds=30, reported_at=timezone.now())
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 businesses differ from Stripe\."):
        call_command("billing_reconcile", "--period", period, stdout=out)
    assert out.getvalue().splitlines() == ["alpha: ours 4 min, Stripe 3 min  DIFFERS", "1 businesses, 1 differ."]

    with pytest.raises(CommandError, match=r"--period must look like 2026-11\."):
        call_command("billing_reconcile", "--period", "November")
