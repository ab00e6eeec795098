"""Reads for tickets. The tenant's schema must be active; it is passed to make that explicit."""

from __future__ import annotations

from calls.models import Call
from tenants.models import Tenant
from tickets.models import Callback, Ticket
from voicedesk.tenancy import current_schema


def dashboard_counts(*, tenant: Tenant) -> dict[str, int]:
    if current_schema() != tenant.schema_name:
        raise RuntimeError(f"dashboard_counts for {tenant.schema_name} with schema {current_schema()} active")
    return {
        "calls": Call.objects.count(),
        "open_tickets": Ticket.objects.exclude(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED]).count(),
        "pending_callbacks": Callback.objects.filter(outcome=Callback.Outcome.PENDING).count(),
    }
