"""The plan's limits on seats and phone numbers hold wherever members and numbers are added."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from billing.models import Plan
from billing.selectors import tenant_plan_limits
from tenants import hooks
from tenants.hooks import TenantLimits
from tenants.models import AuditEvent, Membership, PhoneNumber
from tenants.services import membership_add, phone_number_register
from tests.factories import MembershipFactory, SubscriptionFactory, UserFactory
from tests.tenants.test_admin import platform_client  # noqa: F401 (fixture)


def test_billing_registers_the_limits_provider_at_start_up() -> None:
    assert hooks._tenant_limits_provider == [tenant_plan_limits]


def test_the_limits_are_the_plans_and_none_without_a_plan(tenant_a) -> None:
    assert tenant_plan_limits(tenant_a.tenant) == TenantLimits()
    SubscriptionFactory(tenant=tenant_a.tenant, plan=Plan.objects.get(code="growth"))
    assert tenant_plan_limits(tenant_a.tenant) == TenantLimits(max_seats=10, max_numbers=3)


def test_a_member_beyond_the_plans_seats_is_refused_and_nothing_changes(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant)  # Starter: 3 seats; the owner holds one
    MembershipFactory(tenant=tenant_a.tenant)
    third = membership_add(tenant=tenant_a.tenant, user=UserFactory(), role="agent", actor=tenant_a.owner)
    audits = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        membership_add(tenant=tenant_a.tenant, user=UserFactory(), role="agent", actor=tenant_a.owner)

    assert excinfo.value.code == "seat_limit"
    assert excinfo.value.messages == [
        "Your plan includes 3 seats and all are in use. Remove a member or choose a larger plan to add another."
    ]
    assert Membership.objects.filter(tenant=tenant_a.tenant).count() == 3
    assert AuditEvent.objects.count() == audits
    # A member changing role takes no new seat.
    assert membership_add(tenant=tenant_a.tenant, user=third.user, role="admin", actor=tenant_a.owner).role == "admin"


def test_a_number_beyond_the_plans_numbers_is_refused_and_nothing_changes(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant)  # Starter: 1 number, the test line holds it
    audits = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        phone_number_register(tenant=tenant_a.tenant, number="+15550009999")

    assert excinfo.value.code == "number_limit"
    assert excinfo.value.messages == [
        "Your plan includes 1 phone number and all are in use. Remove a number or choose a larger plan to add another."
    ]
    assert list(PhoneNumber.objects.filter(tenant=tenant_a.tenant).values_list("e164", flat=True)) == ["+15550001001"]
    assert AuditEvent.objects.count() == audits
    # The number it has is still "registered": a no-op, not a new number.
    assert phone_number_register(tenant=tenant_a.tenant, number="+15550001001").e164 == "+15550001001"


def test_the_platform_admin_says_when_a_seat_or_number_limit_is_reached(platform_client, tenant_a) -> None:  # noqa: F811
    SubscriptionFactory(tenant=tenant_a.tenant, plan=Plan.objects.filter(code="starter").first())
    Plan.objects.filter(code="starter").update(max_seats=1)
    user = UserFactory()

    member = platform_client.post(
        "/admin/tenants/membership/add/", {"user": user.pk, "tenant": tenant_a.tenant.pk, "role": "agent"}
    )
    number = platform_client.post(
        "/admin/tenants/phonenumber/add/", {"e164": "+15550009999", "tenant": tenant_a.tenant.pk, "label": ""}
    )

    assert member.status_code == number.status_code == 200
    assert member.context["adminform"].form.non_field_errors() == [
        "Your plan includes 1 seat and all are in use. Remove a member or choose a larger plan to add another."
    ]
    assert number.context["adminform"].form.non_field_errors() == [
        "Your plan includes 1 phone number and all are in use. Remove a number or choose a larger plan to add another."
    ]
    assert not Membership.objects.filter(user=user).exists()
    assert not PhoneNumber.objects.filter(e164="+15550009999").exists()


def test_the_owner_edits_a_plans_limits_in_the_admin(platform_client, db) -> None:  # noqa: F811
    growth = Plan.objects.get(code="growth")
    form = {
        "code": "growth", "name": "Growth", "is_active": "on", "monthly_price_cents": 14900,
        "included_minutes": 1200, "overage_cents_per_minute": "10.000",
        "max_concurrent_calls": 7, "max_numbers": 4, "max_seats": 12,
    }  # fmt: skip
    response = platform_client.post(f"/admin/billing/plan/{growth.pk}/change/", form)
    assert response.status_code == 302
    growth.refresh_from_db()
    assert (growth.max_concurrent_calls, growth.max_numbers, growth.max_seats) == (7, 4, 12)


def test_the_default_plans_limits(db) -> None:
    assert list(Plan.objects.values_list("code", "max_concurrent_calls", "max_numbers", "max_seats")) == [
        ("starter", 2, 1, 3),
        ("growth", 5, 3, 10),
        ("pro", 15, 10, 30),
    ]
