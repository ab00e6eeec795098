"""Numbers get LiveKit dispatch rules through livekit-api, against the emulator; the owner's sync fixes drift."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from calls.transports.livekit import rules, services
from calls.transports.livekit.emulator import LiveKitEmulator
from calls.transports.livekit.tasks import livekit_number_provision_job, livekit_number_release_job
from tenants.models import AuditEvent, PhoneNumber
from tenants.services import phone_number_register, phone_number_remove

pytestmark = pytest.mark.django_db


def _register(tenant_a, django_capture_on_commit_callbacks, number="+15550002001") -> PhoneNumber:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        phone = phone_number_register(tenant=tenant_a.tenant, number=number, actor=tenant_a.owner)
    assert len(callbacks) == 1  # the provisioning job, sent once the number is saved
    return phone


def test_a_new_number_is_pending_then_gets_its_rule(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    phone.refresh_from_db()
    assert (phone.routing_state, phone.routing_ref, phone.routing_error) == ("pending", "", "")

    livekit_number_provision_job.fn(phone.pk)

    phone.refresh_from_db()
    [rule] = livekit.rules.values()
    assert (phone.routing_state, phone.routing_ref, phone.routing_error) == ("active", rule.sip_dispatch_rule_id, "")
    assert list(rule.inbound_numbers) == ["+15550002001"]
    assert json.loads(rule.room_config.agents[0].metadata) == {"tenant": "alpha"}
    # A retried job adopts the rule instead of making a second one.
    livekit_number_provision_job.fn(phone.pk)
    assert list(livekit.rules) == [rule.sip_dispatch_rule_id]


def test_an_unreachable_livekit_leaves_the_number_pending_with_the_reason_then_failed(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks, settings
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    settings.LIVEKIT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port

    with pytest.raises(services.RetryableLiveKitError):
        services.livekit_number_provision(number_id=phone.pk)
    phone.refresh_from_db()
    assert (phone.routing_state, phone.routing_error) == (
        "pending",
        "LiveKit unreachable (ClientConnectorError); trying again.",
    )

    services.livekit_number_provision(number_id=phone.pk, final_attempt=True)
    phone.refresh_from_db()
    assert (phone.routing_state, phone.routing_error) == ("failed", "LiveKit unreachable (ClientConnectorError).")
    assert livekit.rules == {}


def test_a_rule_livekit_refuses_marks_the_number_failed_with_livekits_message(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks, settings
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    settings.LIVEKIT_API_SECRET = "a-secret-livekit-does-not-know-0000000"

    assert services.livekit_number_provision(number_id=phone.pk) == ""

    phone.refresh_from_db()
    assert phone.routing_state == "failed"
    assert phone.routing_error.startswith("LiveKit: invalid token: ")
    # The business sees it on its numbers page.
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_a.owner)
    page = client.get("/settings/numbers/").content.decode()
    assert 'class="routing routing-failed">Set-up failed<br><span class="error">LiveKit: invalid token: ' in page


def test_removing_a_number_deletes_its_rule(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    livekit_number_provision_job.fn(phone.pk)
    phone.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        phone_number_remove(tenant=tenant_a.tenant, number_id=phone.pk, actor=tenant_a.owner)
    assert len(callbacks) == 1
    livekit_number_release_job.fn("+15550002001", phone.routing_ref)

    assert livekit.rules == {}
    assert not PhoneNumber.objects.filter(pk=phone.pk).exists()
    assert AuditEvent.objects.filter(action="phone_number.removed", data__number="+15550002001").count() == 1


def test_another_business_cannot_remove_a_number_and_nothing_changes(
    livekit: LiveKitEmulator, tenant_a, tenant_b, django_capture_on_commit_callbacks
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    client = Client(HTTP_HOST=tenant_b.host)
    client.force_login(tenant_b.owner)

    response = client.post(f"/settings/numbers/{phone.pk}/remove/")

    assert response.status_code == 404
    assert PhoneNumber.objects.filter(pk=phone.pk, tenant=tenant_a.tenant).exists()


def test_the_numbers_page_shows_each_numbers_line_state(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks
) -> None:
    phone = _register(tenant_a, django_capture_on_commit_callbacks)
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_a.owner)

    pending = client.get("/settings/numbers/").content.decode()
    livekit_number_provision_job.fn(phone.pk)
    active = client.get("/settings/numbers/").content.decode()

    assert 'class="routing routing-pending">Being set up' in pending
    assert 'class="routing routing-active">Active' in active


def test_sync_fixes_and_lists_every_difference(livekit: LiveKitEmulator, tenant_a, tenant_b) -> None:
    # Numbers registered while LiveKit was off have no rule; LiveKit has a stale
    # rule, one pointing at the wrong business and a duplicate.
    alpha = PhoneNumber.objects.get(e164="+15550001001")
    stale = rules.rule_create(e164="+15550009999", schema_name="alpha")
    wrong = rules.rule_create(e164="+15550001002", schema_name="alpha")
    first = rules.rule_create(e164="+15550001001", schema_name="alpha")
    del livekit.rules[first]  # the emulator refuses duplicates; put one in behind its back
    dup_a = rules.rule_create(e164="+15550001001", schema_name="alpha")
    copy = type(livekit.rules[dup_a])()
    copy.CopyFrom(livekit.rules[dup_a])
    copy.sip_dispatch_rule_id = first
    livekit.rules[first] = copy

    out = StringIO()
    call_command("livekit_sync_rules", stdout=out)

    alpha.refresh_from_db()
    beta = PhoneNumber.objects.get(e164="+15550001002")
    kept = {r.e164: r for r in rules.rules_list()}
    assert sorted(kept) == ["+15550001001", "+15550001002"]
    assert len(livekit.rules) == 2
    assert (alpha.routing_state, alpha.routing_ref) == ("active", kept["+15550001001"].rule_id)
    assert (beta.routing_state, beta.routing_ref, kept["+15550001002"].schema_name) == (
        "active",
        kept["+15550001002"].rule_id,
        "beta",
    )
    dropped = dup_a if kept["+15550001001"].rule_id == first else first
    assert out.getvalue().splitlines() == [
        *sorted(
            [
                f"+15550001001: deleted duplicate rule {dropped}",
                f"+15550001001: recorded rule {kept['+15550001001'].rule_id} as active",
                f"+15550001002: created rule {kept['+15550001002'].rule_id}",
                f"+15550001002: deleted rule {wrong}: it dispatched to another business",
                f"+15550009999: deleted rule {stale}: no business has this number",
            ]
        ),
        "5 differences fixed.",
    ]

    again = StringIO()
    call_command("livekit_sync_rules", stdout=again)
    assert again.getvalue().splitlines() == ["LiveKit's dispatch rules match our numbers."]
