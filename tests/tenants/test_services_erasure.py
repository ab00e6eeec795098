"""Erasing a business: nothing of it is left (schema, recordings, public rows), no other business is touched."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context

from billing.models import Subscription, UsageRecord
from calls.models import Call
from tenants.models import AuditEvent, Domain, Membership, PhoneNumber, Tenant, User
from tenants.services import api_key_create, phone_number_register, tenant_create, tenant_erase
from tests.factories import CallFactory, MembershipFactory, SubscriptionFactory, UserFactory, UtteranceFactory

WAV = b"RIFF" + b"\x00" * 60


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def platform_owner(db: None) -> User:
    return User.objects.create_superuser(email="owner@platform.test", password="x" * 16)


def _write(media: Path, name: str, data: bytes = WAV) -> Path:
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _public_rows_of(tenant_id: int) -> dict[str, int]:
    """Rows of every public-schema model that points at the tenant."""
    counts = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if (
                getattr(field, "related_model", None) is Tenant
                and field.concrete
                and field.many_to_one | field.one_to_one
            ):
                counts[model._meta.label] = model.objects.filter(**{field.name: tenant_id}).count()
    return counts


@pytest.fixture
def gamma(media: Path, tenant_a: Any) -> dict[str, Any]:
    """A business with members, a number, a key, billing rows, calls and recordings in both layouts."""
    owner = UserFactory(email="gamma-owner@example.test")
    tenant = tenant_create(name="Gamma Heating", slug="gamma", owner=owner)
    agent = MembershipFactory(tenant=tenant, role="agent").user
    shared = MembershipFactory(tenant=tenant, role="agent").user
    Membership.objects.create(tenant=tenant_a.tenant, user=shared, role="agent")
    phone_number_register(tenant=tenant, number="+15550009999")
    api_key_create(tenant=tenant, actor=owner, name="CRM")
    SubscriptionFactory(tenant=tenant, status=Subscription.Status.CANCELED, stripe_customer_id="cus_gamma",
                        stripe_subscription_id="sub_gamma")  # fmt: skip
    UsageRecord.objects.create(tenant=tenant, call_id=1, seconds=75, reported_at=timezone.now())
    with tenant_context(tenant):
        new = CallFactory(recording="recordings/gamma/2026/11/call-1.wav")
        old = CallFactory(recording="recordings/2026/10/call-2.wav")
        UtteranceFactory(call=new, text="my number is 555 201 3344")
    files = [_write(media, new.recording.name), _write(media, old.recording.name)]
    return {"tenant": tenant, "owner": owner, "agent": agent, "shared": shared, "files": files}


@pytest.fixture
def alpha_files(media: Path, tenant_a: Any) -> list[Path]:
    """Tenant A's recordings, one beside gamma's old-layout file."""
    with tenant_context(tenant_a.tenant):
        new = CallFactory(recording="recordings/alpha/2026/11/call-1.wav")
        old = CallFactory(recording="recordings/2026/10/call-2_Xy12Ab3.wav")
    return [_write(media, new.recording.name, b"alpha-1"), _write(media, old.recording.name, b"alpha-2")]


def _alpha_state(tenant_a: Any) -> dict[str, Any]:
    with tenant_context(tenant_a.tenant):
        calls = list(Call.objects.order_by("pk").values_list("pk", "recording"))
    return {"calls": calls, "public": _public_rows_of(tenant_a.tenant.pk), "schema": schema_exists("alpha")}


EXPECTED_COUNTS = {
    "domains": 1,
    "memberships": 3,
    "users": 2,  # the owner and the agent; the member shared with alpha keeps the account
    "phone_numbers": 1,
    "api_keys": 1,
    "audit_events": 3,  # tenant created, number registered, key made
    "schema": 1,
    "recording_files": 2,
    "usage_records": 1,
    "subscriptions": 1,
}


def test_a_dry_run_reports_what_would_go_and_changes_nothing(gamma, alpha_files, platform_owner, tenant_a) -> None:
    tenant = gamma["tenant"]
    before = _public_rows_of(tenant.pk)

    report = tenant_erase(tenant=tenant, actor=platform_owner)

    assert (report.dry_run, report.erased, report.blockers) == (True, False, [])
    assert report.counts == EXPECTED_COUNTS
    assert report.kept == {"stripe_customer_id": "cus_gamma", "stripe_subscription_id": "sub_gamma"}
    assert _public_rows_of(tenant.pk) == before
    assert schema_exists("gamma")
    assert all(path.exists() for path in gamma["files"] + alpha_files)


def test_erasing_a_business_leaves_nothing_of_it_and_touches_no_other(
    gamma, alpha_files, platform_owner, tenant_a, media
) -> None:
    tenant = gamma["tenant"]
    tenant_id = tenant.pk
    alpha_before = _alpha_state(tenant_a)

    report = tenant_erase(tenant=tenant, actor=platform_owner, dry_run=False)

    assert report.erased is True
    assert report.counts == EXPECTED_COUNTS
    assert not schema_exists("gamma")
    assert not Tenant.objects.filter(pk=tenant_id).exists()
    assert set(_public_rows_of(tenant_id).values()) == {0}
    assert not Domain.objects.filter(domain__startswith="gamma.").exists()
    assert not PhoneNumber.objects.filter(e164="+15550009999").exists()
    assert not User.objects.filter(pk__in=[gamma["owner"].pk, gamma["agent"].pk]).exists()
    assert list(Membership.objects.filter(user=gamma["shared"]).values_list("tenant_id", flat=True)) == [
        tenant_a.tenant.pk
    ]
    assert User.objects.filter(pk=platform_owner.pk).exists()
    assert not any(path.exists() for path in gamma["files"])
    assert not (media / "recordings" / "gamma").exists()
    # Alpha is untouched: its calls, files, public rows and schema.
    assert _alpha_state(tenant_a) == alpha_before
    assert [path.read_bytes() for path in alpha_files] == [b"alpha-1", b"alpha-2"]
    [erased] = AuditEvent.objects.filter(action="tenant.erased").values_list("actor_id", "tenant_id", "data")
    assert erased == (
        platform_owner.pk,
        None,
        {
            "schema": "gamma",
            "tenant_id": tenant_id,
            "counts": report.counts,
            "kept": {"stripe_customer_id": "cus_gamma", "stripe_subscription_id": "sub_gamma"},
        },
    )
    assert connection.schema_name == "public"


def test_a_business_still_billed_or_with_unreported_minutes_is_not_erased(gamma, platform_owner) -> None:
    tenant = gamma["tenant"]
    Subscription.objects.filter(tenant=tenant).update(status=Subscription.Status.ACTIVE)
    UsageRecord.objects.create(tenant=tenant, call_id=2, seconds=30)
    before = _public_rows_of(tenant.pk)

    report = tenant_erase(tenant=tenant, actor=platform_owner, dry_run=False)

    assert report.erased is False
    assert report.blockers == [
        "The Stripe subscription is active: cancel it first, so the business is no longer billed.",
        "1 call(s) not yet reported to Stripe: wait for the usage report (every quarter hour).",
    ]
    assert _public_rows_of(tenant.pk) == before
    assert schema_exists("gamma")
    assert all(path.exists() for path in gamma["files"])


def test_only_a_superuser_erases_and_never_the_template(gamma, tenant_a) -> None:
    with pytest.raises(PermissionDenied):
        tenant_erase(tenant=gamma["tenant"], actor=gamma["owner"], dry_run=False)
    staff = User.objects.create_user(email="staff@platform.test", password="x" * 16, is_staff=True)
    with pytest.raises(PermissionDenied):
        tenant_erase(tenant=gamma["tenant"], actor=staff, dry_run=False)
    admin = User.objects.create_superuser(email="root@platform.test", password="x" * 16)
    with pytest.raises(ValidationError, match="not a business"):
        tenant_erase(tenant=Tenant.objects.get(is_template=True), actor=admin, dry_run=False)
    assert schema_exists("gamma")
    assert Tenant.objects.filter(schema_name="gamma").exists()


def test_the_command_shows_asks_and_erases(gamma, platform_owner, monkeypatch) -> None:
    out = io.StringIO()
    call_command("tenant_erase", "gamma", by="owner@platform.test", dry_run=True, stdout=out)
    assert "  recording_files: 2\n" in out.getvalue()
    assert "  kept for accounting: stripe_customer_id = cus_gamma\n" in out.getvalue()

    monkeypatch.setattr("builtins.input", lambda prompt: "gama")
    with pytest.raises(CommandError, match="confirmation did not match"):
        call_command("tenant_erase", "gamma", by="owner@platform.test", stdout=io.StringIO())
    assert schema_exists("gamma")
    with pytest.raises(CommandError, match="No business"):
        call_command("tenant_erase", "nobody", by="owner@platform.test", confirm="nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="Only the platform's owner"):
        call_command("tenant_erase", "gamma", by=gamma["owner"].email, confirm="gamma", stdout=io.StringIO())

    out = io.StringIO()
    call_command("tenant_erase", "gamma", by="owner@platform.test", confirm="gamma", stdout=out)
    assert out.getvalue().endswith("Erased gamma.\n")
    assert not schema_exists("gamma")
