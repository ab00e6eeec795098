"""Who reaches which host: the tenant isolation matrix of the foundation."""

import pytest
from django.test import Client

from tenants.models import Membership, User


@pytest.mark.parametrize(
    ("who", "host", "status"),
    [
        ("owner_a", "alpha.localhost", 200),
        ("owner_a", "beta.localhost", 404),
        ("owner_b", "alpha.localhost", 404),
        ("owner_b", "beta.localhost", 200),
        ("agent_a", "alpha.localhost", 200),
        ("agent_a", "beta.localhost", 404),
        ("outsider", "alpha.localhost", 404),
        ("outsider", "beta.localhost", 404),
        ("owner_a", "unknown.localhost", 404),
        ("owner_a", "tenant-template.localhost", 404),
    ],
)
def test_dashboard_access_matrix(tenant_a, tenant_b, who: str, host: str, status: int) -> None:
    users = {
        "owner_a": tenant_a.owner,
        "owner_b": tenant_b.owner,
        "agent_a": User.objects.create_user(email="agent@alpha.test", password="x" * 12),
        "outsider": User.objects.create_user(email="nobody@example.com", password="x" * 12),
    }
    Membership.objects.create(user=users["agent_a"], tenant=tenant_a.tenant, role="agent")
    client = Client(HTTP_HOST=host)
    client.force_login(users[who])

    response = client.get("/")

    assert response.status_code == status
    if status == 404:
        assert b"find that page" in response.content


def test_anonymous_visitor_is_sent_to_sign_in_on_the_tenant_host(tenant_a) -> None:
    response = Client(HTTP_HOST="alpha.localhost").get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_unknown_host_fails_closed_for_anonymous_visitors(db) -> None:
    assert Client(HTTP_HOST="nope.localhost").get("/accounts/login/").status_code == 404


def test_member_sees_the_empty_dashboard(client_a) -> None:
    response = client_a.get("/")
    assert response.status_code == 200
    assert response.context["counts"] == {"calls": 0, "open_tickets": 0, "pending_callbacks": 0}
    assert b"Alpha Plumbing" in response.content


def test_public_home_lists_only_own_businesses(tenant_a, tenant_b) -> None:
    client = Client(HTTP_HOST="localhost")
    client.force_login(tenant_a.owner)
    response = client.get("/")
    assert response.status_code == 200
    assert list(response.context["tenants"]) == [tenant_a.tenant]
