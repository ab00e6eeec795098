"""Agent configuration and FAQ writes: validation, exactly-what-changed saves and audit rows."""

from __future__ import annotations

import socket
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, Call, CategoryExample, FaqEntry, Utterance
from calls.providers.emulators.openai_chat import ModelTurn, OpenAiChatEmulator
from calls.recordings import wav_append
from calls.selectors import call_active_count_before, call_test_active_count, call_ticket_id
from calls.services import (
    TEST_CALLS_AT_ONCE,
    CallSweep,
    DialogueServerError,
    TestCallRefusedError,
    agent_config_update,
    agent_terms_normalize,
    call_answer,
    call_finish,
    call_heartbeat,
    call_recording_start,
    call_sweep_abandoned,
    call_test_start,
    dialogue_models_list,
    faq_entry_create,
    faq_entry_delete,
    faq_entry_update,
    utterance_record,
)
from tenants.models import AuditEvent
from tests.factories import CallFactory, FaqEntryFactory, TicketFactory, UtteranceFactory, outcome


def _config_snapshot() -> dict[str, Any]:
    return AgentConfig.objects.values().get()


MY_ACTIONS = ("agent_config.updated", "faq_entry.created", "faq_entry.updated", "faq_entry.deleted")


def _audit_rows() -> list[tuple[str, int | None, int | None, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(action__in=MY_ACTIONS).order_by("pk")
    return list(rows.values_list("action", "actor_id", "tenant_id", "data"))


# Agent configuration


def test_agent_config_update_saves_changed_settings_and_audits_their_names(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    owner = in_tenant_a.owner

    agent_config_update(
        config=config,
        actor=owner,
        timezone="Europe/Berlin",
        business_hours={"mon": ["08:00", "12:30"], "sat": ["10:00", "14:00"], "sun": []},
        sla_hours={"urgent": 1.5, "high": 6, "normal": 24.0, "low": 48},
        greeting=config.greeting,
    )

    stored = AgentConfig.objects.get()
    assert stored.timezone == "Europe/Berlin"
    assert stored.business_hours == {"mon": ["08:00", "12:30"], "sat": ["10:00", "14:00"]}
    assert stored.sla_hours == {"urgent": 1.5, "high": 6, "normal": 24, "low": 48}
    assert _audit_rows() == [
        (
            "agent_config.updated",
            owner.pk,
            in_tenant_a.tenant.pk,
            {"fields": ["business_hours", "sla_hours", "timezone"]},
        )
    ]


def test_agent_config_update_normalises_terms_and_orders_collected_fields(in_tenant_a) -> None:
    config = AgentConfig.objects.get()

    agent_config_update(
        config=config,
        actor=in_tenant_a.owner,
        categories=["  Leak ", "heating", "LEAK", "general", ""],
        urgent_keywords=["Gas  Smell", "flood", "gas smell"],
        vocabulary=["Springfield", "Acme  Boilers", "springfield"],
        collect=["email", "reason", "name", "callback_number", "email"],
    )

    stored = AgentConfig.objects.get()
    assert stored.categories == ["leak", "heating", "general"]
    assert stored.urgent_keywords == ["gas smell", "flood"]
    assert stored.vocabulary == ["Springfield", "Acme Boilers"]
    assert stored.collect == ["name", "callback_number", "reason", "email"]
    assert _audit_rows()[0][3] == {"fields": ["categories", "collect", "urgent_keywords", "vocabulary"]}


def test_choosing_a_voice_switches_the_speech_engine_the_calls_use(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    assert config.tts_provider == "offline"

    agent_config_update(config=config, actor=in_tenant_a.owner, tts_provider="espeak")

    assert AgentConfig.objects.values_list("tts_provider", flat=True).get() == "espeak"
    assert _audit_rows()[0][3] == {"fields": ["tts_provider"]}


def test_saving_unchanged_settings_writes_no_audit_row(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    before = _config_snapshot()

    agent_config_update(
        config=config,
        actor=in_tenant_a.owner,
        timezone=config.timezone,
        business_hours=config.business_hours,
        sla_hours=config.sla_hours,
        categories=config.categories,
    )

    assert _config_snapshot() == before
    assert _audit_rows() == []


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, {"timezone": ["Unknown time zone 'Mars/Olympus_Mons'."]}),
        ({"timezone": "  "}, {"timezone": ["The time zone is required, e.g. America/New_York."]}),
        (
            {"business_hours": {"mon": ["17:00", "09:00"]}},
            {"business_hours": ["mon: closing time must be after opening time."]},
        ),
        (
            {"business_hours": {"someday": ["09:00", "17:00"]}},
            {"business_hours": ["Unknown weekday 'someday'; use one of mon, tue, wed, thu, fri, sat, sun."]},
        ),
        (
            {"sla_hours": {"urgent": -1, "high": 8, "normal": 24, "low": 40}},
            {"sla_hours": ["SLA hours for urgent must be more than 0 and at most 2000."]},
        ),
        (
            {"sla_hours": {"urgent": 2, "high": 8, "normal": 24}},
            {"sla_hours": ["Give SLA hours for each priority: urgent, high, normal, low."]},
        ),
        (
            {"sla_hours": {"urgent": "soon", "high": 8, "normal": 24, "low": 40}},
            {"sla_hours": ["SLA hours for urgent must be a number."]},
        ),
        (
            {"collect": ["name", "callback_number", "reason", "shoe_size"]},
            {"collect": ["Unknown fields to collect: ['shoe_size']"]},
        ),
        (
            {"collect": ["name", "email"]},
            {"collect": ["These fields are always collected: name, callback_number, reason."]},
        ),
        ({"categories": [" ", ""]}, {"categories": ["Give at least one category, e.g. general."]}),
        (
            {"urgent_keywords": ["x" * 51]},
            {"urgent_keywords": ["Urgent keywords: each entry can be at most 50 characters long."]},
        ),
        (
            {"tts_provider": "robot"},
            {"tts_provider": ["Unknown voice 'robot'; choose one of cartesia, elevenlabs, espeak, offline, piper."]},
        ),
        (
            {"timezone": "Europe/Paris", "sla_hours": {"urgent": 0, "high": 8, "normal": 24, "low": 40}},
            {"sla_hours": ["SLA hours for urgent must be more than 0 and at most 2000."]},
        ),
    ],
)
def test_bad_agent_settings_are_refused_and_nothing_is_saved(in_tenant_a, changes, errors) -> None:
    config = AgentConfig.objects.get()
    before = _config_snapshot()

    with pytest.raises(ValidationError) as raised:
        agent_config_update(config=config, actor=in_tenant_a.owner, **changes)

    assert raised.value.message_dict == errors
    assert _config_snapshot() == before
    assert _audit_rows() == []


def test_unknown_setting_names_are_a_programming_error(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    before = _config_snapshot()

    with pytest.raises(ValueError, match=r"Unknown agent settings: \['threshold'\]"):
        agent_config_update(config=config, actor=in_tenant_a.owner, threshold=0.9)

    assert _config_snapshot() == before


def test_terms_are_trimmed_and_deduplicated_case_insensitively() -> None:
    assert agent_terms_normalize([" Burst  Pipe", "burst pipe", "", "Gas"], label="Keywords") == ["burst pipe", "gas"]
    assert agent_terms_normalize(["Acme", "ACME", "Main St"], label="Vocabulary", lower=False) == ["Acme", "Main St"]
    with pytest.raises(ValidationError) as raised:
        agent_terms_normalize([f"term {n}" for n in range(51)], label="Categories")
    assert raised.value.messages == ["Categories: at most 50 entries."]


# FAQ entries


def test_faq_entry_create_stores_tidy_text_and_audits(in_tenant_a) -> None:
    entry = faq_entry_create(
        actor=in_tenant_a.owner, question="  Do you   work on Sundays? ", answer="\nOnly for emergencies.\n"
    )

    stored = FaqEntry.objects.get(pk=entry.pk)
    assert (stored.question, stored.answer, stored.is_active) == (
        "Do you work on Sundays?",
        "Only for emergencies.",
        True,
    )
    assert _audit_rows() == [
        (
            "faq_entry.created",
            in_tenant_a.owner.pk,
            in_tenant_a.tenant.pk,
            {"entry_id": entry.pk, "question": "Do you work on Sundays?", "is_active": True},
        )
    ]


def test_faq_entry_create_can_start_inactive(in_tenant_a) -> None:
    entry = faq_entry_create(actor=None, question="Do you sell gift cards?", answer="Not yet.", is_active=False)

    assert FaqEntry.objects.get(pk=entry.pk).is_active is False
    assert _audit_rows() == [
        (
            "faq_entry.created",
            None,
            in_tenant_a.tenant.pk,
            {"entry_id": entry.pk, "question": "Do you sell gift cards?", "is_active": False},
        )
    ]


@pytest.mark.parametrize(
    ("question", "answer", "errors"),
    [
        ("", "Yes.", {"question": ["The question is required."]}),
        ("   ", "  ", {"question": ["The question is required."], "answer": ["The answer is required."]}),
        ("q" * 501, "Yes.", {"question": ["The question can be at most 500 characters long."]}),
        ("Fine?", "a" * 2001, {"answer": ["The answer can be at most 2000 characters long."]}),
        ("what are your OPENING hours?", "9 to 5.", {"question": ["There is already an entry with this question."]}),
    ],
)
def test_faq_entry_create_refuses_bad_text(in_tenant_a, question, answer, errors) -> None:
    FaqEntry.objects.all().delete()
    FaqEntryFactory(question="What are your opening hours?")

    with pytest.raises(ValidationError) as raised:
        faq_entry_create(actor=in_tenant_a.owner, question=question, answer=answer)

    assert raised.value.message_dict == errors
    assert list(FaqEntry.objects.values_list("question", flat=True)) == ["What are your opening hours?"]
    assert _audit_rows() == []


def test_faq_entry_update_changes_only_what_differs(in_tenant_a) -> None:
    entry = FaqEntryFactory(question="Do you take cards?", answer="Yes.")

    updated = faq_entry_update(
        entry_id=entry.pk, actor=in_tenant_a.owner, question="Do you take cards?", answer="Yes, all major cards."
    )

    assert FaqEntry.objects.values_list("question", "answer", "is_active").get(pk=entry.pk) == (
        "Do you take cards?",
        "Yes, all major cards.",
        True,
    )
    assert updated.answer == "Yes, all major cards."
    assert _audit_rows() == [
        (
            "faq_entry.updated",
            in_tenant_a.owner.pk,
            in_tenant_a.tenant.pk,
            {"entry_id": entry.pk, "question": "Do you take cards?", "fields": ["answer"]},
        )
    ]


def test_faq_entry_update_deactivates_and_a_no_op_is_not_audited(in_tenant_a) -> None:
    entry = FaqEntryFactory(question="Do you take cards?", answer="Yes.")

    faq_entry_update(entry_id=entry.pk, actor=in_tenant_a.owner, is_active=False)
    faq_entry_update(entry_id=entry.pk, actor=in_tenant_a.owner, is_active=False)

    assert FaqEntry.objects.get(pk=entry.pk).is_active is False
    assert [row[3]["fields"] for row in _audit_rows()] == [["is_active"]]


def test_faq_entry_update_refuses_bad_values_and_changes_nothing(in_tenant_a) -> None:
    entry = FaqEntryFactory(question="Do you take cards?", answer="Yes.")
    FaqEntryFactory(question="Do you take cash?", answer="Yes.")

    with pytest.raises(ValidationError) as empty:
        faq_entry_update(entry_id=entry.pk, actor=in_tenant_a.owner, question=" ", answer="Changed.")
    with pytest.raises(ValidationError) as duplicate:
        faq_entry_update(entry_id=entry.pk, actor=in_tenant_a.owner, question="DO YOU TAKE CASH?")
    with pytest.raises(ValueError, match=r"Unknown FAQ entry fields: \['created_at'\]"):
        faq_entry_update(entry_id=entry.pk, actor=in_tenant_a.owner, created_at=None)
    with pytest.raises(FaqEntry.DoesNotExist):
        faq_entry_update(entry_id=entry.pk + 1000, actor=in_tenant_a.owner, answer="No.")

    assert empty.value.message_dict == {"question": ["The question is required."]}
    assert duplicate.value.message_dict == {"question": ["There is already an entry with this question."]}
    assert FaqEntry.objects.values_list("question", "answer", "is_active").get(pk=entry.pk) == (
        "Do you take cards?",
        "Yes.",
        True,
    )
    assert _audit_rows() == []


def test_faq_entry_delete_removes_it_and_audits(in_tenant_a) -> None:
    entry = FaqEntryFactory(question="Do you take cards?", answer="Yes.")

    faq_entry_delete(entry_id=entry.pk, actor=in_tenant_a.owner)

    assert not FaqEntry.objects.filter(pk=entry.pk).exists()
    assert _audit_rows() == [
        (
            "faq_entry.deleted",
            in_tenant_a.owner.pk,
            in_tenant_a.tenant.pk,
            {"entry_id": entry.pk, "question": "Do you take cards?"},
        )
    ]
    with pytest.raises(FaqEntry.DoesNotExist):
        faq_entry_delete(entry_id=entry.pk, actor=in_tenant_a.owner)
    assert len(_audit_rows()) == 1


@time_machine.travel(datetime(2030, 12, 2, 15, 0, tzinfo=UTC), tick=False)
def test_answer_and_finish_stamp_the_time_given(in_tenant_a, django_capture_on_commit_callbacks) -> None:
    call = CallFactory(status=Call.Status.RINGING, answered_at=None, ended_at=None)
    answered, ended = datetime(2030, 11, 25, 10, 0, tzinfo=UTC), datetime(2030, 11, 25, 10, 3, tzinfo=UTC)

    call_answer(call_id=call.pk, stream_id="MZ1", now=answered)
    with django_capture_on_commit_callbacks():
        call_finish(call_id=call.pk, end_reason="caller_hangup", outcome={}, completed=True, now=ended)

    call.refresh_from_db()
    assert (call.answered_at, call.ended_at, call.duration_seconds) == (answered, ended, 180.0)


# --- category examples learned from the desk --------------------------------------------------------------------


def test_category_example_learn_keeps_the_newest_per_category(in_tenant_a, monkeypatch) -> None:
    from calls import services as calls_services

    AgentConfig.objects.update(categories=["leak", "drains", "general"])
    monkeypatch.setattr(calls_services, "CATEGORY_EXAMPLES_MAX", 2)
    for text in ("first words", "second words", "third words"):
        calls_services.category_example_learn(category="drains", text=text, ticket_id=7)
    assert sorted(CategoryExample.objects.values_list("text", flat=True)) == ["second words", "third words"]


def test_category_example_learn_ignores_unknown_categories_general_and_silence(in_tenant_a) -> None:
    from calls.services import category_example_learn

    AgentConfig.objects.update(categories=["leak", "general"])
    assert category_example_learn(category="roofing", text="a tile fell off") is None
    assert category_example_learn(category="general", text="a question") is None
    assert category_example_learn(category="leak", text="   ") is None
    assert CategoryExample.objects.count() == 0


def test_category_descriptions_are_validated_and_normalized(in_tenant_a) -> None:
    from calls.services import agent_config_update

    config = AgentConfig.objects.get()
    agent_config_update(config=config, category_descriptions={" Claims ": "anything  our crew  broke", "x": ""})
    config.refresh_from_db()
    assert config.category_descriptions == {"claims": "anything our crew broke"}
    with pytest.raises(ValidationError):
        agent_config_update(config=config, category_descriptions={"claims": "x" * 301})
    config.refresh_from_db()
    assert config.category_descriptions == {"claims": "anything our crew broke"}


# -- test calls from the dashboard ----------------------------------------------------------

TEST_CALL_AT = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_test_call_is_answered_marked_and_audited(tenant_a) -> None:
    call = call_test_start(tenant=tenant_a.tenant, actor=tenant_a.owner, now=TEST_CALL_AT)

    with tenant_context(tenant_a.tenant):
        stored = Call.objects.get(pk=call.pk)
    assert (stored.carrier, stored.is_test, stored.status) == ("browser", True, "in_progress")
    assert (stored.from_number, stored.to_number, stored.answered_at) == ("", "", TEST_CALL_AT)
    assert stored.carrier_call_id.startswith("test-")
    assert len(stored.carrier_call_id) == 37
    assert stored.stream_id == f"user-{tenant_a.owner.pk}"
    event = AuditEvent.objects.get(action="call.test_started")
    assert (event.actor, event.tenant, event.data) == (tenant_a.owner, tenant_a.tenant, {"call_id": call.pk})


@pytest.mark.django_db
def test_a_third_test_call_at_once_is_refused_and_nothing_is_made(tenant_a) -> None:
    for _ in range(TEST_CALLS_AT_ONCE):
        call_test_start(tenant=tenant_a.tenant, actor=tenant_a.owner)
    with tenant_context(tenant_a.tenant):
        # A row a dead process left behind long ago does not count.
        stale = CallFactory(carrier="browser", is_test=True, status="in_progress")
        Call.objects.filter(pk=stale.pk).update(started_at=TEST_CALL_AT - timedelta(days=1))
    connection.set_schema_to_public()

    with pytest.raises(TestCallRefusedError, match=r"^At most 2 test calls at once; end one first\.$"):
        call_test_start(tenant=tenant_a.tenant, actor=tenant_a.owner)

    with tenant_context(tenant_a.tenant):
        assert Call.objects.filter(is_test=True).count() == 3
    assert AuditEvent.objects.filter(action="call.test_started").count() == 2


def test_test_calls_do_not_take_a_real_callers_line(in_tenant_a) -> None:
    CallFactory(carrier="browser", is_test=True, status="in_progress")
    real = CallFactory(status="in_progress")
    caller = CallFactory(status="ringing")

    assert call_active_count_before(tenant=in_tenant_a.tenant, call=caller, now=caller.started_at) == 1
    assert call_test_active_count(tenant=in_tenant_a.tenant, now=real.started_at) == 1


def test_the_ticket_of_a_call_is_found_once_it_is_made(in_tenant_a) -> None:
    call = CallFactory()
    assert call_ticket_id(tenant=in_tenant_a.tenant, call_id=call.pk) is None
    ticket = TicketFactory(call=call)
    assert call_ticket_id(tenant=in_tenant_a.tenant, call_id=call.pk) == ticket.pk


# Heartbeats and the sweeper: calls nobody runs any more


def _running_call(*, answered: datetime, heartbeat: datetime | None, **fields: Any) -> Call:
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None, **fields)
    Call.objects.filter(pk=call.pk).update(
        started_at=answered - timedelta(seconds=2), answered_at=answered, heartbeat_at=heartbeat
    )
    call.refresh_from_db()
    return call


def test_call_heartbeat_moves_the_heartbeat_and_keeps_what_was_captured(in_tenant_a) -> None:
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    call = _running_call(answered=at, heartbeat=at)
    assert call_heartbeat(call_id=call.pk, now=at + timedelta(seconds=5)) is True
    assert call_heartbeat(call_id=call.pk, captured={"fields": {"name": "Ann"}}, now=at + timedelta(seconds=10))
    call.refresh_from_db()
    assert (call.heartbeat_at, call.captured) == (at + timedelta(seconds=10), {"fields": {"name": "Ann"}})


def test_call_heartbeat_of_an_ended_call_changes_nothing(in_tenant_a) -> None:
    ended = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    call = CallFactory(ended_at=ended, captured={"fields": {}})
    assert call_heartbeat(call_id=call.pk, captured={"fields": {"name": "X"}}, now=ended) is False
    call.refresh_from_db()
    assert (call.heartbeat_at, call.captured) == (None, {"fields": {}})


def test_call_answer_starts_the_heartbeat(in_tenant_a) -> None:
    call = CallFactory(status=Call.Status.RINGING, ended_at=None)
    answered = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    call_answer(call_id=call.pk, stream_id="MZ1", now=answered)
    call.refresh_from_db()
    assert call.heartbeat_at == answered


def test_sweeper_fails_over_a_call_whose_heartbeat_stopped_keeping_transcript_recording_and_captured(
    in_tenant_a,
) -> None:
    answered = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    last_beat = answered + timedelta(seconds=40)
    call = _running_call(answered=answered, heartbeat=last_beat, from_number="+15550009999")
    call_heartbeat(
        call_id=call.pk,
        captured=outcome(fields={"name": "Maria Gonzalez"}, completed=False, summary="Leak.", resolved=True),
        now=last_beat,
    )
    UtteranceFactory(call=call, speaker="agent", text="Hello, how can I help?", start_s=0.0, end_s=1.5)
    UtteranceFactory(call=call, speaker="caller", text="My sink is leaking.", start_s=2.0, end_s=3.0)
    path = call_recording_start(call_id=call.pk, sample_rate=8000)
    wav_append(path, np.array([[1, 2]] * 8000, dtype=np.int16).tobytes())
    with path.open("ab") as handle:  # killed in the middle of an append
        handle.write(b"\x05\x00\x06")

    sweep = call_sweep_abandoned(now=last_beat + timedelta(seconds=31))

    assert sweep == CallSweep(failed_over=[call.pk], never_connected=[])
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.ended_at) == ("failed_over", "voice_process_lost", last_beat)
    assert call.captured["fields"] == {"name": "Maria Gonzalez", "callback_number": "+15550009999"}
    assert call.captured["summary"] == (
        "The call was cut off by a system fault after about 40 s; call the caller back. So far: Leak."
    )
    assert call.captured["reason"] == "my kitchen sink is leaking"
    assert (call.captured["callback_requested"], call.captured["resolved"], call.captured["failed_over"]) == (
        True,
        False,
        True,
    )
    assert list(call.utterances.values_list("text", flat=True)) == ["Hello, how can I help?", "My sink is leaking."]
    assert call.recording.name == f"recordings/alpha/{call.started_at:%Y/%m}/call-{call.pk}.wav"
    with wave.open(call.recording.path, "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 8000)
    # Once only.
    assert call_sweep_abandoned(now=last_beat + timedelta(seconds=90)) == CallSweep(failed_over=[], never_connected=[])


def test_sweeper_leaves_calls_with_a_recent_heartbeat_and_finished_calls_alone(in_tenant_a) -> None:
    now = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    alive = _running_call(answered=now - timedelta(minutes=4), heartbeat=now - timedelta(seconds=29))
    finished = CallFactory(status=Call.Status.COMPLETED, ended_at=now - timedelta(minutes=3))
    before = list(Call.objects.order_by("pk").values())

    assert call_sweep_abandoned(now=now) == CallSweep(failed_over=[], never_connected=[])
    assert list(Call.objects.order_by("pk").values()) == before
    assert {alive.pk, finished.pk} == set(Call.objects.values_list("pk", flat=True))


def test_sweeper_fails_over_an_answered_call_that_never_wrote_a_heartbeat(in_tenant_a) -> None:
    answered = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    call = _running_call(answered=answered, heartbeat=None, from_number="")

    sweep = call_sweep_abandoned(now=answered + timedelta(seconds=31))

    assert sweep.failed_over == [call.pk]
    call.refresh_from_db()
    assert (call.status, call.ended_at, call.recording.name) == ("failed_over", answered, "")
    assert call.captured["reason"] == "Call cut off by a system fault"
    assert (call.captured["fields"], call.captured["callback_requested"]) == ({}, False)


def test_sweeper_ends_calls_ringing_for_more_than_ten_minutes_as_never_connected(in_tenant_a) -> None:
    now = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    stuck = CallFactory(status=Call.Status.RINGING, ended_at=None, from_number="+15550001111")
    recent = CallFactory(status=Call.Status.RINGING, ended_at=None)
    Call.objects.filter(pk=stuck.pk).update(started_at=now - timedelta(minutes=10, seconds=1))
    Call.objects.filter(pk=recent.pk).update(started_at=now - timedelta(minutes=9, seconds=59))

    assert call_sweep_abandoned(now=now) == CallSweep(failed_over=[], never_connected=[stuck.pk])

    stuck.refresh_from_db()
    assert (stuck.status, stuck.end_reason, stuck.ended_at, stuck.answered_at) == (
        "abandoned",
        "never_connected",
        now - timedelta(seconds=1),
        None,
    )
    assert stuck.captured == {
        "fields": {"callback_number": "+15550001111"},
        "reason": "Missed call: the call never connected",
        "summary": "Missed call: the call never connected. Call the caller back.",
        "callback_requested": True,
        "priority": "normal",
        "never_connected": True,
    }
    recent.refresh_from_db()
    assert (recent.status, recent.ended_at) == ("ringing", None)


def test_swept_call_gets_exactly_one_ticket_however_often_it_is_made(in_tenant_a) -> None:
    from tickets.models import Callback, Ticket
    from tickets.services import ticket_create_from_call

    answered = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    call = _running_call(answered=answered, heartbeat=answered + timedelta(seconds=12))
    call_sweep_abandoned(now=answered + timedelta(minutes=1))
    # The message, a retry of it and the ticket sweep all make it.
    ticket_create_from_call(call_id=call.pk)
    ticket_create_from_call(call_id=call.pk)
    call_sweep_abandoned(now=answered + timedelta(minutes=2))

    ticket = Ticket.objects.get()
    assert (ticket.call_id, ticket.subject, ticket.callback_number) == (
        call.pk,
        "Call cut off by a system fault",
        "+15557654321",
    )
    assert list(Callback.objects.values_list("ticket_id", "phone")) == [(ticket.pk, "+15557654321")]


# The receptionist: which dialogue provider, with which options


def test_agent_config_update_saves_the_receptionist_and_its_options(in_tenant_a) -> None:
    config = AgentConfig.objects.get()

    agent_config_update(
        config=config,
        actor=in_tenant_a.owner,
        dialogue_provider="ollama",
        dialogue_options={"model": " llama3.1 ", "base_url": " http://gpu.local:11434/v1 "},
    )

    stored = AgentConfig.objects.get()
    assert (stored.dialogue_provider, stored.dialogue_options) == (
        "ollama",
        {"model": "llama3.1", "base_url": "http://gpu.local:11434/v1"},
    )
    assert _audit_rows() == [
        (
            "agent_config.updated",
            in_tenant_a.owner.pk,
            in_tenant_a.tenant.pk,
            {"fields": ["dialogue_options", "dialogue_provider"]},
        )
    ]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"dialogue_provider": "anthropic", "dialogue_options": {"model": "claude"}},
            {"dialogue_provider": ["Unknown receptionist 'anthropic'."]},
        ),
        (
            {"dialogue_provider": "openai", "dialogue_options": {"key_ref": "OPENAI_API_KEY"}},
            {"dialogue_options": ["Give the model's name, e.g. gpt-4o-mini or llama3.1."]},
        ),
        (
            {"dialogue_provider": "openai", "dialogue_options": {"model": "gpt-4o", "key_ref": "SECRET_KEY"}},
            {"dialogue_options": ["Choose one of the keys the platform offers."]},
        ),
        (
            {"dialogue_provider": "openai", "dialogue_options": {"model": "gpt-4o"}},
            {"dialogue_options": ["An OpenAI model needs a key."]},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_options": {"model": "llama3.1", "key_ref": "OPENAI_API_KEY"}},
            {"dialogue_options": ["Options the ollama receptionist does not take: key_ref."]},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_options": {"model": "llama3.1", "base_url": "ftp://gpu/v1"}},
            {"dialogue_options": ["The server URL must start with http:// or https:// and name a host."]},
        ),
        (
            {"dialogue_provider": "ollama"},
            {"dialogue_options": ["Give the receptionist's options with its provider."]},
        ),
    ],
)
def test_agent_config_update_refuses_a_bad_receptionist_and_saves_nothing(in_tenant_a, changes, errors) -> None:
    config = AgentConfig.objects.get()
    before = _config_snapshot()

    with pytest.raises(ValidationError) as raised:
        agent_config_update(config=config, actor=in_tenant_a.owner, **changes)

    assert raised.value.message_dict == errors
    assert _config_snapshot() == before
    assert _audit_rows() == []


