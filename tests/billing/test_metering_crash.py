"""A metering run killed halfway (SIGKILL, the process gone) and run again reports each call exactly once.

The first run is ``manage.py billing_report_usage`` in a process of its
own, talking to the Stripe emulator, which goes silent right after taking the
third event: the process is killed between Stripe having that event and our
database marking it sent. That process shares the test database, so the test
commits its data. The run again is the same command.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from billing.models import Subscription, UsageRecord
from billing.services import billing_catalog_sync, billing_reconcile, usage_meter_identifier
from billing.stripe_emulator import StripeEmulator
from billing.stripe_gateway import stripe_client
from tests.billing.conftest import API_KEY
from tests.live_stack import live_stack_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("faults")]


def _report(emulator: StripeEmulator) -> subprocess.Popen[str]:
    env = live_stack_env() | {"STRIPE_SECRET_KEY": API_KEY, "STRIPE_API_BASE": emulator.url}
    return subprocess.Popen(
        [sys.executable, "manage.py", "billing_report_usage", "--tenant", "alpha"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _unreported(tenant: Any) -> list[int]:
    return list(
        UsageRecord.objects.filter(tenant=tenant, reported_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    )


def test_a_run_killed_after_stripe_took_an_event_resumes_and_reports_each_minute_once(
    tenant_a, stripe_emulator: StripeEmulator
) -> None:
    billing_catalog_sync()
    customer = stripe_client().v1.customers.create({"email": "owner@alpha.test"})
    Subscription.objects.create(tenant=tenant_a.tenant, status="active", stripe_customer_id=customer.id)
    records = [
        UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=100 + i, seconds=s)
        for i, s in enumerate([60, 61, 120, 179, 600])
    ]  # 1 + 2 + 2 + 3 + 10 minutes
    stripe_emulator.hang_after_meter_events(3)

    first = _report(stripe_emulator)
    try:
        wait_for(lambda: len(stripe_emulator.state.meter_events) == 3, timeout_s=60, what="Stripe to take 3 events")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stripe_emulator.resume()
    assert first.returncode == -signal.SIGKILL
    # Two marked; the third Stripe has but we never heard so; two never sent.
    assert _unreported(tenant_a.tenant) == [r.pk for r in records[2:]]

    out = io.StringIO()
    call_command("billing_report_usage", "--tenant", "alpha", stdout=out)
    assert out.getvalue().splitlines() == ["alpha: 3 events", "3 events sent."]

    assert _unreported(tenant_a.tenant) == []
    assert sorted(stripe_emulator.state.meter_events) == sorted(usage_meter_identifier(r) for r in records)
    assert [e["payload"]["value"] for e in stripe_emulator.state.meter_events.values()] == ["1", "2", "2", "3", "10"]
    now = timezone.now()
    rows = billing_reconcile(start=now - timedelta(days=1), end=now + timedelta(days=1))
    assert [(row.tenant, row.ours, row.stripe, row.difference) for row in rows] == [("alpha", 18, 18.0, 0.0)]
