"""Billing on the platform admin."""

from __future__ import annotations

from billing.models import Plan, Subscription
from tests.tenants.test_admin import platform_client  # noqa: F401 (fixture)


def test_staff_edit_plans_but_never_delete_them(platform_client, db) -> None:  # noqa: F811
    starter = Plan.objects.get(code="starter")
    listing = platform_client.get("/admin/billing/plan/")
    assert listing.status_code == 200
    assert [p.code for p in listing.context["cl"].result_list] == ["starter", "growth", "pro"]
    assert platform_client.post(f"/admin/billing/plan/{starter.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Plan.objects.filter(pk=starter.pk).exists()


def test_subscriptions_are_read_only_on_the_admin(platform_client, tenant_a) -> None:  # noqa: F811
    subscription = Subscription.objects.create(tenant=tenant_a.tenant, status="active", stripe_customer_id="cus_1")
    page = platform_client.get(f"/admin/billing/subscription/{subscription.pk}/change/")
    change = platform_client.post(f"/admin/billing/subscription/{subscription.pk}/change/", {"status": "canceled"})
    assert page.status_code == 200
    assert change.status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == "active"