MODELS_KEY = "sk-test-models"


def _no_chat(request: dict[str, Any]) -> ModelTurn:
    raise AssertionError("listing models must not chat")


@pytest.fixture
def model_server() -> Iterator[OpenAiChatEmulator]:
    emulator = OpenAiChatEmulator(_no_chat, api_key=MODELS_KEY, models=("llama3.1", "gpt-4o-mini", "qwen2.5")).start()
    yield emulator
    emulator.stop()


def test_the_models_of_an_openai_server_are_listed_with_the_operators_key(model_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", MODELS_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.base_url)  # where the SDK sends "OpenAI" here

    ids = dialogue_models_list(config=AgentConfig(), provider="openai", key_ref="OPENAI_API_KEY")

    assert ids == ["gpt-4o-mini", "llama3.1", "qwen2.5"]


def test_the_models_of_an_ollama_server_are_listed_without_a_key() -> None:
    ollama = OpenAiChatEmulator(_no_chat, api_key="", models=("llama3.1", "mistral")).start()
    try:
        ids = dialogue_models_list(config=AgentConfig(), provider="ollama", base_url=ollama.base_url)
    finally:
        ollama.stop()

    assert ids == ["llama3.1", "mistral"]


def test_a_refused_key_says_so_and_never_shows_it(model_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.base_url)

    with pytest.raises(DialogueServerError) as raised:
        dialogue_models_list(config=AgentConfig(), provider="openai", key_ref="OPENAI_API_KEY")

    assert str(raised.value) == f"The server at {model_server.base_url} refused the key."


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_down_says_so() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"

    with pytest.raises(DialogueServerError) as raised:
        dialogue_models_list(config=AgentConfig(), provider="ollama", base_url=url)

    assert str(raised.value) == f"Could not reach a model server at {url}. Is it running?"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"provider": "openai", "key_ref": "OPENAI_API_KEY"},
            "No key is stored under OPENAI_API_KEY; ask the platform's operator to set it.",
        ),
        ({"provider": "openai", "key_ref": "SECRET_KEY"}, "Choose one of the keys the platform offers."),
        (
            {"provider": "ollama", "base_url": "gopher://gpu"},
            "The server URL must start with http:// or https:// and name a host.",
        ),
        ({"provider": "receptionist"}, "The built-in receptionist needs no model."),
        ({"provider": "anthropic"}, "Unknown receptionist 'anthropic'."),
    ],
)
def test_listing_models_refuses_what_could_not_be_saved(monkeypatch, kwargs, message) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(DialogueServerError) as raised:
        dialogue_models_list(config=AgentConfig(), **kwargs)

    assert str(raised.value) == message


