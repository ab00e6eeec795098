"""Clients for the help desk page tests: an agent of tenant A, an intruder, an anonymous visitor."""

import pytest
from django.test import Client

from tenants.models import User
from tests.factories import MembershipFactory

HTMX = {"HX-Request": "true"}


@pytest.fixture
def agent_a(tenant_a) -> User:
    """An agent (the lowest role) of tenant A; created in the public schema."""
    return MembershipFactory(tenant=tenant_a.tenant, role="agent", user__email="agent@alpha.test").user


@pytest.fixture
def agent_client(tenant_a, agent_a) -> Client:
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(agent_a)
    return client


@pytest.fixture
def intruder_client(tenant_a, tenant_b) -> Client:
    """Tenant B's owner, signed in, talking to tenant A's host."""
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_b.owner)
    return client


@pytest.fixture
def anonymous_client(tenant_a) -> Client:
    return Client(HTTP_HOST=tenant_a.host)


@pytest.fixture
def csrf_client(tenant_a) -> Client:
    """Tenant A's owner with CSRF checks on, as a browser is."""
    client = Client(HTTP_HOST=tenant_a.host, enforce_csrf_checks=True)
    client.force_login(tenant_a.owner)
    return client


def assert_sent_to_sign_in(response, path: str) -> None:
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def assert_not_found(response) -> None:
    assert response.status_code == 404
    assert b"find that page" in response.content
