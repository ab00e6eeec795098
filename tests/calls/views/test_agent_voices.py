"""The agent page's voices: listed with a preview each and a button that makes one the agent's;
business admins only, and a voice the provider does not offer changes nothing."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import AgentConfig
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.piper_tts import piper_available
from calls.services import provider_key_save
from tests.factories import MembershipFactory

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks in the emulator")

EL_KEY = "el-tenant-key-0042"
PREVIEW = "/settings/agent/voice/preview/"


@pytest.fixture
def elevenlabs(tenant_a) -> Iterator[ElevenLabsEmulator]:
    with ElevenLabsEmulator(api_keys=(EL_KEY,)) as running:
        with tenant_context(tenant_a.tenant):
            provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
            AgentConfig.objects.update(
                tts_provider="elevenlabs",
                tts_options={"tenant_key": True, "base_url": running.url, "voice_id": "voice-ben"},
            )
        yield running


def _options(tenant_fixture) -> dict[str, Any]:
    with tenant_context(tenant_fixture.tenant):
        return AgentConfig.objects.get().tts_options


def _client_with_role(tenant_fixture, role: str) -> Client:
    membership = MembershipFactory(tenant=tenant_fixture.tenant, role=role)
    client = Client(HTTP_HOST=tenant_fixture.host)
    client.force_login(membership.user)
    return client


def test_the_agent_page_lists_the_providers_voices_with_previews(client_a, elevenlabs) -> None:
    html = client_a.get("/settings/agent/").content.decode()

    assert '<th scope="row">Ava</th>' in html
    assert "<td>Warm and calm, for customer care</td>" in html
    assert (
        f'<audio controls preload="none" src="{PREVIEW}?voice=voice-ava" aria-label="Preview of Ava"></audio>' in html
    )
    assert '<button type="submit" form="voice-choose" name="voice_id" value="voice-ava">Use Ava</button>' in html
    assert '<tr id="voice-voice-ben">' in html
    assert "<strong>In use</strong>" in html
    assert 'value="voice-ben">Use Ben' not in html
    assert EL_KEY not in html


def test_the_agent_page_says_why_no_voices_are_listed(client_a, tenant_a, elevenlabs) -> None:
    elevenlabs.fault = "reject_key"

    html = client_a.get("/settings/agent/").content.decode()

    assert '<p class="settings-error" id="voices-error">ElevenLabs refused the key (HTTP 401).</p>' in html


def test_choosing_a_voice_saves_it(client_a, tenant_a, elevenlabs) -> None:
    response = client_a.post("/settings/agent/voice/", {"voice_id": "voice-cleo"})

    assert (response.status_code, response["Location"]) == (302, "/settings/agent/#voice")
    assert _options(tenant_a)["voice_id"] == "voice-cleo"
    page = client_a.get("/settings/agent/").content.decode()
    assert "Voice chosen. Callers hear it from the next call." in page


def test_a_voice_not_offered_changes_nothing(client_a, tenant_a, elevenlabs) -> None:
    before = _options(tenant_a)

    response = client_a.post("/settings/agent/voice/", {"voice_id": "voice-nobody"}, follow=True)

    assert "The voice &#x27;voice-nobody&#x27; is not one the provider offers." in response.content.decode()
    assert _options(tenant_a) == before


def test_a_preview_is_a_wav_of_that_voice(client_a, elevenlabs) -> None:
    response = client_a.get(PREVIEW, {"voice": "voice-ava"})

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Cache-Control"] == "private, max-age=3600"
    with wave.open(io.BytesIO(response.content)) as audio:
        assert (audio.getnchannels(), audio.getframerate()) == (1, 8000)
    assert [r.path for r in elevenlabs.requests if r.path.endswith("/stream")] == [
        "/v1/text-to-speech/voice-ava/stream"
    ]
    assert client_a.get(PREVIEW, {"voice": "voice-nobody"}).status_code == 404
    assert client_a.get(PREVIEW).status_code == 404


def test_an_agent_gets_404_and_changes_nothing(tenant_a, elevenlabs) -> None:
    before = _options(tenant_a)
    client = _client_with_role(tenant_a, "agent")

    assert client.post("/settings/agent/voice/", {"voice_id": "voice-cleo"}).status_code == 404
    assert client.get(PREVIEW, {"voice": "voice-ava"}).status_code == 404
    assert _options(tenant_a) == before
    assert [r.path for r in elevenlabs.requests if r.path.endswith("/stream")] == []


def test_another_business_cannot_preview_or_choose_this_ones_voices(tenant_a, tenant_b, elevenlabs) -> None:
    before = _options(tenant_a)
    client = Client(HTTP_HOST=tenant_b.host)
    client.force_login(tenant_b.owner)

    # Beta speaks with the offline voice: ElevenLabs' voices are not among its own.
    assert client.get(PREVIEW, {"voice": "voice-ava"}).status_code == 404
    client.post("/settings/agent/voice/", {"voice_id": "voice-cleo"})
    assert _options(tenant_a) == before
