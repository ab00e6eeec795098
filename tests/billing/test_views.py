"""The owner's billing page, and sending the owner to Checkout and the Portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Plan, Subscription, UsageRecord
from billing.selectors import billing_summary_for_tenant
from billing.templatetags.money import dollars
from tenants.models import User
from tests.billing.test_stripe_billing import _deliver_all, _pay
from tests.factories import MembershipFactory
from tests.tenants.test_admin import platform_client  # noqa: F401 (fixture)


@pytest.mark.parametrize(
    ("cents", "text"), [(4900, "$49.00"), (Decimal("12.5"), "$0.13"), (Decimal("123456.4"), "$1,234.56"), (None, "")]
)
def test_dollars(cents, text: str) -> None:
    assert dollars(cents) == text


def test_the_summary_counts_started_minutes_in_the_period_against_the_plan(tenant_a) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    Subscription.objects.create(
        tenant=tenant_a.tenant, plan=Plan.objects.get(code="starter"), status="active",
        current_period_start=start, current_period_end=start + timedelta(days=30),
    )  # fmt: skip
    for index, seconds in enumerate([3600 * 5, 59, 61]):
        record = UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=index, seconds=seconds)
        UsageRecord.objects.filter(pk=record.pk).update(created_at=start + timedelta(days=index + 1))
    outside = UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=99, seconds=600)
    UsageRecord.objects.filter(pk=outside.pk).update(created_at=start - timedelta(seconds=1))

    summary = billing_summary_for_tenant(tenant=tenant_a.tenant, now=start + timedelta(days=10))

    assert (summary.used_minutes, summary.included_minutes, summary.overage_minutes) == (303, 300, 3)
    assert summary.estimated_cents == Decimal("4900") + 3 * Decimal("12.000")
    assert [(c.call_id, c.minutes) for c in summary.calls] == [(2, 2), (1, 1), (0, 300)]


def test_without_a_plan_the_period_is_the_calendar_month(tenant_a) -> None:
    summary = billing_summary_for_tenant(tenant=tenant_a.tenant, now=datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    assert (summary.period_start, summary.period_end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert (summary.plan, summary.estimated_cents) == (None, Decimal(0))


def test_only_the_owner_sees_billing(tenant_a) -> None:
    for role in ("admin", "agent"):
        client = Client(HTTP_HOST=tenant_a.host)
        client.force_login(MembershipFactory(tenant=tenant_a.tenant, role=role).user)
        assert client.get("/billing/").status_code == 404
        assert client.post("/billing/checkout", {"plan": "starter"}).status_code == 404
        assert client.post("/billing/portal").status_code == 404
    assert not Subscription.objects.filter(tenant=tenant_a.tenant).exists()


def test_the_owner_subscribes_through_checkout_and_the_page_shows_the_plan(tenant_a, client_a, stripe_emulator) -> None:
    page = client_a.get("/billing/")
    assert page.context["status"] == "none"
    assert [p.code for p in page.context["plans"]] == ["starter", "growth", "pro"]

    response = client_a.post("/billing/checkout", {"plan": "growth"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{stripe_emulator.url}/c/pay/cs_test_")
    session = stripe_emulator.get(response["Location"].rsplit("/", 1)[-1], "checkout.session")
    assert session["success_url"] == "http://alpha.localhost/billing/?checkout=done"
    _pay(response["Location"])

    confirming = client_a.get("/billing/?checkout=done")
    assert confirming.context["confirming"] is True
    _deliver_all(stripe_emulator)
    done = client_a.get("/billing/?checkout=done")
    assert (done.context["confirming"], done.context["status"], done.context["summary"].plan.code) == (
        False,
        "active",
        "growth",
    )
    assert b"Manage cards, invoices and plan" in done.content
    portal = client_a.post("/billing/portal")
    assert portal["Location"].startswith(f"{stripe_emulator.url}/p/session/bps_")


def test_an_unknown_plan_is_refused_with_a_message(client_a, stripe_emulator) -> None:
    response = client_a.post("/billing/checkout", {"plan": "platinum"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Choose one of the plans below."]
    assert stripe_emulator.state.objects == {}


def test_stripe_being_down_loses_nothing_and_says_so(client_a, stripe_emulator, settings) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    response = client_a.post("/billing/checkout", {"plan": "starter"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Payments are unavailable right now; nothing was charged. Please try again shortly."
    ]


def test_the_owner_overview_adds_up_revenue_states_and_minutes(platform_client, tenant_a, tenant_b) -> None:  # noqa: F811
    plans = {p.code: p for p in Plan.objects.all()}
    Subscription.objects.create(tenant=tenant_a.tenant, plan=plans["growth"], status="active")
    Subscription.objects.create(tenant=tenant_b.tenant, plan=plans["starter"], status="canceled")
    UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=1, seconds=61)
    UsageRecord.objects.create(tenant=tenant_b.tenant, call_id=1, seconds=30)

    response = platform_client.get("/owner/billing/")

    overview = response.context["overview"]
    assert overview.mrr_cents == 14900
    assert overview.by_status == {"active": 1, "canceled": 1}
    assert [(r.tenant.schema_name, r.status, r.minutes_this_month, r.monthly_cents) for r in overview.rows] == [
        ("alpha", "active", 2, 14900),
        ("beta", "canceled", 1, 0),
    ]
    assert overview.minutes_per_day[-1][1] == 3
    assert len(overview.minutes_per_day) == 30
    assert b"$149.00" in response.content


def test_the_owner_overview_is_for_platform_staff_only(tenant_a) -> None:
    anonymous = Client(HTTP_HOST="localhost").get("/owner/billing/")
    assert anonymous["Location"] == "/accounts/login/?next=/owner/billing/"
    owner = Client(HTTP_HOST="localhost")
    owner.force_login(tenant_a.owner)
    assert owner.get("/owner/billing/").status_code == 404
    staff = Client(HTTP_HOST="localhost")
    staff.force_login(User.objects.create_superuser(email="ops@voicedesk.test", password="x" * 12))
    # Staff without a second factor in this session go through the admin's MFA steps first.
    assert staff.get("/owner/billing/")["Location"] == "/admin/login/?next=/owner/billing/"
