"""The platform admin on the public host: platform staff only, writes through the services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from billing.models import UsageRecord
from tenants.models import AuditEvent, Membership, PhoneNumber, Tenant, User
from tests.conftest import PASSWORD
from tests.factories import UserFactory

PUBLIC_HOST = "localhost"


@pytest.fixture
def platform_client(db) -> Client:
    owner = User.objects.create_superuser(email="root@voicedesk.test", password=PASSWORD)
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(owner)
    return client


@pytest.mark.parametrize("path", ["/admin/", "/admin/tenants/tenant/", "/admin/billing/usagerecord/"])
def test_a_tenant_owner_gets_nothing_on_the_platform_admin(tenant_a, path: str) -> None:
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(tenant_a.owner)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_a_tenant_owner_cannot_sign_in_to_the_platform_admin(tenant_a) -> None:
    client = Client(HTTP_HOST=PUBLIC_HOST)

    response = client.post("/admin/login/?next=/admin/", {"username": tenant_a.owner.email, "password": PASSWORD})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Please enter the correct email address and password for a staff account. "
        "Note that both fields may be case-sensitive."
    ]
    assert client.get("/admin/").status_code == 302


def test_the_platform_owner_sees_the_tenants(platform_client, tenant_a, tenant_b) -> None:
    response = platform_client.get("/admin/tenants/tenant/")

    assert response.status_code == 200
    names = sorted(t.schema_name for t in response.context["cl"].result_list)
    assert names == ["alpha", "beta", "public", "tenant_template"]


def test_tenants_are_not_added_or_deleted_and_the_schema_name_is_fixed(platform_client, tenant_a) -> None:
    tenant = tenant_a.tenant
    add = platform_client.get("/admin/tenants/tenant/add/")
    delete = platform_client.post(f"/admin/tenants/tenant/{tenant.pk}/delete/", {"post": "yes"})
    page = platform_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")

    assert (add.status_code, delete.status_code) == (403, 403)
    assert "schema_name" not in page.context["adminform"].form.fields
    assert Tenant.objects.filter(pk=tenant.pk, schema_name="alpha").exists()


def test_audit_events_are_read_only(platform_client, tenant_a) -> None:
    event = AuditEvent.objects.create(action="tenant.created", tenant=tenant_a.tenant, data={"schema": "alpha"})

    page = platform_client.get(f"/admin/tenants/auditevent/{event.pk}/change/")
    change = platform_client.post(f"/admin/tenants/auditevent/{event.pk}/change/", {"action": "forged"})
    delete = platform_client.post(f"/admin/tenants/auditevent/{event.pk}/delete/", {"post": "yes"})

    assert (page.status_code, change.status_code, delete.status_code) == (200, 403, 403)
    assert AuditEvent.objects.get(pk=event.pk).action == "tenant.created"


def test_adding_a_membership_goes_through_the_service_and_is_audited(platform_client, tenant_a) -> None:
    user = UserFactory(email="newhire@alpha.test")

    response = platform_client.post(
        "/admin/tenants/membership/add/", {"user": user.pk, "tenant": tenant_a.tenant.pk, "role": "agent"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=user).role == "agent"
    event = AuditEvent.objects.get(action="membership.added", data__user="newhire@alpha.test")
    assert (event.tenant_id, event.actor.email, event.data["role"]) == (
        tenant_a.tenant.pk,
        "root@voicedesk.test",
        "agent",
    )


def test_removing_a_membership_is_audited(platform_client, tenant_a) -> None:
    membership = Membership.objects.create(
        user=UserFactory(email="leaver@alpha.test"), tenant=tenant_a.tenant, role="agent"
    )

    response = platform_client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.get(action="membership.removed").data == {"user": "leaver@alpha.test", "role": "agent"}


def test_a_new_phone_number_is_normalised_and_registered(platform_client, tenant_a) -> None:
    response = platform_client.post(
        "/admin/tenants/phonenumber/add/", {"e164": "(555) 010-0777", "tenant": tenant_a.tenant.pk, "label": "Sales"}
    )

    assert response.status_code == 302
    assert PhoneNumber.objects.get(e164="+15550100777").tenant_id == tenant_a.tenant.pk
    event = AuditEvent.objects.get(action="phone_number.registered", data__number="+15550100777")
    assert (event.tenant_id, event.actor.email) == (tenant_a.tenant.pk, "root@voicedesk.test")


def test_a_number_of_another_business_is_refused(platform_client, tenant_a, tenant_b) -> None:
    response = platform_client.post(
        "/admin/tenants/phonenumber/add/", {"e164": "+1 555 000 1002", "tenant": tenant_a.tenant.pk, "label": ""}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"e164": ["Phone number with this Number already exists."]}
    assert PhoneNumber.objects.get(e164="+15550001002").tenant_id == tenant_b.tenant.pk


def test_usage_records_are_read_only_and_filter_by_tenant_and_month(platform_client, tenant_a, tenant_b) -> None:
    march = UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=1, seconds=60)
    april = UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=2, seconds=90)
    other = UsageRecord.objects.create(tenant=tenant_b.tenant, call_id=1, seconds=30)
    UsageRecord.objects.filter(pk=march.pk).update(created_at=datetime(2025, 3, 14, 12, tzinfo=UTC))
    UsageRecord.objects.filter(pk__in=[april.pk, other.pk]).update(created_at=datetime(2025, 4, 2, 9, tzinfo=UTC))

    by_month = platform_client.get("/admin/billing/usagerecord/", {"month": "2025-04"})
    by_both = platform_client.get(
        "/admin/billing/usagerecord/", {"month": "2025-04", "tenant__id__exact": tenant_a.tenant.pk}
    )
    change = platform_client.post(f"/admin/billing/usagerecord/{march.pk}/change/", {"seconds": 1})

    assert sorted(r.pk for r in by_month.context["cl"].result_list) == sorted([april.pk, other.pk])
    assert [r.pk for r in by_both.context["cl"].result_list] == [april.pk]
    month_filter = next(f for f in by_month.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "month")
    assert month_filter.lookup_choices == [("2025-04", "April 2025"), ("2025-03", "March 2025")]
    assert change.status_code == 403
    assert UsageRecord.objects.get(pk=march.pk).seconds == 60