def test_an_openai_listing_never_sends_the_key_to_a_typed_url(model_server, monkeypatch) -> None:
    elsewhere = OpenAiChatEmulator(_no_chat, api_key="", models=("stolen",)).start()
    monkeypatch.setenv("OPENAI_API_KEY", MODELS_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.base_url)
    try:
        ids = dialogue_models_list(
            config=AgentConfig(), provider="openai", base_url=elsewhere.base_url, key_ref="OPENAI_API_KEY"
        )
    finally:
        elsewhere.stop()

    assert ids == ["gpt-4o-mini", "llama3.1", "qwen2.5"]
    assert (elsewhere.model_lists, model_server.model_lists) == (0, 1)


def test_an_openai_listing_uses_the_gateway_the_operator_stored(model_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", MODELS_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = AgentConfig(
        dialogue_provider="openai",
        dialogue_options={"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY", "base_url": model_server.base_url},
    )

    assert dialogue_models_list(config=config, provider="openai", key_ref="OPENAI_API_KEY") == [
        "gpt-4o-mini",
        "llama3.1",
        "qwen2.5",
    ]


def test_a_business_keeps_the_key_name_the_operator_gave_it_but_cannot_pick_another(in_tenant_a) -> None:
    AgentConfig.objects.update(dialogue_provider="openai", dialogue_options={"model": "x", "key_ref": "ACME_KEY"})
    config = AgentConfig.objects.get()

    agent_config_update(
        config=config, dialogue_provider="openai", dialogue_options={"model": "y", "key_ref": "ACME_KEY"}
    )
    with pytest.raises(ValidationError) as raised:
        agent_config_update(
            config=config, dialogue_provider="openai", dialogue_options={"model": "y", "key_ref": "OTHER_KEY"}
        )

    assert raised.value.message_dict == {"dialogue_options": ["Choose one of the keys the platform offers."]}
    assert AgentConfig.objects.values_list("dialogue_options", flat=True).get() == {"model": "y", "key_ref": "ACME_KEY"}


