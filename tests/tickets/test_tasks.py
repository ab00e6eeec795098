"""The ticket actor through a real Redis broker and worker, in the call's schema."""

import uuid

import dramatiq
import pytest
from django.conf import settings
from django_dramatiq.middleware import DbConnectionsMiddleware
from django_tenants.utils import tenant_context
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from calls.services import call_finish
from tests.factories import CallFactory, outcome
from tickets.models import Ticket
from tickets.tasks import ticket_generate
from voicedesk.core.dramatiq_tenancy import TenantMiddleware


@pytest.mark.django_db(transaction=True)
def test_call_finish_sends_the_actor_which_makes_one_ticket_in_the_tenant(tenant_a, tenant_b) -> None:
    broker = RedisBroker(url=settings.REDIS_URL, namespace=f"vd-test-{uuid.uuid4().hex[:8]}")
    broker.add_middleware(DbConnectionsMiddleware())
    broker.add_middleware(TenantMiddleware())
    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    ticket_generate.broker = broker
    broker.declare_actor(ticket_generate)
    try:
        with tenant_context(tenant_a.tenant):
            call = CallFactory(status="in_progress", ended_at=None)
            call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=outcome(), completed=True)
            # A retried message must not make a second ticket.
            ticket_generate.send(call.pk)
        worker = Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            broker.join(ticket_generate.queue_name, timeout=20_000)
            worker.join()
        finally:
            worker.stop()
        with tenant_context(tenant_a.tenant):
            assert list(Ticket.objects.values_list("call_id", "caller_name")) == [(call.pk, "Maria Gonzalez")]
        with tenant_context(tenant_b.tenant):
            assert Ticket.objects.count() == 0
    finally:
        ticket_generate.broker = previous
        dramatiq.set_broker(previous)
        broker.flush_all()
        broker.close()
