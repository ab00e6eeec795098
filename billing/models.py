"""Public-schema billing records: metered usage per tenant."""

from __future__ import annotations

import math

from django.db import models


def usage_minutes(seconds: int) -> int:
    """Minutes billed for ``seconds`` of call: every started minute."""
    return math.ceil(seconds / 60)


class UsageRecord(models.Model):
    """Seconds of handled calls, reported to Stripe by the metering job."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_records")
    call_id = models.BigIntegerField()
    seconds = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    # What the call used of each engine, e.g. ``{"stt": {"whisper": 41.2}, "tts": {"offline": 63.0},
    # "llm": {}}`` (seconds of speech; tokens for language models), and its price in
    # cents from ``settings.BILLING_PROVIDER_UNIT_COSTS`` when it was metered.
    provider_usage = models.JSONField(default=dict, blank=True)
    provider_cost_cents = models.DecimalField(max_digits=12, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "call_id"], name="usage_record_tenant_call_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.schema_name}: {self.seconds}s"

    @property
    def minutes(self) -> int:
        """Minutes billed for the call: every started minute."""
        return usage_minutes(self.seconds)


class Plan(models.Model):
    """What a business pays: a monthly base price with included minutes, and metered minutes beyond.

    ``stripe_*_price_id`` are filled by ``billing_catalog_sync``; a plan
    without them cannot be subscribed to yet.
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    monthly_price_cents = models.PositiveIntegerField()
    included_minutes = models.PositiveIntegerField()
    # Per minute beyond the included ones; Stripe takes sub-cent decimal amounts.
    overage_cents_per_minute = models.DecimalField(max_digits=8, decimal_places=3)
    max_concurrent_calls = models.PositiveSmallIntegerField(default=2)
    max_numbers = models.PositiveSmallIntegerField(default=1)
    max_seats = models.PositiveSmallIntegerField(default=3)
    is_active = models.BooleanField(default=True)
    stripe_product_id = models.CharField(max_length=64, blank=True)
    stripe_base_price_id = models.CharField(max_length=64, blank=True)
    stripe_metered_price_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["monthly_price_cents"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """A business's Stripe customer and subscription, as Stripe last told us (webhooks)."""

    class Status(models.TextChoices):
        NONE = "none", "No subscription"
        INCOMPLETE = "incomplete", "Incomplete"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        PAUSED = "paused", "Paused"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="subscriptions")
    stripe_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NONE)
    # When ``status`` last changed (Stripe's event time): the past-due grace period counts from it.
    status_since = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # Stripe's time of the last subscription event applied: events arrive in
    # any order, and an older one must not undo a newer state.
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant.schema_name}: {self.status}"


class StripeEvent(models.Model):
    """Every webhook event Stripe sent, stored once by its id and processed by a worker."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Invoice(models.Model):
    """A Stripe invoice of a business, as its ``invoice.*`` webhooks last described it."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="invoices")
    stripe_invoice_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=20)
    amount_due_cents = models.IntegerField(default=0)
    amount_paid_cents = models.IntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    # Stripe's page for this invoice (view, pay, download the PDF); from a verified webhook.
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    # Stripe's creation time of the invoice, and of the event that last changed this row.
    created_at = models.DateTimeField()
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.stripe_invoice_id}: {self.status}"
