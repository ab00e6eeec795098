"""Call end reaches tickets and billing through the hooks they register, after commit only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from dramatiq.brokers.redis import RedisBroker

from billing.models import UsageRecord
from billing.tasks import usage_meter_call, usage_meter_on_call_finished
from calls import hooks
from calls.hooks import CallFinished, call_finished_hook_register, call_finished_notify
from calls.models import Call
from calls.services import call_finish
from calls.tasks import call_transcript_on_call_finished
from tests.brokers import private_broker, work_off
from tests.factories import CallFactory, outcome
from tickets.models import Ticket
from tickets.tasks import ticket_generate, ticket_generate_on_call_finished


class SurroundingWriteError(RuntimeError):
    pass


def _finish_then_fail(call_id: int) -> None:
    """Finish the call inside a transaction that a later write rolls back."""
    with transaction.atomic():
        call_finish(call_id=call_id, end_reason="caller_hangup", outcome=outcome(), completed=True)
        raise SurroundingWriteError("the surrounding write failed")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[CallFinished]:
    """Only a recording hook is registered: what the hooks are told, and when."""
    events: list[CallFinished] = []
    monkeypatch.setattr(hooks, "_call_finished_hooks", [])
    call_finished_hook_register(events.append)
    return events


def test_tickets_and_billing_register_their_hooks_at_start_up() -> None:
    # And calls' own, the post-call transcript (in the order the apps are installed).
    assert hooks.call_finished_hooks() == (
        usage_meter_on_call_finished,
        call_transcript_on_call_finished,
        ticket_generate_on_call_finished,
    )


def test_registering_a_hook_twice_runs_it_once(recorded) -> None:
    call_finished_hook_register(recorded.append)
    call_finished_notify(CallFinished(schema_name="alpha", call_id=7, status="completed", completed=True))
    assert recorded == [CallFinished(schema_name="alpha", call_id=7, status="completed", completed=True)]


def test_a_failing_hook_does_not_keep_the_others_from_running(recorded) -> None:
    def failing(event: CallFinished) -> None:
        raise SurroundingWriteError("hook down")

    hooks._call_finished_hooks.insert(0, failing)
    event = CallFinished(schema_name="alpha", call_id=7, status="abandoned", completed=False)
    call_finished_notify(event)
    assert recorded == [event]


def test_the_hooks_run_once_after_commit(in_tenant_a, recorded, django_capture_on_commit_callbacks) -> None:
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=outcome(), completed=True)
        # Not before the transaction commits.
        assert recorded == []
        # A second finish (socket drop after stop) is not a second event.
        call_finish(call_id=call.pk, end_reason="socket_closed", outcome=outcome(), completed=False)
    assert recorded == [CallFinished(schema_name="alpha", call_id=call.pk, status="completed", completed=True)]


def test_a_rolled_back_finish_reaches_no_hook(in_tenant_a, recorded, django_capture_on_commit_callbacks) -> None:
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(SurroundingWriteError):
        _finish_then_fail(call.pk)
    assert recorded == []
    call.refresh_from_db()
    assert (call.status, call.ended_at) == (Call.Status.IN_PROGRESS, None)


@pytest.fixture
def broker() -> Iterator[RedisBroker]:
    """A real Redis broker of its own, with the production tenancy middleware, for both actors."""
    with private_broker(ticket_generate, usage_meter_call) as broker:
        yield broker


@pytest.mark.django_db(transaction=True)
def test_a_finished_call_gets_one_ticket_and_one_usage_record_in_its_tenant(broker, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(
            status=Call.Status.IN_PROGRESS, answered_at=timezone.now() - timedelta(seconds=42.5), ended_at=None
        )
        call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=outcome(), completed=True)
        call_finish(call_id=call.pk, end_reason="socket_closed", outcome=outcome(), completed=False)
    work_off(broker)
    with tenant_context(tenant_a.tenant):
        assert list(Ticket.objects.values_list("call_id", "caller_name")) == [(call.pk, "Maria Gonzalez")]
        assert list(UsageRecord.objects.values_list("tenant__schema_name", "call_id", "seconds")) == [
            ("alpha", call.pk, 43)
        ]
    with tenant_context(tenant_b.tenant):
        assert Ticket.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_finish_makes_no_ticket_and_no_usage_record(broker, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(status=Call.Status.IN_PROGRESS, answered_at=timezone.now(), ended_at=None)
        with pytest.raises(SurroundingWriteError):
            _finish_then_fail(call.pk)
    assert {queue: broker.client.llen(f"{broker.namespace}:{queue}") for queue in broker.get_declared_queues()} == {
        "default": 0
    }
    work_off(broker)
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0
        assert UsageRecord.objects.count() == 0
        call.refresh_from_db()
        assert call.ended_at is None
