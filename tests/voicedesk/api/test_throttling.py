"""Rate limits: per API key, else per user; the standard 429 body once the budget is spent."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.factories import MembershipFactory
from tests.voicedesk.api.helpers import api_key_make, key_client
from tickets.models import Ticket

THROTTLED = {"detail": "Request was throttled. Expected available in 60 seconds."}


@pytest.fixture
def three_a_minute(settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "3/minute", "export": "1/minute"},
    }


@pytest.fixture
def frozen():
    # Shortly after now (a signed-in session stays valid), and frozen, so waits are exact.
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False) as traveller:
        yield traveller


def test_the_fourth_request_in_a_minute_gets_429(tenant_a, three_a_minute, frozen) -> None:
    client = key_client(tenant_a.host, api_key_make(tenant_a))

    statuses = [client.get("/api/tickets/").status_code for _ in range(3)]
    refused = client.post("/api/tickets/", {"subject": "Over the limit"}, content_type="application/json")

    assert statuses == [200, 200, 200]
    assert (refused.status_code, refused.json(), refused["Retry-After"]) == (429, THROTTLED, "60")
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0


def test_the_budget_comes_back_after_the_window(tenant_a, three_a_minute, frozen) -> None:
    client = key_client(tenant_a.host, api_key_make(tenant_a))
    for _ in range(3):
        client.get("/api/tickets/")

    frozen.shift(timedelta(seconds=61))

    assert client.get("/api/tickets/").status_code == 200


def test_each_key_and_each_user_has_its_own_budget(tenant_a, three_a_minute, frozen) -> None:
    first = key_client(tenant_a.host, api_key_make(tenant_a, "First"))
    second = key_client(tenant_a.host, api_key_make(tenant_a, "Second"))
    member = Client(HTTP_HOST=tenant_a.host)
    member.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)
    for _ in range(3):
        first.get("/api/tickets/")

    assert first.get("/api/tickets/").status_code == 429
    assert [second.get("/api/tickets/").status_code for _ in range(3)] == [200, 200, 200]
    assert [member.get("/api/tickets/").status_code for _ in range(3)] == [200, 200, 200]
    assert member.get("/api/calls/").status_code == 429


def test_exports_have_their_own_budget(tenant_a, three_a_minute, frozen) -> None:
    client = key_client(tenant_a.host, api_key_make(tenant_a))

    first = client.get("/api/tickets/export.csv")
    second = client.get("/api/calls/export.csv")

    assert first.status_code == 200
    assert (second.status_code, second.json(), second["Content-Type"]) == (429, THROTTLED, "application/json")
    assert client.get("/api/tickets/").status_code == 200


def test_the_default_rates_come_from_settings() -> None:
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {"api": "600/minute", "export": "30/hour"}
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
