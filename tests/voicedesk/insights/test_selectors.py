"""The overview page's counts read calls and tickets together."""

from datetime import UTC, datetime

import pytest

from tests.factories import CallbackFactory, CallFactory, TicketFactory
from voicedesk.insights.selectors import dashboard_counts

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def test_dashboard_counts_count_callbacks_until_the_queue_is_done_with_them(in_tenant_a) -> None:
    CallFactory()
    TicketFactory(status="new")
    TicketFactory(status="pending")
    TicketFactory(status="resolved")
    CallbackFactory()  # never tried
    CallbackFactory(outcome="no_answer", attempts=1)  # tried, still waiting
    CallbackFactory(outcome="reached", completed_at=MONDAY_10)

    assert dashboard_counts(tenant=in_tenant_a.tenant) == {"calls": 1, "open_tickets": 5, "pending_callbacks": 2}


def test_dashboard_counts_leave_out_test_calls(in_tenant_a) -> None:
    CallFactory()
    CallFactory(carrier="browser", is_test=True)

    assert dashboard_counts(tenant=in_tenant_a.tenant)["calls"] == 1


def test_dashboard_counts_leave_out_callbacks_of_solved_tickets(in_tenant_a) -> None:
    CallbackFactory(ticket=TicketFactory(status="pending"))
    CallbackFactory(ticket=TicketFactory(status="resolved"))
    CallbackFactory(ticket=TicketFactory(status="closed"))

    assert dashboard_counts(tenant=in_tenant_a.tenant)["pending_callbacks"] == 1


def test_dashboard_counts_refuse_another_schema(in_tenant_a, tenant_b) -> None:
    with pytest.raises(RuntimeError, match=r"^read for beta with schema alpha active$"):
        dashboard_counts(tenant=tenant_b.tenant)
