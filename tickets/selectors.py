"""Reads for tickets. The tenant's schema must be active; it is passed to make that explicit."""

from __future__ import annotations

from django.db import connection

from calls.models import Call
from tenants.models import Tenant
from tickets.models import Callback, Ticket


def dashboard_counts(*, tenant: Tenant) -> dict[str, int]:
    if connection.schema_name != tenant.schema_name:
        raise RuntimeError(f"dashboard_counts for {tenant.schema_name} with schema {connection.schema_name} active")
    return {
        "calls": Call.objects.count(),
        "open_tickets": Ticket.objects.exclude(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED]).count(),
        "pending_callbacks": Callback.objects.filter(outcome=Callback.Outcome.PENDING).count(),
    }
