"""The speech providers page: business admins store, replace, delete and test their own provider keys,
which no page ever shows beyond their last four characters."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, ProviderKey
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.services import provider_key_save
from tenants.models import AuditEvent
from tests.factories import MembershipFactory

EL_KEY = "el-tenant-key-0042"
URL = "/settings/provider-keys/"


def _html(response) -> str:
    return response.content.decode()


def _stored(tenant_fixture) -> list[tuple[str, str, str]]:
    with tenant_context(tenant_fixture.tenant):
        return list(ProviderKey.objects.order_by("provider").values_list("provider", "ciphertext", "last4"))


def _audit() -> list[tuple[str, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(action__startswith="provider_key.").order_by("pk")
    return list(rows.values_list("action", "data"))


def _client_with_role(tenant_fixture, role: str) -> Client:
    membership = MembershipFactory(tenant=tenant_fixture.tenant, role=role)
    client = Client(HTTP_HOST=tenant_fixture.host)
    client.force_login(membership.user)
    return client


def _store(tenant_fixture, provider: str = "elevenlabs", key: str = EL_KEY) -> None:
    with tenant_context(tenant_fixture.tenant):
        provider_key_save(provider=provider, api_key=key, actor=None)


def test_the_page_shows_stored_keys_by_their_last_four_characters_only(client_a, tenant_a) -> None:
    _store(tenant_a)

    response = client_a.get(URL)

    html = _html(response)
    assert response.status_code == 200
    assert "<h1>Speech providers</h1>" in html
    assert '<th scope="row">ElevenLabs</th>' in html
    assert "<code>••••0042</code>" in html
    assert EL_KEY not in html
    assert _stored(tenant_a)[0][1] not in html  # nor the encrypted token
    assert f'<a href="{URL}" aria-current="page">Speech providers</a>' in html
    assert '<input type="password" name="api_key"' in html


def test_saving_a_key_stores_it_encrypted_and_the_page_never_shows_it(client_a, tenant_a) -> None:
    response = client_a.post(URL, {"provider": "elevenlabs", "api_key": EL_KEY})

    assert (response.status_code, response["Location"]) == (302, URL)
    [(provider, ciphertext, last4)] = _stored(tenant_a)
    assert (provider, last4) == ("elevenlabs", "0042")
    assert EL_KEY not in ciphertext
    assert _audit() == [("provider_key.saved", {"provider": "elevenlabs", "last4": "0042", "replaced": False})]
    page = _html(client_a.get(URL))
    assert "ElevenLabs key ending 0042 saved. Calls use it from the next one." in page
    assert EL_KEY not in page


def test_replacing_a_key_keeps_one(client_a, tenant_a) -> None:
    _store(tenant_a)

    response = client_a.post(URL, {"provider": "elevenlabs", "api_key": "el-replacement-9876"})

    assert response.status_code == 302
    assert [(p, last4) for p, _c, last4 in _stored(tenant_a)] == [("elevenlabs", "9876")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"provider": "elevenlabs", "api_key": ""}, "Paste the key."),
        (
            {"provider": "deepgram", "api_key": EL_KEY},
            "Select a valid choice. deepgram is not one of the available choices.",
        ),
        ({"provider": "cartesia", "api_key": "has space-1234"}, "That does not look like an API key"),
    ],
)
def test_a_refused_key_changes_nothing_and_is_not_echoed_back(client_a, tenant_a, data, message) -> None:
    _store(tenant_a)
    before, audit_before = _stored(tenant_a), _audit()

    response = client_a.post(URL, data)

    html = _html(response)
    assert response.status_code == 200
    assert message in html
    assert 'value="has space-1234"' not in html
    assert f'value="{EL_KEY}"' not in html
    assert (_stored(tenant_a), _audit()) == (before, audit_before)


def test_an_admin_may_manage_keys(tenant_a) -> None:
    client = _client_with_role(tenant_a, "admin")

    assert client.get(URL).status_code == 200
    assert client.post(URL, {"provider": "cartesia", "api_key": "sk_car_admin_1234"}).status_code == 302
    assert [p for p, _c, _l in _stored(tenant_a)] == ["cartesia"]


def test_an_agent_gets_404_everywhere_and_changes_nothing(tenant_a) -> None:
    _store(tenant_a)
    before, audit_before = _stored(tenant_a), _audit()
    client = _client_with_role(tenant_a, "agent")

    assert client.get(URL).status_code == 404
    assert client.post(URL, {"provider": "cartesia", "api_key": "sk_car_agent_1234"}).status_code == 404
    assert client.post(f"{URL}elevenlabs/delete/").status_code == 404
    assert client.post(f"{URL}elevenlabs/test/").status_code == 404
    assert (_stored(tenant_a), _audit()) == (before, audit_before)


def test_another_business_neither_sees_nor_deletes_the_key(tenant_a, tenant_b) -> None:
    _store(tenant_a)
    before = _stored(tenant_a)
    client = Client(HTTP_HOST=tenant_b.host)
    client.force_login(tenant_b.owner)

    page = _html(client.get(URL))

    assert "No keys stored." in page
    assert "0042" not in page
    assert client.post(f"{URL}elevenlabs/delete/").status_code == 404
    assert client.post(f"{URL}elevenlabs/test/").status_code == 404
    # Tenant A's owner on tenant B's host is not a member there.
    stranger = Client(HTTP_HOST=tenant_b.host)
    stranger.force_login(tenant_a.owner)
    assert stranger.get(URL).status_code == 404
    assert _stored(tenant_a) == before


def test_deleting_a_key_forgets_it(client_a, tenant_a) -> None:
    _store(tenant_a)

    response = client_a.post(f"{URL}elevenlabs/delete/")

    assert (response.status_code, response["Location"]) == (302, URL)
    assert _stored(tenant_a) == []
    assert _audit()[-1] == ("provider_key.deleted", {"provider": "elevenlabs", "last4": "0042"})
    assert client_a.post(f"{URL}elevenlabs/delete/").status_code == 404
    assert client_a.post(f"{URL}nonsense/delete/").status_code == 404
    assert client_a.get(f"{URL}elevenlabs/delete/").status_code == 405


def test_test_this_key_shows_what_the_provider_said(client_a, tenant_a) -> None:
    _store(tenant_a)
    before = _stored(tenant_a)
    with (
        ElevenLabsEmulator(api_keys=(EL_KEY,), stall_s=3.0) as emulator,
        override_settings(SPEECH_PROVIDER_BASE_URLS={"elevenlabs": emulator.url}, SPEECH_PROVIDER_CHECK_TIMEOUT_S=1.0),
    ):
        ok = _html(client_a.post(f"{URL}elevenlabs/test/"))
        emulator.fault = "reject_key"
        refused = _html(client_a.post(f"{URL}elevenlabs/test/"))
        emulator.fault = "stall"
        unreachable = _html(client_a.post(f"{URL}elevenlabs/test/"))

    assert (
        '<p role="status" class="provider-key-check provider-key-check-ok">OK: The key works: 3 voices available.</p>'
        in ok
    )
    assert (
        '<p role="status" class="provider-key-check provider-key-check-refused">'
        "Refused: ElevenLabs refused the key (HTTP 401).</p>"
    ) in refused
    assert (
        '<p role="status" class="provider-key-check provider-key-check-unreachable">'
        "Unreachable: ElevenLabs was not reached within 1 s (ReadTimeout).</p>"
    ) in unreachable
    assert all(EL_KEY not in page for page in (ok, refused, unreachable))
    assert _stored(tenant_a) == before


def test_testing_a_provider_with_no_stored_key_is_a_404(client_a) -> None:
    assert client_a.post(f"{URL}cartesia/test/").status_code == 404
    assert client_a.post(f"{URL}nonsense/test/").status_code == 404


def test_the_tenant_admin_does_not_offer_provider_keys(client_a, tenant_a) -> None:
    _store(tenant_a)

    index = client_a.get("/admin/")

    assert index.status_code == 200
    assert "/admin/calls/faqentry/" in _html(index)
    assert "providerkey" not in _html(index).lower()
    assert client_a.get("/admin/calls/providerkey/").status_code == 404


def _post_call_options(tenant_fixture) -> dict[str, Any]:
    with tenant_context(tenant_fixture.tenant):
        return AgentConfig.objects.get().post_call_transcription


def _post_call_audit() -> list[tuple[str, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(action="agent.post_call_transcription_set").order_by("pk")
    return list(rows.values_list("action", "data"))


def test_post_call_transcripts_need_an_assemblyai_key_first(client_a, tenant_a) -> None:
    page = _html(client_a.get(URL))
    assert "Store an AssemblyAI key above to turn this on." in page
    assert 'disabled aria-describedby="post-call-needs-key"' in page

    response = client_a.post(f"{URL}post-call/", {"enabled": "on"})

    assert response.status_code == 200
    assert "Store an AssemblyAI key first: the recordings are sent with your own key." in _html(response)
    assert (_post_call_options(tenant_a), _post_call_audit()) == ({}, [])


def test_post_call_transcripts_are_turned_on_with_the_businesss_own_key_and_off_again(client_a, tenant_a) -> None:
    _store(tenant_a, provider="assemblyai", key="aai-tenant-key-7731")

    on = client_a.post(f"{URL}post-call/", {"enabled": "on"}, follow=True)

    assert "Recordings are transcribed again after each call from now on." in _html(on)
    assert 'name="enabled" checked' in _html(on)
    assert _post_call_options(tenant_a) == {"provider": "assemblyai", "tenant_key": True}
    off = client_a.post(f"{URL}post-call/", {}, follow=True)
    assert "Recordings are no longer transcribed again after calls." in _html(off)
    assert _post_call_options(tenant_a) == {}
    assert [data["enabled"] for _action, data in _post_call_audit()] == [True, False]


def test_only_the_businesss_admins_turn_post_call_transcripts_on(tenant_a, tenant_b) -> None:
    _store(tenant_a, provider="assemblyai", key="aai-tenant-key-7731")
    agent = _client_with_role(tenant_a, "agent")
    stranger = Client(HTTP_HOST=tenant_a.host)
    stranger.force_login(tenant_b.owner)

    assert agent.post(f"{URL}post-call/", {"enabled": "on"}).status_code == 404
    assert stranger.post(f"{URL}post-call/", {"enabled": "on"}).status_code == 404
    assert _client_with_role(tenant_a, "admin").get(f"{URL}post-call/").status_code == 405
    assert (_post_call_options(tenant_a), _post_call_audit()) == ({}, [])
