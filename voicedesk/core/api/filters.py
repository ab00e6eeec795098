"""Filter helpers shared by the API's resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField


class StableOrderingFilter(django_filters.OrderingFilter):
    """``?ordering=-due_at``; ties are broken by id so pages never repeat or skip a row."""

    def filter(self, qs: QuerySet[Any], value: list[str] | None) -> QuerySet[Any]:
        if not value:
            return qs
        ordering = [self.get_ordering_value(param) for param in value]
        if not any(field.lstrip("-") in ("id", "pk") for field in ordering):
            ordering.append("-id" if ordering[0].startswith("-") else "id")
        return qs.order_by(*ordering)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, handed to the database in UTC.

    ISO 8601 allows offsets PostgreSQL refuses (beyond 15:59, e.g. ``+20:27``),
    and a date at the edge of the calendar may not exist in UTC: the first is
    converted, the second refused as bad input rather than a server error.
    """

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValidationError("Enter a date and time within the calendar.", code="invalid") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value reaches the database in UTC (``UtcIsoDateTimeField``)."""

    field_class = UtcIsoDateTimeField
