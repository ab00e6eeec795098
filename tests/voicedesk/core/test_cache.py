"""Cache keys carry the schema, except sign-in rate limits, which count across every host."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tests.factories import PASSWORD, MembershipFactory, UserFactory
from voicedesk.core.cache import make_key, reverse_key


def test_ordinary_keys_carry_the_active_schema(tenant_a) -> None:
    with schema_context("alpha"):
        assert make_key("faq:1", "vd", 1) == "alpha:vd:1:faq:1"
    assert connection.schema_name == "public"
    assert make_key("faq:1", "vd", 1) == "public:vd:1:faq:1"
    assert reverse_key("alpha:vd:1:faq:1") == "faq:1"


def test_sign_in_rate_limit_keys_are_the_same_on_every_host(tenant_a) -> None:
    key = "allauth:rl:account:login_failed:5/300s/key:abc"
    with schema_context("alpha"):
        on_alpha = make_key(key, "vd", 1)
    assert on_alpha == make_key(key, "vd", 1) == f"public:vd:1:{key}"


def _sign_in(host: str, email: str, password: str, address: str = "198.51.100.7"):
    return Client(HTTP_HOST=host, REMOTE_ADDR=address).post("/accounts/login/", {"login": email, "password": password})


def test_failed_sign_ins_on_different_business_hosts_count_for_one_account(tenant_a, tenant_b) -> None:
    user = UserFactory(email="roaming-agent@example.test")
    MembershipFactory(user=user, tenant=tenant_a.tenant)
    MembershipFactory(user=user, tenant=tenant_b.tenant)
    hosts = ["alpha.localhost", "beta.localhost", "localhost", "alpha.localhost", "beta.localhost"]
    for host in hosts:
        assert _sign_in(host, user.email, "wrong password").status_code == 200

    # The sixth try, with the right password, on a host it has not been tried on yet.
    response = _sign_in("beta.localhost", user.email, PASSWORD, address="198.51.100.8")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Too many failed login attempts. Try again later."]
