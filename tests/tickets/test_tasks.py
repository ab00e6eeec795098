"""The ticket actor through a real Redis broker and worker, in the call's schema."""

import pytest
from django_tenants.utils import tenant_context

from calls.services import call_finish
from tests.brokers import private_broker, work_off
from tests.factories import CallFactory, outcome
from tickets.models import Ticket
from tickets.tasks import ticket_generate


@pytest.mark.django_db(transaction=True)
def test_call_finish_sends_the_actor_which_makes_one_ticket_in_the_tenant(tenant_a, tenant_b) -> None:
    with private_broker(ticket_generate) as broker:
        with tenant_context(tenant_a.tenant):
            call = CallFactory(status="in_progress", ended_at=None)
            call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=outcome(), completed=True)
            # A retried message must not make a second ticket.
            ticket_generate.send(call.pk)
        work_off(broker)
        with tenant_context(tenant_a.tenant):
            assert list(Ticket.objects.values_list("call_id", "caller_name")) == [(call.pk, "Maria Gonzalez")]
        with tenant_context(tenant_b.tenant):
            assert Ticket.objects.count() == 0
