"""Calls (read-only), the agent configuration and the FAQ on a tenant's admin site."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, Call, FaqEntry
from tenants.models import AuditEvent
from tests.factories import CallFactory, FaqEntryFactory, TurnLatencyFactory, UtteranceFactory


def _config_form(config: AgentConfig, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "business_name": config.business_name,
        "greeting": config.greeting,
        "persona": config.persona,
        "tts_provider": config.tts_provider,
        "stt_provider": config.stt_provider,
        "collect": json.dumps(config.collect),
        "categories": json.dumps(config.categories),
        "urgent_keywords": json.dumps(config.urgent_keywords),
        "vocabulary": json.dumps(config.vocabulary),
        "timezone": config.timezone,
        "business_hours": json.dumps(config.business_hours),
        "sla_hours": json.dumps(config.sla_hours),
    }
    return data | changes


@pytest.fixture
def config(tenant_a) -> AgentConfig:
    with tenant_context(tenant_a.tenant):
        return AgentConfig.objects.get()


def test_a_call_shows_its_transcript_latencies_and_recording_player(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(from_number="+15550104321")
        UtteranceFactory(call=call, speaker="agent", text="Thanks for calling, how can I help?", start_s=0.0)
        UtteranceFactory(call=call, speaker="caller", text="My boiler is banging.", start_s=3.0)
        TurnLatencyFactory(call=call, turn_index=0, first_frame_ms=612.0)
        call.recording.save(f"call-{call.pk}.wav", ContentFile(b"RIFF"), save=True)

    response = client_a.get(f"/admin/calls/call/{call.pk}/change/")

    assert response.status_code == 200
    transcript, latencies = response.context["inline_admin_formsets"]
    assert [row.original.text for row in transcript] == ["Thanks for calling, how can I help?", "My boiler is banging."]
    assert [row.original.first_frame_ms for row in latencies] == [612.0]
    assert f'src="/calls/{call.pk}/recording"' in response.content.decode()
    assert response.context["has_change_permission"] is False


def test_calls_cannot_be_changed_added_or_deleted(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(from_number="+15550104321")

    change = client_a.post(f"/admin/calls/call/{call.pk}/change/", {"from_number": "+15550000000"})
    add = client_a.get("/admin/calls/call/add/")
    delete = client_a.post(f"/admin/calls/call/{call.pk}/delete/", {"post": "yes"})

    assert (change.status_code, add.status_code, delete.status_code) == (404, 404, 404)
    with tenant_context(tenant_a.tenant):
        assert Call.objects.values_list("from_number", flat=True).get(pk=call.pk) == "+15550104321"


def test_the_agent_config_list_is_its_single_row(client_a, config) -> None:
    listing = client_a.get("/admin/calls/agentconfig/")
    add = client_a.get("/admin/calls/agentconfig/add/")
    delete = client_a.post(f"/admin/calls/agentconfig/{config.pk}/delete/", {"post": "yes"})

    assert (listing.status_code, listing["Location"]) == (302, f"/admin/calls/agentconfig/{config.pk}/change/")
    assert (add.status_code, delete.status_code) == (404, 404)


def test_changing_the_agent_config_goes_through_the_service_and_is_audited(client_a, tenant_a, config) -> None:
    sla = {"urgent": 1, "high": 4, "normal": 16, "low": 40}

    response = client_a.post(
        f"/admin/calls/agentconfig/{config.pk}/change/",
        _config_form(config, timezone="America/Chicago", sla_hours=json.dumps(sla)),
    )

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        saved = AgentConfig.objects.get(pk=config.pk)
        assert (saved.timezone, saved.sla_hours) == ("America/Chicago", sla)
    event = AuditEvent.objects.get(action="agent_config.updated")
    assert (event.tenant_id, event.actor_id, event.data) == (
        tenant_a.tenant.pk,
        tenant_a.owner.pk,
        {"fields": ["sla_hours", "timezone"]},
    )


def test_a_setting_the_service_refuses_shows_its_message_and_nothing_is_saved(client_a, tenant_a, config) -> None:
    response = client_a.post(
        f"/admin/calls/agentconfig/{config.pk}/change/",
        _config_form(config, timezone="Mars/Olympus_Mons", business_name="Renamed"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"timezone": ["Unknown time zone 'Mars/Olympus_Mons'."]}
    with tenant_context(tenant_a.tenant):
        assert AgentConfig.objects.values_list("timezone", "business_name").get(pk=config.pk) == (
            config.timezone,
            config.business_name,
        )
    assert not AuditEvent.objects.filter(action="agent_config.updated").exists()


def test_an_agent_cannot_change_the_agent_config(tenant_a, config) -> None:
    from tests.factories import MembershipFactory

    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)

    response = client.post(f"/admin/calls/agentconfig/{config.pk}/change/", _config_form(config, timezone="UTC"))

    assert response.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert AgentConfig.objects.get(pk=config.pk).timezone == config.timezone


def test_adding_an_faq_entry_uses_the_service(client_a, tenant_a) -> None:
    response = client_a.post(
        "/admin/calls/faqentry/add/",
        {"question": "Do you  clear   gutters?", "answer": "No, only drains and pipes.", "is_active": "on"},
    )

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        entry = FaqEntry.objects.get(question="Do you clear gutters?")
    assert AuditEvent.objects.get(action="faq_entry.created").data == {
        "entry_id": entry.pk,
        "question": "Do you clear gutters?",
        "is_active": True,
    }


def test_a_duplicate_faq_question_is_refused(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        FaqEntryFactory(question="Do you clear gutters?")
        before = FaqEntry.objects.count()

    response = client_a.post(
        "/admin/calls/faqentry/add/", {"question": "do you clear gutters?", "answer": "Yes.", "is_active": "on"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"question": ["There is already an entry with this question."]}
    with tenant_context(tenant_a.tenant):
        assert FaqEntry.objects.count() == before


def test_deleting_an_faq_entry_uses_the_service(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        entry = FaqEntryFactory(question="Do you work weekends?")

    response = client_a.post(f"/admin/calls/faqentry/{entry.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not FaqEntry.objects.filter(pk=entry.pk).exists()
    assert AuditEvent.objects.get(action="faq_entry.deleted").data == {
        "entry_id": entry.pk,
        "question": "Do you work weekends?",
    }
