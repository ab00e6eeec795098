"""The calls, FAQ and agent configuration API: exact bodies, filters, audited writes, CSV export."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, Call, FaqEntry
from tenants.models import AuditEvent
from tests.factories import CallFactory, FaqEntryFactory, MembershipFactory, TurnLatencyFactory, UtteranceFactory
from tests.voicedesk.api.helpers import api_key_make, key_client
from tickets.services import ticket_create_from_call

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)
JSON = "application/json"


@pytest.fixture
def api(tenant_a) -> Client:
    return key_client(tenant_a.host, api_key_make(tenant_a))


def _client_with_role(tenant_fixture, role: str) -> Client:
    client = Client(HTTP_HOST=tenant_fixture.host)
    client.force_login(MembershipFactory(tenant=tenant_fixture.tenant, role=role).user)
    return client


def _audit(action_prefix: str) -> list[tuple[str, str | None, dict]]:
    return [
        (e.action, e.actor.email if e.actor else None, e.data)
        for e in AuditEvent.objects.filter(action__startswith=action_prefix).order_by("id")
    ]


def _call(**overrides) -> Call:
    call = CallFactory(**overrides)
    Call.objects.filter(pk=call.pk).update(started_at=overrides.get("answered_at") or MONDAY_10)
    call.refresh_from_db()
    return call


# Calls


@time_machine.travel(MONDAY_10, tick=False)
def test_call_list_with_recording_url_and_ticket(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        call = _call(answered_at=MONDAY_10, ended_at=MONDAY_10 + timedelta(seconds=95), end_reason="caller_hangup")
        call.recording.save(f"call-{call.pk}.wav", ContentFile(b"RIFF"), save=True)
        ticket = ticket_create_from_call(call_id=call.pk)

    response = api.get("/api/calls/")

    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": call.pk,
                "carrier": "twilio",
                "carrier_call_id": call.carrier_call_id,
                "from_number": "+15557654321",
                "to_number": "+15550001001",
                "status": "completed",
                "end_reason": "caller_hangup",
                "started_at": "2030-11-25T10:00:00Z",
                "answered_at": "2030-11-25T10:00:00Z",
                "ended_at": "2030-11-25T10:01:35Z",
                "duration_seconds": 95.0,
                "ticket_id": ticket.pk,
                "recording_url": f"http://alpha.localhost/calls/{call.pk}/recording",
            }
        ],
    }


def test_call_detail_has_the_transcript_and_turn_latencies(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(captured={"reason": "leak"})
        UtteranceFactory(call=call, speaker="agent", text="Alpha Plumbing, how can I help?", start_s=0.0, end_s=2.0)
        UtteranceFactory(call=call, speaker="caller", text="My sink leaks.", start_s=2.5, end_s=4.0, confidence=0.9)
        TurnLatencyFactory(call=call, turn_index=0)
        TurnLatencyFactory(call=call, turn_index=1, first_frame_ms=700.5)

    body = api.get(f"/api/calls/{call.pk}/").json()

    assert (body["captured"], body["recording_url"], body["ticket_id"], body["duration_seconds"]) == (
        {"reason": "leak"},
        None,
        None,
        None,
    )
    assert (body["post_call_status"], body["post_call_transcript"]) == ("", "")
    assert (body["transfer_to"], body["transfer_status"], body["transfer_started_at"], body["transfer_ended_at"]) == (
        "",
        "",
        None,
        None,
    )
    assert body["transcript"] == [
        {
            "speaker": "agent",
            "text": "Alpha Plumbing, how can I help?",
            "start_s": 0.0,
            "end_s": 2.0,
            "confidence": 0.92,
            "interrupted": False,
        },
        {
            "speaker": "caller",
            "text": "My sink leaks.",
            "start_s": 2.5,
            "end_s": 4.0,
            "confidence": 0.9,
            "interrupted": False,
        },
    ]
    assert body["turn_latencies"] == [
        {
            "turn_index": 0,
            "pause_ms": 150.0,
            "transcript_ms": 420.0,
            "endpoint_ms": 430.0,
            "decision_ms": 450.0,
            "first_audio_ms": 560.0,
            "first_frame_ms": 640.0,
        },
        {
            "turn_index": 1,
            "pause_ms": 150.0,
            "transcript_ms": 420.0,
            "endpoint_ms": 430.0,
            "decision_ms": 450.0,
            "first_audio_ms": 560.0,
            "first_frame_ms": 700.5,
        },
    ]


@pytest.fixture
def three_calls(tenant_a) -> dict[str, Call]:
    with tenant_context(tenant_a.tenant):
        calls = {
            "old": CallFactory(from_number="+15550000001", status="completed"),
            "missed": CallFactory(from_number="+15550000002", status="abandoned"),
            "new": CallFactory(from_number="+15550000001", status="failed"),
        }
        for hours_ago, call in zip((48, 24, 0), calls.values(), strict=True):
            Call.objects.filter(pk=call.pk).update(started_at=MONDAY_10 - timedelta(hours=hours_ago))
    return calls


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["new", "missed", "old"]),
        ("status=abandoned", ["missed"]),
        ("status=abandoned&status=failed", ["new", "missed"]),
        ("from_number=%2B15550000001", ["new", "old"]),
        ("started_after=2030-11-24T00:00:00Z", ["new", "missed"]),
        ("started_before=2030-11-24T10:00:00Z", ["old"]),
        ("search=%2B15550000002", ["missed"]),
        ("ordering=started_at", ["old", "missed", "new"]),
    ],
)
def test_call_filters(api, three_calls, query: str, expected: list[str]) -> None:
    by_id = {call.pk: name for name, call in three_calls.items()}

    response = api.get(f"/api/calls/?{query}")

    assert response.status_code == 200
    assert [by_id[row["id"]] for row in response.json()["results"]] == expected


def test_calls_are_read_only(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory()

    assert api.post("/api/calls/", {"from_number": "+1"}, content_type=JSON).status_code == 405
    assert api.patch(f"/api/calls/{call.pk}/", {"status": "failed"}, content_type=JSON).status_code == 405
    assert api.delete(f"/api/calls/{call.pk}/").status_code == 405
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("status", flat=True)) == ["completed"]


@time_machine.travel(MONDAY_10, tick=False)
def test_call_export_is_exact_csv(tenant_a, api, three_calls) -> None:
    with tenant_context(tenant_a.tenant):
        Call.objects.filter(pk=three_calls["old"].pk).update(
            answered_at=MONDAY_10 - timedelta(hours=48),
            ended_at=MONDAY_10 - timedelta(hours=48) + timedelta(seconds=61.5),
            end_reason="=1+2",
        )
        old = Call.objects.get(pk=three_calls["old"].pk)
        old.recording.save("x.wav", ContentFile(b"RIFF"), save=True)
        ticket = ticket_create_from_call(call_id=old.pk)

    response = api.get("/api/calls/export.csv?from_number=%2B15550000001&ordering=started_at")

    assert response["Content-Disposition"] == 'attachment; filename="calls-alpha-2030-11-25.csv"'
    new = three_calls["new"]
    assert b"".join(response.streaming_content).decode() == (
        "id,started_at,answered_at,ended_at,duration_seconds,status,end_reason,carrier,carrier_call_id,"
        "from_number,to_number,ticket,recording_url\r\n"
        f"{old.pk},2030-11-23T10:00:00+00:00,2030-11-23T10:00:00+00:00,2030-11-23T10:01:01.500000+00:00,61.5,"
        f"completed,'=1+2,twilio,{old.carrier_call_id},'+15550000001,'+15550001001,T-{ticket.pk},"
        f"http://alpha.localhost/calls/{old.pk}/recording\r\n"
        f"{new.pk},2030-11-25T10:00:00+00:00,,,,failed,,twilio,{new.carrier_call_id},'+15550000001,'+15550001001,,\r\n"
    )


def test_agents_read_calls_but_cannot_export_them(tenant_a, three_calls) -> None:
    agent = _client_with_role(tenant_a, "agent")

    assert agent.get("/api/calls/").json()["count"] == 3
    refused = agent.get("/api/calls/export.csv")
    assert (refused.status_code, refused.json()) == (404, {"detail": "Not found."})


# FAQ entries


def test_faq_crud_goes_through_the_services_and_is_audited(tenant_a, api) -> None:
    created = api.post(
        "/api/faq-entries/", {"question": " Do you work weekends? ", "answer": "Saturdays, 9 to 1."}, content_type=JSON
    )
    entry_id = created.json()["id"]
    changed = api.patch(f"/api/faq-entries/{entry_id}/", {"is_active": False}, content_type=JSON)
    listed = api.get("/api/faq-entries/?is_active=false")
    deleted = api.delete(f"/api/faq-entries/{entry_id}/")

    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "created_at"} == {
        "id": entry_id,
        "question": "Do you work weekends?",
        "answer": "Saturdays, 9 to 1.",
        "is_active": True,
    }
    assert (changed.status_code, changed.json()["is_active"]) == (200, False)
    assert [e["id"] for e in listed.json()["results"]] == [entry_id]
    assert (deleted.status_code, deleted.content) == (204, b"")
    with tenant_context(tenant_a.tenant):
        assert not FaqEntry.objects.filter(pk=entry_id).exists()
    owner = "owner@alpha.test"
    assert _audit("faq_entry.") == [
        (
            "faq_entry.created",
            owner,
            {"entry_id": entry_id, "question": "Do you work weekends?", "is_active": True},
        ),
        (
            "faq_entry.updated",
            owner,
            {"entry_id": entry_id, "question": "Do you work weekends?", "fields": ["is_active"]},
        ),
        ("faq_entry.deleted", owner, {"entry_id": entry_id, "question": "Do you work weekends?"}),
    ]


def test_a_duplicate_question_is_a_field_error(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        FaqEntryFactory(question="Do you take cards?")
        before = FaqEntry.objects.count()

    response = api.post("/api/faq-entries/", {"question": "do you take CARDS?", "answer": "Yes."}, content_type=JSON)

    assert (response.status_code, response.json()) == (
        400,
        {"question": ["There is already an entry with this question."]},
    )
    with tenant_context(tenant_a.tenant):
        assert FaqEntry.objects.count() == before
    assert _audit("faq_entry.") == []


def test_agents_read_the_faq_but_cannot_change_it(tenant_a) -> None:
    agent = _client_with_role(tenant_a, "agent")
    with tenant_context(tenant_a.tenant):
        entry = FaqEntryFactory(question="Parking?", answer="Out back.")

    assert agent.get(f"/api/faq-entries/{entry.pk}/").json()["answer"] == "Out back."
    responses = [
        agent.post("/api/faq-entries/", {"question": "New?", "answer": "No."}, content_type=JSON),
        agent.patch(f"/api/faq-entries/{entry.pk}/", {"answer": "Changed."}, content_type=JSON),
        agent.delete(f"/api/faq-entries/{entry.pk}/"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    with tenant_context(tenant_a.tenant):
        assert FaqEntry.objects.get(pk=entry.pk).answer == "Out back."
        assert not FaqEntry.objects.filter(question="New?").exists()
    assert _audit("faq_entry.") == []


# Agent configuration


def test_agent_config_read(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        updated_at = AgentConfig.objects.get().updated_at

    response = api.get("/api/agent-config/")

    assert response.json() == {
        "business_name": "Alpha Plumbing",
        "greeting": "",
        "persona": "",
        "stt_provider": "whisper",
        "tts_provider": "offline",
        "dialogue_provider": "receptionist",
        "collect": ["name", "callback_number", "reason"],
        "categories": ["general"],
        "urgent_keywords": [],
        "vocabulary": [],
        "timezone": "UTC",
        "business_hours": {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sla_hours": {"urgent": 2, "high": 8, "normal": 24, "low": 40},
        "redact_transcripts": False,
        "updated_at": updated_at.isoformat().replace("+00:00", "Z"),
    }


def test_agent_config_patch_goes_through_the_service_and_is_audited(tenant_a, api) -> None:
    response = api.patch(
        "/api/agent-config/",
        {
            "greeting": "Thanks for calling Alpha!",
            "categories": ["Leak", "Billing", "leak"],
            "sla_hours": {"urgent": 1, "high": 4, "normal": 16, "low": 32.5},
            "business_hours": {"mon": ["08:00", "16:00"], "sat": None},
        },
        content_type=JSON,
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["greeting"], body["categories"], body["sla_hours"], body["business_hours"]) == (
        "Thanks for calling Alpha!",
        ["leak", "billing"],
        {"urgent": 1, "high": 4, "normal": 16, "low": 32.5},
        {"mon": ["08:00", "16:00"]},
    )
    with tenant_context(tenant_a.tenant):
        config = AgentConfig.objects.get()
        assert (config.greeting, config.categories) == ("Thanks for calling Alpha!", ["leak", "billing"])
    assert _audit("agent_config.") == [
        (
            "agent_config.updated",
            "owner@alpha.test",
            {"fields": ["business_hours", "categories", "greeting", "sla_hours"]},
        )
    ]


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"non_field_errors": ["Send at least one setting to change."]}),
        ({"collect": ["name", "shoe_size"]}, {"collect": {"1": ['"shoe_size" is not a valid choice.']}}),
        ({"collect": ["name"]}, {"collect": ["These fields are always collected: name, callback_number, reason."]}),
        ({"timezone": "Mars/Olympus"}, {"timezone": ["Unknown time zone 'Mars/Olympus'."]}),
        (
            {"tts_provider": "robot"},
            {"tts_provider": ["Unknown voice 'robot'; choose one of cartesia, elevenlabs, espeak, offline, piper."]},
        ),
        ({"business_name": "   "}, {"business_name": ["This field may not be blank."]}),
    ],
)
def test_bad_agent_settings_are_field_errors_and_save_nothing(tenant_a, api, payload: dict, errors: dict) -> None:
    with tenant_context(tenant_a.tenant):
        before = AgentConfig.objects.values().get()

    response = api.patch("/api/agent-config/", payload, content_type=JSON)

    assert (response.status_code, response.json()) == (400, errors)
    with tenant_context(tenant_a.tenant):
        assert AgentConfig.objects.values().get() == before
    assert _audit("agent_config.") == []


def test_agents_read_the_configuration_but_cannot_change_it(tenant_a) -> None:
    agent = _client_with_role(tenant_a, "agent")

    assert agent.get("/api/agent-config/").json()["business_name"] == "Alpha Plumbing"
    refused = agent.patch("/api/agent-config/", {"greeting": "Hijacked"}, content_type=JSON)

    assert (refused.status_code, refused.json()) == (404, {"detail": "Not found."})
    with tenant_context(tenant_a.tenant):
        assert AgentConfig.objects.get().greeting == ""


def test_admins_change_the_configuration(tenant_a) -> None:
    admin = _client_with_role(tenant_a, "admin")

    response = admin.patch("/api/agent-config/", {"vocabulary": ["Worcester Bosch"]}, content_type=JSON)

    assert (response.status_code, response.json()["vocabulary"]) == (200, ["Worcester Bosch"])
