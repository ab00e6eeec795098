"""Metered usage on the platform admin: read-only, it is what the tenants are billed for."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.functions import TruncMonth
from django.http import HttpRequest

from billing.models import UsageRecord


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
