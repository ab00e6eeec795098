from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import UsageRecord
from billing.services import usage_record_call, usage_unmetered_call_ids
from tests.factories import CallFactory


def test_a_finished_call_is_metered_once_in_whole_seconds(in_tenant_a) -> None:
    answered = timezone.now() - timedelta(seconds=100)
    call = CallFactory(answered_at=answered, ended_at=answered + timedelta(seconds=61.2))

    first = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)
    second = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)

    assert first == second
    assert (first.seconds, first.tenant, first.call_id) == (62, in_tenant_a.tenant, call.pk)
    assert UsageRecord.objects.count() == 1


def test_unanswered_calls_cost_nothing(in_tenant_a) -> None:
    call = CallFactory(answered_at=None, ended_at=timezone.now())
    assert usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk) is None
    assert not UsageRecord.objects.exists()


def test_unmetered_calls_are_found_for_the_sweep(in_tenant_a) -> None:
    now = timezone.now()
    metered = CallFactory(answered_at=now - timedelta(seconds=30), ended_at=now)
    missed = CallFactory(answered_at=now - timedelta(seconds=30), ended_at=now)
    CallFactory(answered_at=now, ended_at=None)  # still in progress
    usage_record_call(tenant=in_tenant_a.tenant, call_id=metered.pk)
    assert usage_unmetered_call_ids(tenant=in_tenant_a.tenant) == [missed.pk]


def test_test_calls_are_never_metered_nor_found_by_the_sweep(in_tenant_a) -> None:
    now = timezone.now()
    test_call = CallFactory(carrier="browser", is_test=True, answered_at=now - timedelta(seconds=90), ended_at=now)
    real = CallFactory(answered_at=now - timedelta(seconds=30), ended_at=now)

    assert usage_unmetered_call_ids(tenant=in_tenant_a.tenant) == [real.pk]
    assert usage_record_call(tenant=in_tenant_a.tenant, call_id=test_call.pk) is None
    assert not UsageRecord.objects.exists()


def test_metering_refuses_to_run_in_the_wrong_schema(tenant_a) -> None:
    with pytest.raises(RuntimeError, match="with schema public active"):
        usage_record_call(tenant=tenant_a.tenant, call_id=1)


def test_default_plans_are_made_once_and_edits_are_kept(db) -> None:
    from billing.models import Plan
    from billing.services import plan_defaults_ensure

    Plan.objects.filter(code="growth").update(monthly_price_cents=15900)
    Plan.objects.filter(code="pro").delete()

    plans = plan_defaults_ensure()

    assert [(p.code, p.monthly_price_cents) for p in plans] == [("starter", 4900), ("growth", 15900), ("pro", 39900)]
    assert Plan.objects.count() == 3
