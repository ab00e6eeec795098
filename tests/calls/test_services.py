"""Agent configuration and FAQ writes: validation, exactly-what-changed saves and audit rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError

from calls.models import AgentConfig, Call, CategoryExample, FaqEntry
from calls.services import (
    agent_config_update,
    agent_terms_normalize,
    call_answer,
    call_finish,
    faq_entry_create,
    faq_entry_delete,
    faq_entry_update,
)
from tenants.models import AuditEvent
from tests.factories import CallFactory, FaqEntryFactory


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
