"""Billing on the platform admin: plans are edited here; usage, subscriptions and Stripe events are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.functions import TruncMonth
from django.http import HttpRequest

from billing.models import Invoice, Plan, StripeEvent, Subscription, UsageRecord


class MonthFilter(admin.SimpleListFilter):
    """The calendar months (UTC) that have usage, newest first."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        months = (
            UsageRecord.objects.annotate(month=TruncMonth("created_at"))
            .values_list("month", flat=True)
            .distinct()
            .order_by("-month")
        )
        return [(f"{month:%Y-%m}", f"{month:%B %Y}") for month in months if month is not None]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or ""
        year, _, month = value.partition("-")
        if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
            return queryset
        return queryset.filter(created_at__year=int(year), created_at__month=int(month))


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tenant", "call_id", "seconds", "minutes", "reported_at")
    list_filter = ("tenant", MonthFilter, ("reported_at", admin.EmptyFieldListFilter))
    search_fields = ("tenant__name", "tenant__schema_name", "=call_id")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    fields = ("tenant", "call_id", "seconds", "created_at", "reported_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    @admin.display(description="Minutes")
    def minutes(self, obj: UsageRecord) -> str:
        return f"{obj.seconds / 60:.1f}"


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Prices reach Stripe through ``manage.py billing_catalog_sync``; the Stripe ids are not typed in."""

    list_display = (
        "name", "code", "monthly_price_cents", "included_minutes", "overage_cents_per_minute",
        "max_concurrent_calls", "max_numbers", "max_seats", "is_active",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("code", "name", "is_active")}),
        ("Price", {"fields": ("monthly_price_cents", "included_minutes", "overage_cents_per_minute")}),
        ("Limits", {"fields": ("max_concurrent_calls", "max_numbers", "max_seats"),
                    "description": "Calls in progress at once (a call beyond hears that the lines are busy "
                                   "and leaves a ticket), phone numbers, and staff seats (members of the business)."}),
        ("Stripe", {"fields": ("stripe_product_id", "stripe_base_price_id", "stripe_metered_price_id")}),
    )  # fmt: skip
    readonly_fields = ("stripe_product_id", "stripe_base_price_id", "stripe_metered_price_id")

    def has_delete_permission(self, request: HttpRequest, obj: Plan | None = None) -> bool:
        # Subscriptions point at plans; retire a plan by making it inactive.
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    """What Stripe last told us; changed only by Stripe's webhooks."""

    list_display = ("tenant", "plan", "status", "cancel_at_period_end", "current_period_end", "updated_at")
    list_filter = ("status", "plan")
    list_select_related = ("tenant", "plan")
    search_fields = ("tenant__name", "tenant__schema_name", "=stripe_customer_id", "=stripe_subscription_id")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "type", "event_id", "processed_at", "error")
    list_filter = ("type", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id",)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Invoices as Stripe's webhooks last described them."""

    list_display = ("created_at", "tenant", "stripe_invoice_id", "status", "amount_due_cents", "amount_paid_cents")
    list_filter = ("status",)
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "tenant__schema_name", "=stripe_invoice_id")