# --- transfers to a person ----------------------------------------------------------------------------


def test_a_transfer_begins_with_the_capture_stored_and_the_ticket_made_at_once(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    from calls.services import call_transfer_update
    from tickets.models import Callback, Ticket

    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    began = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)
    captured = outcome(wants_human=True, callback_requested=False, priority="high", transfer="dialing")
    with django_capture_on_commit_callbacks(execute=True):
        call_transfer_update(call_id=call.pk, status="dialing", to="+15550100199", captured=captured, now=began)

    call.refresh_from_db()
    assert (call.transfer_status, call.transfer_to, call.transfer_started_at, call.transfer_ended_at) == (
        "dialing", "+15550100199", began, None,
    )  # fmt: skip
    assert call.captured == captured
    # The ticket exists while the phone rings; no callback while the caller is being put through.
    ticket = Ticket.objects.get(call=call)
    assert (ticket.summary, ticket.priority, ticket.caller_name) == (captured["summary"], "high", "Maria Gonzalez")
    assert Callback.objects.count() == 0


def test_a_transfer_ends_once_and_a_failed_one_queues_a_priority_callback(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    from calls.services import CallTransferError, call_transfer_update
    from tickets.models import Callback

    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        call_transfer_update(call_id=call.pk, status="dialing", to="+15550100199", captured=outcome(priority="normal"))
        # A second begin (a retried write) changes nothing.
        call_transfer_update(call_id=call.pk, status="dialing", to="+15550100000")
        call_transfer_update(call_id=call.pk, status="no_answer")
        call_transfer_update(call_id=call.pk, status="no_answer")  # Twilio retrying its report
    call.refresh_from_db()
    assert (call.transfer_status, call.transfer_to) == ("no_answer", "+15550100199")
    [callback] = Callback.objects.all()
    assert (callback.priority, callback.reason) == ("high", "Transfer to a person failed: nobody answered")
    with pytest.raises(CallTransferError):
        call_transfer_update(call_id=call.pk, status="answered")
    with pytest.raises(CallTransferError):
        call_transfer_update(call_id=call.pk, status="ringing")
    call.refresh_from_db()
    assert call.transfer_status == "no_answer"


def test_a_dial_answered_after_the_call_ended_brings_the_summary_and_the_ticket_up_to_date(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    # Twilio: the media stream ends when the dial starts; the dial's result comes later, to a webhook.
    from calls.services import call_finish, call_transfer_update
    from tickets.models import Ticket, TicketChange
    from tickets.services import ticket_create_from_call

    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    ringing = "Leak: My sink leaks. Maria Gonzalez asked to speak to a person and was being put through."
    captured = {**outcome(wants_human=True, transfer="dialing"), "summary": ringing}
    with django_capture_on_commit_callbacks(execute=True):
        call_transfer_update(call_id=call.pk, status="dialing", to="+15550100199", captured=captured)
    call_finish(call_id=call.pk, end_reason="transferred", outcome=captured, completed=True)
    ticket_create_from_call(call_id=call.pk)  # as the call-finished job does
    assert Ticket.objects.get(call=call).summary == ringing

    with django_capture_on_commit_callbacks(execute=True):
        call_transfer_update(call_id=call.pk, status="answered")

    put_through = "Leak: My sink leaks. Maria Gonzalez asked to speak to a person and was put through."
    call.refresh_from_db()
    assert (call.captured["transfer"], call.captured["summary"]) == ("answered", put_through)
    ticket = Ticket.objects.get(call=call)
    assert ticket.summary == put_through
    assert list(TicketChange.objects.filter(ticket=ticket, field="summary").values_list("old_value", "new_value")) == [
        (ringing, put_through)
    ]


def test_a_transfer_cannot_end_before_it_began(in_tenant_a) -> None:
    from calls.services import CallTransferError, call_transfer_update

    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    with pytest.raises(CallTransferError):
        call_transfer_update(call_id=call.pk, status="busy")
    call.refresh_from_db()
    assert (call.transfer_status, call.transfer_ended_at) == ("", None)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("+1 (555) 010-0199", "+15550100199"), ("+44 20 7946 0958", "+442079460958"), ("", ""), ("  ", "")],
)
def test_the_transfer_number_is_stored_in_e164(in_tenant_a, typed: str, stored: str) -> None:
    config = AgentConfig.objects.get()
    agent_config_update(config=config, actor=in_tenant_a.owner, transfer_number=typed)
    assert AgentConfig.objects.get().transfer_number == stored


