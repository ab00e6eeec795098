"""The platform admin on the public host: platform staff only, writes through the services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.http import HttpResponse
from django.test import Client

from billing.models import UsageRecord
from tenants.models import AuditEvent, Membership, PhoneNumber, Tenant, User
from tests.conftest import PASSWORD
from tests.factories import UserFactory

PUBLIC_HOST = "localhost"


def _totp_code(secret: str) -> str:
    counter = next(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counter))


def _staff_with_totp(email: str = "root@voicedesk.test") -> tuple[User, str]:
    owner = User.objects.create_superuser(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=owner, email=email, verified=True, primary=True)
    secret = generate_totp_secret()
    TOTP.activate(owner, secret)
    return owner, secret


def _sign_in(client: Client, email: str, password: str) -> HttpResponse:
    return client.post("/accounts/login/?next=/admin/", {"login": email, "password": password})


@pytest.fixture
def platform_client(db) -> Client:
    """The SaaS owner, signed in the only way there is: allauth, password, then a TOTP code."""
    _owner, secret = _staff_with_totp()
    client = Client(HTTP_HOST=PUBLIC_HOST)
    assert _sign_in(client, "root@voicedesk.test", PASSWORD)["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": _totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    return client


@pytest.mark.parametrize("path", ["/admin/", "/admin/tenants/tenant/", "/admin/billing/usagerecord/"])
def test_a_tenant_owner_gets_nothing_on_the_platform_admin(tenant_a, path: str) -> None:
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(tenant_a.owner)

    assert client.get(path).status_code == 404
    assert client.get(f"/admin/login/?next={path}").status_code == 404


@pytest.mark.parametrize("path", ["/admin/", "/admin/tenants/tenant/"])
def test_an_anonymous_visitor_is_sent_to_the_allauth_sign_in(db, path: str) -> None:
    client = Client(HTTP_HOST=PUBLIC_HOST)

    for url in (path, f"/admin/login/?next={path}"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"


def test_the_stock_admin_login_form_does_not_take_passwords(db) -> None:
    owner, _secret = _staff_with_totp()
    client = Client(HTTP_HOST=PUBLIC_HOST)

    response = client.post("/admin/login/?next=/admin/", {"username": owner.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_a_password_alone_does_not_open_the_platform_admin(db) -> None:
    _staff_with_totp()
    client = Client(HTTP_HOST=PUBLIC_HOST)

    response = _sign_in(client, "root@voicedesk.test", PASSWORD)

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/")["Location"] == "/accounts/login/?next=/admin/"


def test_a_wrong_code_does_not_open_the_platform_admin(db) -> None:
    _owner, secret = _staff_with_totp()
    client = Client(HTTP_HOST=PUBLIC_HOST)
    _sign_in(client, "root@voicedesk.test", PASSWORD)
    wrong = f"{(int(_totp_code(secret)) + 1) % 1_000_000:06d}"

    response = client.post("/accounts/2fa/authenticate/", {"code": wrong})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_staff_without_a_second_factor_are_sent_to_set_one_up(db) -> None:
    staff = User.objects.create_superuser(email="new-staff@voicedesk.test", password=PASSWORD)
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(staff)

    response = client.get("/admin/tenants/tenant/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/?next=/admin/tenants/tenant/"


def test_a_session_that_signed_in_without_the_factor_confirms_a_code_first(db) -> None:
    staff, secret = _staff_with_totp()
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(staff)  # a sign-in from before the factor was added

    response = client.get("/admin/")
    assert response["Location"] == "/accounts/2fa/reauthenticate/?next=/admin/"

    confirmed = client.post("/accounts/2fa/reauthenticate/?next=/admin/", {"code": _totp_code(secret)})
    assert confirmed["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_platform_admin_sign_in_failures_are_rate_limited_by_allauth(db) -> None:
    # Its own address: the failure counter outlives the test in the shared cache.
    _staff_with_totp("limited-staff@voicedesk.test")
    client = Client(HTTP_HOST=PUBLIC_HOST)
    for _ in range(5):
        assert _sign_in(client, "limited-staff@voicedesk.test", "wrong password").status_code == 200

    response = _sign_in(client, "limited-staff@voicedesk.test", PASSWORD)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Too many failed login attempts. Try again later."]
    assert "_auth_user_id" not in client.session


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
