"""The going-live checklist on the dashboard, computed from the business's real state."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.models import Subscription
from calls.models import AgentConfig
from calls.services import agent_config_update, faq_entry_create
from tenants.models import PhoneNumber
from tests.factories import CallFactory, MembershipFactory, SubscriptionFactory
from voicedesk.insights.selectors import onboarding_checklist


def _done(tenant) -> dict[str, bool]:
    return {step.key: step.done for step in onboarding_checklist(tenant=tenant)}


def test_a_new_business_has_everything_but_its_number_to_do(in_tenant_a) -> None:
    assert _done(in_tenant_a.tenant) == {
        "details": False, "agent": False, "number": True, "plan": False, "test_call": False,
    }  # fmt: skip


def test_each_step_is_done_by_the_real_change(in_tenant_a) -> None:
    tenant = in_tenant_a.tenant
    PhoneNumber.objects.filter(tenant=tenant).delete()
    assert _done(tenant)["number"] is False

    agent_config_update(config=AgentConfig.objects.get(), actor=in_tenant_a.owner, timezone="America/Chicago")
    faq_entry_create(actor=in_tenant_a.owner, question="Do you fix boilers?", answer="Yes, every make.")
    SubscriptionFactory(tenant=tenant, status=Subscription.Status.TRIALING)
    CallFactory()

    assert _done(tenant) == {"details": True, "agent": True, "number": False, "plan": True, "test_call": True}


def test_changing_the_business_name_back_still_counts_as_reviewing_the_details(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    agent_config_update(config=config, actor=in_tenant_a.owner, business_name="Alpha Plumbing & Heating")
    assert _done(in_tenant_a.tenant)["details"] is True


def test_a_greeting_alone_completes_the_agent_step(in_tenant_a) -> None:
    agent_config_update(config=AgentConfig.objects.get(), actor=in_tenant_a.owner, greeting="Alpha Plumbing, hello!")
    assert _done(in_tenant_a.tenant)["agent"] is True


@pytest.mark.parametrize("status", ["none", "incomplete", "past_due", "unpaid", "canceled"])
def test_only_a_paid_or_trialing_subscription_completes_the_plan_step(in_tenant_a, status: str) -> None:
    SubscriptionFactory(tenant=in_tenant_a.tenant, status=status)
    assert _done(in_tenant_a.tenant)["plan"] is False


def test_the_checklist_refuses_another_schema(in_tenant_a, tenant_b) -> None:
    with pytest.raises(RuntimeError, match="for beta with schema alpha active"):
        onboarding_checklist(tenant=tenant_b.tenant)


def test_the_dashboard_shows_the_steps_left_with_links_the_member_may_follow(client_a, tenant_a) -> None:
    response = client_a.get("/")
    html = response.content.decode()
    assert response.context["steps_left"] == 4
    # In the order a new business goes: plan, number, then what the receptionist says, then a test call.
    assert [(step.key, url) for step, url in response.context["steps"]] == [
        ("plan", "/billing/"),
        ("number", "/settings/numbers/"),
        ("details", "/settings/agent/"),
        ("agent", "/settings/faq/"),
        ("test_call", "/calls/test/"),
    ]
    assert "Going live: 4 steps left" in html
    assert "Not live yet: a plan and a phone number make your receptionist live." in html
    assert '<a href="/billing/">Plan and payment</a>' in html
    assert '<a href="/calls/test/">A test call</a>' in html
    assert "Call your number, or make a test call from your browser: this step is done when the first call" in html


def test_an_agent_sees_the_steps_without_links_to_pages_they_cannot_open(tenant_a) -> None:
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)
    response = client.get("/")
    assert [url for _step, url in response.context["steps"]] == ["", "", "", "", ""]
    assert '<a href="/billing/">' not in response.content.decode()


@pytest.mark.parametrize(
    ("status", "with_number", "live"),
    [("active", True, True), ("trialing", True, True), ("active", False, False), ("past_due", True, False),
     ("none", True, False)],
)  # fmt: skip
def test_the_business_is_live_with_a_paid_or_trialing_plan_and_a_number(
    client_a, tenant_a, status: str, with_number: bool, live: bool
) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=status)
    if not with_number:
        PhoneNumber.objects.filter(tenant=tenant_a.tenant).delete()
    response = client_a.get("/")
    assert response.context["live"] is live
    said = "Live: callers to your number reach your receptionist." if live else "Not live yet:"
    assert said in response.content.decode()