@pytest.mark.parametrize("typed", ["555 010 0199", "0044 20 7946 0958", "+1 555", "call Bob", "+0 555 010 0199"])
def test_a_transfer_number_not_in_international_form_is_refused(in_tenant_a, typed: str) -> None:
    config = AgentConfig.objects.get()
    with pytest.raises(ValidationError) as raised:
        agent_config_update(config=config, actor=in_tenant_a.owner, transfer_number=typed)
    assert "transfer_number" in raised.value.message_dict
    assert AgentConfig.objects.get().transfer_number == ""


# Redaction of stored transcripts

SAID = "it's five five five two oh one three three four four, or jo at example dot com"


def _redacting(on: bool) -> None:
    AgentConfig.objects.update(redact_transcripts=on)


@pytest.mark.parametrize(("on", "stored"), [(True, "it's [phone], or [email]"), (False, SAID)])
def test_utterances_are_stored_masked_only_when_the_business_asks(in_tenant_a, on, stored) -> None:
    _redacting(on)
    call = CallFactory(status=Call.Status.IN_PROGRESS)

    for speaker in ("caller", "agent"):
        utterance_record(call_id=call.pk, speaker=speaker, text=SAID, start_s=1.0, end_s=2.5)

    assert list(Utterance.objects.filter(call=call).values_list("speaker", "text")) == [
        ("caller", stored),
        ("agent", stored),
    ]


