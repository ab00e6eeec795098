"""The owner's billing page, and sending the owner to Checkout and the Portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from billing.models import Invoice, Plan, Subscription, UsageRecord
from billing.selectors import billing_history, billing_overview, billing_summary_for_tenant
from billing.templatetags.money import dollars
from tenants.models import AuditEvent, User
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


def _metered(tenant, at: datetime, call_id: int, seconds: int, usage=None, cost: str = "0") -> UsageRecord:
    record = UsageRecord.objects.create(
        tenant=tenant, call_id=call_id, seconds=seconds, provider_usage=usage or {}, provider_cost_cents=Decimal(cost)
    )
    UsageRecord.objects.filter(pk=record.pk).update(created_at=at)
    return record


PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)


def _starter_this_period(tenant) -> Subscription:
    return Subscription.objects.create(
        tenant=tenant, plan=Plan.objects.get(code="starter"), status="active",
        current_period_start=PERIOD_START, current_period_end=PERIOD_START + timedelta(days=30),
    )  # fmt: skip


def test_each_call_costs_its_minutes_beyond_the_included_ones_and_its_engines(tenant_a) -> None:
    _starter_this_period(tenant_a.tenant)  # 300 minutes included, then 12¢ a minute
    usage = {"stt": {"whisper": 41.2}, "tts": {"piper": 63.0}, "stt_stream": {},
             "llm": {"gpt-4o-mini:in": 1200.0, "gpt-4o-mini:out": 0.0}, "tts_chars": {"piper": 812.0}}  # fmt: skip
    _metered(tenant_a.tenant, PERIOD_START + timedelta(days=1), 1, 290 * 60, cost="1.5")
    _metered(tenant_a.tenant, PERIOD_START + timedelta(days=2), 2, 15 * 60, usage, cost="3.25")
    _metered(tenant_a.tenant, PERIOD_START + timedelta(days=3), 3, 61, cost="0.25")

    summary = billing_summary_for_tenant(tenant=tenant_a.tenant, now=PERIOD_START + timedelta(days=4))

    assert [(c.call_id, c.minutes, c.overage_minutes, c.minutes_cents, c.provider_cost_cents, c.total_cents)
            for c in summary.calls] == [
        (3, 2, 2, Decimal("24.000"), Decimal("0.25"), Decimal("24.250")),
        (2, 15, 5, Decimal("60.000"), Decimal("3.25"), Decimal("63.250")),
        (1, 290, 0, Decimal("0.000"), Decimal("1.5"), Decimal("1.500")),
    ]  # fmt: skip
    # The minute charges add up to the estimate's part beyond the base price.
    assert summary.estimated_cents == Decimal(4900) + sum(c.minutes_cents for c in summary.calls) == Decimal("4984")
    assert summary.provider_cost_cents == Decimal("5.00")
    assert [(line.kind, line.engine, line.amount) for line in summary.calls[1].usage] == [
        ("Speech heard", "whisper", "41.2 s"),
        ("Speech spoken", "piper", "63 s"),
        ("Characters spoken", "piper", "812 characters"),
        ("Language model", "gpt-4o-mini:in", "1,200 tokens"),
    ]


def test_the_billing_page_shows_each_calls_cost_and_the_invoices(tenant_a, tenant_b, client_a, settings) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_page"  # the portal button shows when billing is set up
    subscription = _starter_this_period(tenant_a.tenant)
    _metered(tenant_a.tenant, PERIOD_START + timedelta(days=1), 7, 305 * 60, {"stt": {"whisper": 90.0}}, cost="2")
    Invoice.objects.create(
        tenant=tenant_a.tenant, stripe_invoice_id="in_1", status="paid", amount_due_cents=4900,
        amount_paid_cents=4900, hosted_invoice_url="https://invoice.stripe.com/i/in_1",
        created_at=PERIOD_START, synced_at=PERIOD_START,
    )  # fmt: skip
    Invoice.objects.create(
        tenant=tenant_b.tenant, stripe_invoice_id="in_other", status="paid", amount_due_cents=100,
        created_at=PERIOD_START, synced_at=PERIOD_START,
    )  # fmt: skip
    assert subscription.status == "active"

    with time_machine.travel(PERIOD_START + timedelta(days=2), tick=False):
        response = client_a.get("/billing/")

    html = response.content.decode()
    assert [i.stripe_invoice_id for i in response.context["invoices"]] == ["in_1"]
    assert '<a href="https://invoice.stripe.com/i/in_1" rel="noopener noreferrer" target="_blank">in_1</a>' in html
    assert "All invoices in the billing portal" in html
    row = (
        '<td class="calls-num">18300 s</td><td class="calls-num">305</td><td class="calls-num">5</td>\n'
        '        <td class="calls-num">$0.60</td>\n'
        "        <td>Speech heard (whisper): 90 s</td>\n"
        '        <td class="calls-num">$0.02</td><td class="calls-num">$0.62</td>'
    )
    assert row in html
    assert "in_other" not in html


def test_the_calls_are_paged_newest_first_and_a_bad_page_is_refused(tenant_a, client_a) -> None:
    _starter_this_period(tenant_a.tenant)
    for index in range(30):
        _metered(tenant_a.tenant, PERIOD_START + timedelta(hours=index + 1), index + 1, 60)

    with time_machine.travel(PERIOD_START + timedelta(days=2), tick=False):
        first = client_a.get("/billing/")
        second = client_a.get("/billing/?page=2")
        beyond = client_a.get("/billing/?page=9")
        bad = client_a.get("/billing/?page=two")

    assert [c.call_id for c in first.context["calls_page"].object_list] == list(range(30, 5, -1))
    assert [c.call_id for c in second.context["calls_page"].object_list] == [5, 4, 3, 2, 1]
    assert beyond.context["calls_page"].number == 2
    assert 'href="?page=2" rel="next"' in first.content.decode()
    assert (bad.status_code, bad.content) == (400, b"The page must be a number.")


def test_another_business_and_strangers_never_see_this_billing_page(tenant_a, tenant_b) -> None:
    _metered(tenant_a.tenant, timezone.now(), 1, 60)
    other_owner = Client(HTTP_HOST=tenant_a.host)
    other_owner.force_login(tenant_b.owner)
    assert other_owner.get("/billing/").status_code == 404
    assert other_owner.post("/billing/portal").status_code == 404
    anonymous = Client(HTTP_HOST=tenant_a.host).get("/billing/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert not Subscription.objects.filter(tenant=tenant_a.tenant).exists()


def test_the_owners_revenue_pages_exist_only_on_the_public_host_and_only_for_staff(client_a, tenant_a) -> None:
    assert client_a.get("/owner/billing/").status_code == 404
    with pytest.raises(PermissionDenied):
        billing_history(actor=tenant_a.owner)
    with pytest.raises(PermissionDenied):
        billing_overview(actor=tenant_a.owner)


OWNER_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _at(model, at: datetime, **fields):
    row = model.objects.create(**fields)
    model.objects.filter(pk=row.pk).update(created_at=at)
    return row


def test_the_owner_sees_mrr_usage_money_and_failed_payments_month_by_month_as_charts_and_a_table(
    platform_client,  # noqa: F811
    tenant_a,
    tenant_b,
) -> None:
    plans = {p.code: p for p in Plan.objects.all()}
    alpha, beta = tenant_a.tenant, tenant_b.tenant
    Subscription.objects.create(tenant=alpha, plan=plans["growth"], status="active")
    Subscription.objects.create(tenant=beta, plan=plans["starter"], status="canceled")
    status = "billing.subscription_status"
    _at(AuditEvent, datetime(2026, 9, 15, tzinfo=UTC), tenant=alpha, action=status,
        data={"previous": "none", "status": "active", "plan": "growth"})  # fmt: skip
    _at(AuditEvent, datetime(2026, 10, 5, tzinfo=UTC), tenant=beta, action=status,
        data={"previous": "none", "status": "active", "plan": "starter"})  # fmt: skip
    _at(AuditEvent, datetime(2026, 11, 10, tzinfo=UTC), tenant=beta, action=status,
        data={"previous": "active", "status": "canceled", "plan": "starter"})  # fmt: skip
    _at(AuditEvent, datetime(2026, 11, 5, tzinfo=UTC), tenant=beta, action="billing.payment_failed",
        data={"invoice": "in_b2", "amount_cents": 4900})  # fmt: skip
    _metered(alpha, datetime(2026, 10, 3, tzinfo=UTC), 1, 61, cost="1.5")
    _metered(alpha, datetime(2026, 11, 2, tzinfo=UTC), 2, 120, cost="0.5")
    _metered(beta, datetime(2026, 11, 5, tzinfo=UTC), 1, 30)
    for tenant, invoice_id, state, paid, at in [
        (alpha, "in_a1", "paid", 14900, datetime(2026, 10, 15, tzinfo=UTC)),
        (beta, "in_b1", "paid", 4900, datetime(2026, 10, 5, tzinfo=UTC)),
        (beta, "in_b2", "open", 0, datetime(2026, 11, 5, tzinfo=UTC)),
    ]:
        Invoice.objects.create(tenant=tenant, stripe_invoice_id=invoice_id, status=state, amount_due_cents=4900,
                               amount_paid_cents=paid, created_at=at, synced_at=at)  # fmt: skip

    with time_machine.travel(OWNER_NOW, tick=False):
        response = platform_client.get("/owner/billing/")

    history = response.context["history"]
    assert len(history) == 12
    assert [(m.label, m.mrr_cents, m.collected_cents, m.minutes, m.provider_cost_cents, m.failed_payments)
            for m in history[-4:]] == [
        ("Aug 2026", 0, 0, 0, Decimal(0), 0),
        ("Sep 2026", 14900, 0, 0, Decimal(0), 0),
        ("Oct 2026", 19800, 19800, 2, Decimal("1.5"), 0),
        ("Nov 2026", 14900, 0, 3, Decimal("0.5"), 1),
    ]  # fmt: skip
    assert response.context["overview"].mrr_cents == history[-1].mrr_cents
    html = response.content.decode()
    assert (
        '<tr><th scope="row">Oct 2026</th><td class="calls-num">$198.00</td><td class="calls-num">$198.00</td>'
        '<td class="calls-num">2</td><td class="calls-num">$0.02</td><td class="calls-num">0</td></tr>'
    ) in html

    charts = response.context["charts"]

    def drawn(chart) -> dict[str, list[tuple[str, float]]]:
        series: dict[str, list[tuple[str, float]]] = {}
        for bar in chart.bars:
            series.setdefault(bar.series_name, []).append((bar.label, bar.value))
        return series

    assert drawn(charts["mrr"])["MRR"][-3:] == [("Sep 26", 14900.0), ("Oct 26", 19800.0), ("Nov 26", 14900.0)]
    assert drawn(charts["mrr"])["Collected"][-2:] == [("Oct 26", 19800.0), ("Nov 26", 0.0)]
    assert drawn(charts["minutes"])["Minutes"][-2:] == [("Oct 26", 2.0), ("Nov 26", 3.0)]
    assert drawn(charts["failed"])["Failed payments"][-2:] == [("Oct 26", 0.0), ("Nov 26", 1.0)]
    assert [t.text for t in charts["failed"].ticks] == ["0", "1", "2", "3", "4", "5"]
    assert drawn(charts["margin"]) == {
        # Alpha: Growth's base price; its 2 minutes are within the included ones. Beta: canceled, no revenue.
        "Revenue": [(alpha.name, 14900.0), (beta.name, 0.0)],
        "Provider cost": [(alpha.name, 0.5), (beta.name, 0.0)],
    }
    assert drawn(charts["days"])["Minutes"][-1] == ("11-20", 0.0)
    assert sum(value for _, value in drawn(charts["days"])["Minutes"]) == 3.0
    bar = f'data-series="Revenue" data-label="{alpha.name}" data-value="14900.0">'
    assert f"{bar}<title>Revenue, {alpha.name}: $149.00</title>" in html
    assert html.count('<svg viewBox="0 0 640 220" class="bar-chart"') == 5
    assert "<script" not in html.split("<main", 1)[1]  # the charts need no script and load nothing
