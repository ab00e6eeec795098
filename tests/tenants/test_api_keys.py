"""API keys: services, selectors and the settings page (/settings/api-keys/)."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from tenants.models import ApiKey, AuditEvent
from tenants.selectors import api_key_list, api_key_verify
from tenants.services import api_key_create, api_key_revoke, api_key_used_mark
from tests.factories import MembershipFactory

KEY_RE = re.compile(r"^vd_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
HTMX = {"HX-Request": "true"}
NOON = datetime(2030, 11, 25, 12, 0, tzinfo=UTC)


def _audit(tenant) -> list[tuple[str, str | None, dict]]:
    return [
        (e.action, e.actor.email if e.actor else None, e.data)
        for e in AuditEvent.objects.filter(tenant=tenant, action__startswith="api_key.").order_by("id")
    ]


# Services and selectors


def test_create_stores_only_a_hash_and_returns_the_full_key_once(tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="  CRM   sync ")

    prefix, secret = KEY_RE.match(plaintext).groups()
    key.refresh_from_db()
    assert (key.name, key.prefix, key.tenant, key.created_by) == ("CRM sync", prefix, tenant_a.tenant, tenant_a.owner)
    assert key.hashed == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in key.hashed
    assert (key.last_used_at, key.revoked_at, key.is_active) == (None, None, True)
    assert _audit(tenant_a.tenant) == [
        ("api_key.created", "owner@alpha.test", {"name": "CRM sync", "prefix": prefix}),
    ]


@pytest.mark.parametrize(("name", "code"), [("   ", "name_required"), ("x" * 101, "name_too_long")])
def test_create_refuses_a_bad_name_and_makes_nothing(tenant_a, name: str, code: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name=name)

    assert excinfo.value.code == code
    assert ApiKey.objects.count() == 0
    assert _audit(tenant_a.tenant) == []


def test_agents_and_outsiders_cannot_make_keys(tenant_a, tenant_b) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user

    for actor in (agent, tenant_b.owner):
        with pytest.raises(PermissionDenied):
            api_key_create(tenant=tenant_a.tenant, actor=actor, name="Nope")

    assert ApiKey.objects.count() == 0


def test_revoke_stamps_the_key_and_audits_once(tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")

    with time_machine.travel(NOON, tick=False):
        revoked = api_key_revoke(tenant=tenant_a.tenant, key_id=key.pk, actor=tenant_a.owner)
    again = api_key_revoke(tenant=tenant_a.tenant, key_id=key.pk, actor=tenant_a.owner)

    assert revoked.revoked_at == NOON
    assert again.revoked_at == NOON
    assert [action for action, _, _ in _audit(tenant_a.tenant)] == ["api_key.created", "api_key.revoked"]
    assert _audit(tenant_a.tenant)[1] == (
        "api_key.revoked",
        "owner@alpha.test",
        {"name": "Zapier", "prefix": key.prefix},
    )


def test_revoke_cannot_reach_another_tenants_key(tenant_a, tenant_b) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")

    with pytest.raises(ApiKey.DoesNotExist):
        api_key_revoke(tenant=tenant_b.tenant, key_id=key.pk, actor=tenant_b.owner)

    key.refresh_from_db()
    assert key.revoked_at is None
    assert _audit(tenant_b.tenant) == []


def test_verify_finds_the_key_only_with_its_exact_secret(tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")
    prefix, secret = KEY_RE.match(plaintext).groups()
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]

    assert api_key_verify(raw_key=plaintext) == key
    assert api_key_verify(raw_key=f"  {plaintext} ") == key
    assert api_key_verify(raw_key=f"vd_{prefix}_{other_secret}") is None
    assert api_key_verify(raw_key=f"vd_00000000_{secret}") is None
    assert api_key_verify(raw_key=secret) is None
    assert api_key_verify(raw_key="") is None


def test_list_is_the_tenants_keys_newest_first(tenant_a, tenant_b) -> None:
    with time_machine.travel(NOON, tick=False):
        first, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="First")
    with time_machine.travel(NOON + timedelta(hours=1), tick=False):
        second, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Second")
    api_key_create(tenant=tenant_b.tenant, actor=tenant_b.owner, name="Beta's")

    assert list(api_key_list(tenant=tenant_a.tenant)) == [second, first]


def test_last_used_is_written_at_most_once_a_minute(tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")

    api_key_used_mark(key=key, now=NOON)
    api_key_used_mark(key=ApiKey.objects.get(pk=key.pk), now=NOON + timedelta(seconds=59))
    assert ApiKey.objects.get(pk=key.pk).last_used_at == NOON

    api_key_used_mark(key=ApiKey.objects.get(pk=key.pk), now=NOON + timedelta(seconds=60))
    assert ApiKey.objects.get(pk=key.pk).last_used_at == NOON + timedelta(seconds=60)


def test_a_stale_copy_does_not_move_last_used_back_within_the_minute(tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")
    stale = ApiKey.objects.get(pk=key.pk)  # read before another request marked the key
    api_key_used_mark(key=key, now=NOON)

    api_key_used_mark(key=stale, now=NOON + timedelta(seconds=30))

    assert ApiKey.objects.get(pk=key.pk).last_used_at == NOON


# The page


def _admin_client(tenant_a) -> tuple[Client, object]:
    admin = MembershipFactory(tenant=tenant_a.tenant, role="admin").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(admin)
    return client, admin


def test_page_lists_keys_without_their_secrets(client_a, tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")
    api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Old")
    api_key_revoke(tenant=tenant_a.tenant, key_id=ApiKey.objects.get(name="Old").pk, actor=tenant_a.owner)

    response = client_a.get("/settings/api-keys/")

    html = response.content.decode()
    assert response.status_code == 200
    assert [k.name for k in response.context["keys"]] == ["Old", "Zapier"]
    assert f"<code>vd_{key.prefix}_…</code>" in html
    assert plaintext not in html
    assert KEY_RE.pattern not in html
    assert html.count("Revoke<span") == 1  # the revoked key has no button
    assert '<th scope="row">Zapier</th>' in html
    assert 'aria-current="page">API keys</a>' in html
    assert response["Cache-Control"] == "no-store, private"


def test_creating_a_key_shows_it_once(client_a, tenant_a) -> None:
    response = client_a.post("/settings/api-keys/", {"name": "CRM sync"})

    key = ApiKey.objects.get()
    plaintext = response.context["plaintext"]
    assert response.status_code == 200
    assert (key.name, key.created_by, key.tenant) == ("CRM sync", tenant_a.owner, tenant_a.tenant)
    assert api_key_verify(raw_key=plaintext) == key
    assert f'value="{plaintext}"' in response.content.decode()
    assert "<!DOCTYPE html>" in response.content.decode()
    assert response["Cache-Control"] == "no-store, private"
    # Shown once: the page never shows it again.
    assert plaintext not in client_a.get("/settings/api-keys/").content.decode()


def test_creating_a_key_with_htmx_returns_the_panel_and_an_announcement(tenant_a) -> None:
    client, admin = _admin_client(tenant_a)

    response = client.post("/settings/api-keys/", {"name": "Zapier"}, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="apikeys-panel">')
    assert "<!DOCTYPE html>" not in html
    assert f'value="{response.context["plaintext"]}"' in html
    announcement = "Key “Zapier” created. Copy it now: it is shown only once."
    assert f'<div id="apikeys-announce" hx-swap-oob="innerHTML">{announcement}</div>' in html
    assert list(ApiKey.objects.values_list("name", "created_by")) == [("Zapier", admin.pk)]


def test_a_key_without_a_name_is_refused_and_nothing_is_made(client_a, tenant_a) -> None:
    response = client_a.post("/settings/api-keys/", {"name": "  "}, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<p id="apikeys-name-error" class="apikeys-error">Give the key a name, e.g. the system that will use it.</p>'
        in html
    )
    assert 'aria-invalid="true"' in html
    assert ApiKey.objects.count() == 0
    assert AuditEvent.objects.filter(action="api_key.created").count() == 0


def test_revoking_with_htmx_returns_the_updated_row(client_a, tenant_a) -> None:
    key, plaintext = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")
    # Close to now: the test session must not have expired.
    moment = timezone.now().replace(microsecond=0) + timedelta(minutes=5)

    with time_machine.travel(moment, tick=False):
        response = client_a.post(f"/settings/api-keys/{key.pk}/revoke", headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<tr id="apikey-{key.pk}" class="apikeys-revoked">')
    expected_time = f'<time datetime="{moment.isoformat()}">{moment.day} {moment:%b %Y}</time>'
    assert f"Revoked {expected_time}" in html
    assert "Revoke<span" not in html
    assert 'hx-swap-oob="innerHTML">Key “Zapier” revoked.</div>' in html
    assert ApiKey.objects.get(pk=key.pk).revoked_at == moment
    assert api_key_verify(raw_key=plaintext).revoked_at == moment


def test_revoking_without_htmx_redirects_to_the_list(client_a, tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")

    response = client_a.post(f"/settings/api-keys/{key.pk}/revoke")

    assert (response.status_code, response["Location"]) == (302, "/settings/api-keys/")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_revoke_is_post_only(client_a, tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")

    assert client_a.get(f"/settings/api-keys/{key.pk}/revoke").status_code == 405
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_another_tenants_key_cannot_be_revoked_from_here(tenant_a, tenant_b) -> None:
    key_b, _ = api_key_create(tenant=tenant_b.tenant, actor=tenant_b.owner, name="Beta's")
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_a.owner)

    response = client.post(f"/settings/api-keys/{key_b.pk}/revoke", headers=HTMX)

    assert response.status_code == 404
    assert ApiKey.objects.get(pk=key_b.pk).revoked_at is None
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 0


def test_agents_get_404_and_change_nothing(tenant_a) -> None:
    key, _ = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="Zapier")
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(agent)

    assert client.get("/settings/api-keys/").status_code == 404
    assert client.post("/settings/api-keys/", {"name": "Mine"}).status_code == 404
    assert client.post(f"/settings/api-keys/{key.pk}/revoke").status_code == 404
    assert list(ApiKey.objects.values_list("name", "revoked_at")) == [("Zapier", None)]
    # Their navigation offers the docs, not the keys.
    html = client.get("/").content.decode()
    assert "/settings/api-keys/" not in html
    assert '<a href="/api/docs/">API docs</a>' in html


def test_anonymous_visitors_are_sent_to_sign_in(tenant_a) -> None:
    response = Client(HTTP_HOST=tenant_a.host).post("/settings/api-keys/", {"name": "Sneaky"})

    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/settings/api-keys/")
    assert ApiKey.objects.count() == 0