def test_a_redacting_business_keeps_the_captured_fields_and_masks_the_free_text(in_tenant_a) -> None:
    _redacting(True)
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    captured = outcome(
        fields={"name": "Maria Gonzalez", "callback_number": "+15552013344", "email": "maria@example.com"},
        reason="call me back on 555 201 3344",
        summary="Maria Gonzalez (555 201 3344, maria@example.com) wants a callback.",
        unanswered_questions=["can you email maria at example dot com the quote?"],
    )

    assert call_heartbeat(call_id=call.pk, captured=captured) is True
    call.refresh_from_db()
    heartbeat_captured = call.captured
    finished = call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=captured, completed=True)

    expected = captured | {
        "reason": "call me back on [phone]",
        "summary": "Maria Gonzalez ([phone], [email]) wants a callback.",
        "unanswered_questions": ["can you email [email] the quote?"],
    }
    assert heartbeat_captured == expected
    assert Call.objects.get(pk=finished.pk).captured == expected
    assert expected["fields"] == {
        "name": "Maria Gonzalez",
        "callback_number": "+15552013344",
        "email": "maria@example.com",
    }


def test_a_business_that_does_not_redact_stores_the_outcome_as_given(in_tenant_a) -> None:
    call = CallFactory(status=Call.Status.IN_PROGRESS, ended_at=None)
    captured = outcome(summary="Maria (555 201 3344) wants a callback.")

    call_finish(call_id=call.pk, end_reason="caller_hangup", outcome=captured, completed=True)

    assert Call.objects.get(pk=call.pk).captured == captured


def test_turning_redaction_on_is_an_audited_setting(in_tenant_a) -> None:
    config = AgentConfig.objects.get()

    agent_config_update(config=config, actor=in_tenant_a.owner, redact_transcripts=True)

    assert AgentConfig.objects.get().redact_transcripts is True
    assert [row[3] for row in _audit_rows()] == [{"fields": ["redact_transcripts"]}]
    with pytest.raises(ValidationError):
        agent_config_update(config=config, redact_transcripts="yes")
    assert AgentConfig.objects.get().redact_transcripts is True
