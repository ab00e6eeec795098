"""The billing banner on a business's pages: a payment to fix, or why callers hear the short message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from billing.models import Subscription
from tests.factories import MembershipFactory, SubscriptionFactory

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_no_banner_while_the_subscription_is_in_good_standing(client_a, tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.ACTIVE)
    response = client_a.get("/")
    assert "billing_notice" not in response.context
    assert "billing-notice" not in response.content.decode()


def test_past_due_shows_a_warning_with_the_grace_date_on_every_page(client_a, tenant_a, settings) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 14
    SubscriptionFactory(tenant=tenant_a.tenant, status="past_due", status_since=NOW - timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        pages = [client_a.get(path) for path in ("/", "/tickets/", "/settings/numbers/")]
    for response in pages:
        assert response.context["billing_notice"] == {
            "text": "Your last payment did not go through. Please update your card before December 4 "
            "to keep your receptionist answering calls.",
            "level": "warning",
        }
    assert '<a href="/billing/">Billing</a></p>' in pages[0].content.decode()


def test_unpaid_says_why_callers_are_not_answered_and_agents_see_it_without_the_billing_link(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.UNPAID)
    agent = Client(HTTP_HOST=tenant_a.host)
    agent.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)
    response = agent.get("/")
    assert response.context["billing_notice"] == {
        "text": "Your subscription is unpaid, so your receptionist is not answering calls. Callers hear a short "
        "message that you will call them back, and each call still becomes a ticket.",
        "level": "error",
    }
    html = response.content.decode()
    assert 'class="billing-notice error" role="alert"' in html
    assert '<a href="/billing/">Billing</a>' not in html


def test_the_public_site_has_no_banner(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.UNPAID)
    client = Client(HTTP_HOST="localhost")
    client.force_login(tenant_a.owner)
    assert "billing_notice" not in client.get("/").context


CLOSED = "Callers hear a short message that you will call them back, and each call still becomes a ticket."


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": "unpaid"}, "Your subscription is unpaid"),
        ({"status": "canceled"}, "Your subscription has ended"),
        ({"status": "paused"}, "Your subscription is paused"),
        ({"status": "trialing", "current_period_end": NOW - timedelta(minutes=1)}, "Your free trial has ended"),
        ({"status": "past_due", "status_since": NOW - timedelta(days=15)},
         "Your payment is overdue and the grace period has ended"),
    ],
    ids=["unpaid", "canceled", "paused", "trial_ended", "past_due_after_grace"],
)  # fmt: skip
def test_the_dashboard_says_why_callers_are_not_answered_in_every_closed_state(
    client_a, tenant_a, settings, fields, why: str
) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 14
    SubscriptionFactory(tenant=tenant_a.tenant, **fields)
    with time_machine.travel(NOW, tick=False):
        response = client_a.get("/")
    assert response.context["billing_notice"] == {
        "text": f"{why}, so your receptionist is not answering calls. {CLOSED}",
        "level": "error",
    }
    assert 'class="billing-notice error" role="alert"' in response.content.decode()


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "none"},
        {"status": "incomplete"},
        {"status": "trialing", "current_period_end": NOW + timedelta(days=3)},
    ],
    ids=["none", "incomplete", "trialing"],
)
def test_no_banner_while_setting_up_or_in_a_trial(client_a, tenant_a, fields) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, **fields)
    with time_machine.travel(NOW, tick=False):
        assert "billing_notice" not in client_a.get("/").context
