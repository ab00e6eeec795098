"""Filter helpers shared by the API's resources."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet


class StableOrderingFilter(django_filters.OrderingFilter):
    """``?ordering=-due_at``; ties are broken by id so pages never repeat or skip a row."""

    def filter(self, qs: QuerySet[Any], value: list[str] | None) -> QuerySet[Any]:
        if not value:
            return qs
        ordering = [self.get_ordering_value(param) for param in value]
        if not any(field.lstrip("-") in ("id", "pk") for field in ordering):
            ordering.append("-id" if ordering[0].startswith("-") else "id")
        return qs.order_by(*ordering)
