"""Reads across calls and tickets for the overview page. The tenant's schema must be active."""

from __future__ import annotations

from calls.models import Call
from calls.selectors import schema_check
from tenants.models import Tenant
from tickets.models import CLOSED_STATUSES, Ticket
from tickets.selectors import callbacks_waiting


def dashboard_counts(*, tenant: Tenant) -> dict[str, int]:
    """Figures for the overview page; callbacks count until the queue is done with them.

    A callback of a resolved or closed ticket is not waiting for anyone, whatever its row says.
    """
    schema_check(tenant=tenant)
    return {
        "calls": Call.objects.count(),
        "open_tickets": Ticket.objects.exclude(status__in=CLOSED_STATUSES).count(),
        "pending_callbacks": callbacks_waiting().count(),
    }
