"""Settings forms: parsing what people type into the values the services take, with clear messages."""

from __future__ import annotations

from typing import Any

import pytest

from calls.forms import AgentConfigForm, FaqEntryForm, FaqTryForm, terms_split, voice_choices
from calls.models import AgentConfig
from calls.providers.registry import TTS_PROVIDERS


def _config() -> AgentConfig:
    # Unsaved: the form only reads it.
    return AgentConfig(business_name="Alpha Plumbing")


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "greeting": "Thanks for calling Alpha.",
        "persona": "Friendly and brief.",
        "tts_provider": "espeak",
        "collect": ["address"],
        "categories": "Leak, heating ,leak,, General",
        "category_descriptions": "Leak: water where it should not be\n\n heating : boilers and radiators",
        "urgent_keywords": "flood, Gas Smell",
        "vocabulary": "Springfield, Acme Boilers",
        "timezone": "America/New_York",
        "sla_urgent": "1.5",
        "sla_high": "8",
        "sla_normal": "24",
        "sla_low": "40",
    }
    for day in ("mon", "tue", "wed", "thu", "fri"):
        data[f"{day}_open"], data[f"{day}_close"] = "09:00", "17:00"
    data["sat_open"], data["sat_close"] = "10:00", "13:30"
    data["sun_closed"] = "on"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_valid_input_becomes_the_settings_the_service_takes() -> None:
    form = AgentConfigForm(form_data(), config=_config())

    assert form.is_valid(), form.errors
    weekdays = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    assert form.changes() == {
        "greeting": "Thanks for calling Alpha.",
        "persona": "Friendly and brief.",
        "tts_provider": "espeak",
        "collect": ["name", "callback_number", "reason", "address"],
        "categories": ["leak", "heating", "general"],
        "category_descriptions": {"leak": "water where it should not be", "heating": "boilers and radiators"},
        "urgent_keywords": ["flood", "gas smell"],
        "vocabulary": ["Springfield", "Acme Boilers"],
        "timezone": "America/New_York",
        "business_hours": weekdays | {"sat": ["10:00", "13:30"]},
        "sla_hours": {"urgent": 1.5, "high": 8.0, "normal": 24.0, "low": 40.0},
        "transfer_number": "",
        "redact_transcripts": False,
    }


def test_a_closed_day_ignores_its_times_and_empty_optional_terms_are_allowed() -> None:
    form = AgentConfigForm(
        form_data(sat_closed="on", urgent_keywords="", vocabulary=" , ", collect=None), config=_config()
    )

    assert form.is_valid(), form.errors
    changes = form.changes()
    assert "sat" not in changes["business_hours"]
    assert (changes["urgent_keywords"], changes["vocabulary"]) == ([], [])
    assert changes["collect"] == ["name", "callback_number", "reason"]


@pytest.mark.parametrize(
    ("overrides", "field", "messages"),
    [
        (
            {"timezone": "Mars/Olympus_Mons"},
            "timezone",
            ["Unknown time zone 'Mars/Olympus_Mons'. Use an IANA name such as Europe/London."],
        ),
        ({"timezone": ""}, "timezone", ["This field is required."]),
        ({"mon_open": "18:00"}, "mon_close", ["Monday: closing time must be after opening time."]),
        ({"tue_close": "09:00"}, "tue_close", ["Tuesday: closing time must be after opening time."]),
        (
            {"wed_close": ""},
            "wed_close",
            ["Wednesday: give the opening and closing times, or tick \u201cclosed\u201d."],
        ),
        ({"thu_open": "25:00"}, "thu_open", ["Enter a valid time."]),
        ({"sla_urgent": "-2"}, "sla_urgent", ["Must be more than 0 and at most 2000 hours."]),
        ({"sla_high": "0"}, "sla_high", ["Must be more than 0 and at most 2000 hours."]),
        ({"sla_low": "99999"}, "sla_low", ["Must be more than 0 and at most 2000 hours."]),
        ({"sla_normal": "a day"}, "sla_normal", ["Enter a number of hours."]),
        ({"sla_normal": ""}, "sla_normal", ["Give the hours for this priority."]),
        (
            {"collect": ["name", "shoe_size"]},
            "collect",
            ["Select a valid choice. shoe_size is not one of the available choices."],
        ),
        ({"categories": " , ,"}, "categories", ["Give at least one category, e.g. general."]),
        (
            {"urgent_keywords": "flood, " + "x" * 51},
            "urgent_keywords",
            ["Urgent keywords: each entry can be at most 50 characters long."],
        ),
        (
            {"tts_provider": "robot"},
            "tts_provider",
            ["Select a valid choice. robot is not one of the available choices."],
        ),
    ],
)
def test_bad_input_is_reported_on_its_field(overrides, field, messages) -> None:
    form = AgentConfigForm(form_data(**overrides), config=_config())

    assert not form.is_valid()
    assert form.errors == {field: messages}


def test_the_form_starts_from_the_stored_configuration() -> None:
    config = AgentConfig(
        business_name="Alpha",
        greeting="Hello!",
        tts_provider="piper",
        collect=["name", "callback_number", "reason", "email"],
        categories=["leak", "general"],
        urgent_keywords=["flood"],
        vocabulary=["Springfield", "Elm St"],
        timezone="Europe/London",
        business_hours={"mon": ["08:30", "16:00"], "sat": ["10:00", "12:00"]},
        sla_hours={"urgent": 3, "high": 9, "normal": 20, "low": 30},
    )

    form = AgentConfigForm(config=config)

    assert {
        name: form[name].value() for name in ("greeting", "tts_provider", "categories", "vocabulary", "timezone")
    } == {
        "greeting": "Hello!",
        "tts_provider": "piper",
        "categories": "leak, general",
        "vocabulary": "Springfield, Elm St",
        "timezone": "Europe/London",
    }
    assert [
        (row.day, row.opens.value(), row.closes.value(), row.closed.value()) for row in form.business_day_rows()
    ] == [
        ("mon", "08:30", "16:00", False),
        ("tue", None, None, True),
        ("wed", None, None, True),
        ("thu", None, None, True),
        ("fri", None, None, True),
        ("sat", "10:00", "12:00", False),
        ("sun", None, None, True),
    ]
    assert [field.value() for field in form.sla_fields()] == [3, 9, 20, 30]
    assert [(o.value, o.checked, o.required) for o in form.collect_options()] == [
        ("name", True, True),
        ("callback_number", True, True),
        ("reason", True, True),
        ("address", False, False),
        ("email", True, False),
        ("preferred_time", False, False),
    ]


def test_voice_choices_are_the_registered_speech_engines() -> None:
    choices = voice_choices()

    assert sorted(name for name, _ in choices) == sorted(TTS_PROVIDERS)
    assert choices[0][0] == "offline"


def test_terms_split_on_commas_semicolons_and_lines() -> None:
    assert terms_split("leak, heating;drains\ngeneral,, ") == ["leak", " heating", "drains", "general"]


def test_faq_entry_form_requires_both_parts_and_limits_their_length() -> None:
    empty = FaqEntryForm({"question": "  ", "answer": ""})
    too_long = FaqEntryForm({"question": "q" * 501, "answer": "a" * 2001})
    good = FaqEntryForm({"question": " Do you work weekends? ", "answer": " Saturdays only. "})

    assert empty.errors == {"question": ["The question is required."], "answer": ["The answer is required."]}
    assert too_long.errors == {
        "question": ["Ensure this value has at most 500 characters (it has 501)."],
        "answer": ["Ensure this value has at most 2000 characters (it has 2001)."],
    }
    assert good.is_valid()
    assert good.cleaned_data == {"question": "Do you work weekends?", "answer": "Saturdays only."}


def test_try_form_needs_a_question() -> None:
    assert FaqTryForm({"question": "   "}).errors == {"question": ["Type a question to try."]}
    assert FaqTryForm({"question": "When are you open?"}).is_valid()


@pytest.mark.parametrize(
    ("descriptions", "message"),
    [
        ("leak water everywhere", "Line 1: write the category, a colon, then what it covers."),
        ("roofing: tiles and gutters", "Not one of the categories: roofing."),
    ],
)
def test_category_descriptions_must_name_a_category(descriptions: str, message: str) -> None:
    form = AgentConfigForm(form_data(category_descriptions=descriptions), config=_config())
    assert not form.is_valid()
    assert form.errors["category_descriptions"] == [message]


# The receptionist choice.


def _dialogue(provider: str, options: dict[str, Any]) -> AgentConfig:
    return AgentConfig(business_name="Alpha Plumbing", dialogue_provider=provider, dialogue_options=options)


@pytest.mark.parametrize(
    ("overrides", "config", "expected"),
    [
        ({"dialogue_provider": "receptionist", "dialogue_model": "ignored"}, _dialogue("receptionist", {}), {}),
        (
            {"dialogue_provider": "openai", "dialogue_model": " gpt-4o-mini ", "dialogue_key_ref": "OPENAI_API_KEY"},
            _dialogue("receptionist", {}),
            {"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY"},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": "llama3.1", "dialogue_base_url": " http://gpu:11434/v1 "},
            _dialogue("openai", {"model": "gpt-4o", "key_ref": "OPENAI_API_KEY", "temperature": 0.5}),
            {"model": "llama3.1", "base_url": "http://gpu:11434/v1"},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": "qwen2.5", "dialogue_base_url": ""},
            _dialogue("ollama", {"model": "llama3.1", "base_url": "http://gpu:11434/v1", "first_token_s": 2.0}),
            {"model": "qwen2.5", "first_token_s": 2.0},
        ),
        (
            # An operator's gateway for this business stays when the admin changes the model.
            {"dialogue_provider": "openai", "dialogue_model": "gpt-4o", "dialogue_key_ref": "OPENAI_API_KEY"},
            _dialogue("openai", {"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY", "base_url": "https://gw/v1"}),
            {"model": "gpt-4o", "key_ref": "OPENAI_API_KEY", "base_url": "https://gw/v1"},
        ),
    ],
)
def test_the_receptionist_choice_becomes_a_provider_and_its_options(overrides, config, expected) -> None:
    form = AgentConfigForm(form_data(**overrides), config=config)

    assert form.is_valid(), form.errors
    changes = form.changes()
    assert (changes["dialogue_provider"], changes["dialogue_options"]) == (overrides["dialogue_provider"], expected)


def test_without_the_receptionist_choice_it_is_left_alone() -> None:
    form = AgentConfigForm(form_data(), config=_dialogue("ollama", {"model": "llama3.1"}))

    assert form.is_valid(), form.errors
    assert "dialogue_provider" not in form.changes()
    assert "dialogue_options" not in form.changes()


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"dialogue_provider": "openai", "dialogue_model": " ", "dialogue_key_ref": "OPENAI_API_KEY"},
            {"dialogue_model": ["Give the model's name, e.g. gpt-4o-mini or llama3.1."]},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": ""},
            {"dialogue_model": ["Give the model's name, e.g. gpt-4o-mini or llama3.1."]},
        ),
        (
            {"dialogue_provider": "openai", "dialogue_model": "gpt-4o-mini"},
            {"dialogue_key_ref": ["Choose the key the platform's operator set up for OpenAI."]},
        ),
        (
            {"dialogue_provider": "openai", "dialogue_model": "gpt-4o-mini", "dialogue_key_ref": "DATABASE_URL"},
            {"dialogue_key_ref": ["Select a valid choice. DATABASE_URL is not one of the available choices."]},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": "llama3.1", "dialogue_base_url": "file:///etc/passwd"},
            {"dialogue_base_url": ["The server URL must start with http:// or https:// and name a host."]},
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": "llama3.1", "dialogue_base_url": "http://"},
            {"dialogue_base_url": ["The server URL must start with http:// or https:// and name a host."]},
        ),
        (
            {"dialogue_provider": "anthropic", "dialogue_model": "claude"},
            {"dialogue_provider": ["Select a valid choice. anthropic is not one of the available choices."]},
        ),
    ],
)
def test_a_bad_receptionist_choice_is_reported_on_its_field(overrides, errors) -> None:
    form = AgentConfigForm(form_data(**overrides), config=_config())

    assert not form.is_valid()
    assert form.errors == errors


def test_the_receptionist_fields_start_from_the_stored_choice() -> None:
    config = _dialogue("openai", {"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY", "base_url": "https://gw/v1"})

    initial = AgentConfigForm(config=config).initial

    assert {k: v for k, v in initial.items() if k.startswith("dialogue_")} == {
        "dialogue_provider": "openai",
        "dialogue_model": "gpt-4o-mini",
        "dialogue_base_url": "https://gw/v1",
        "dialogue_key_ref": "OPENAI_API_KEY",
    }


def test_a_key_name_the_operator_stored_stays_choosable_beside_the_offered_ones() -> None:
    config = _dialogue("openai", {"model": "gpt-4o-mini", "key_ref": "ACME_OPENAI_KEY"})

    form = AgentConfigForm(
        form_data(dialogue_provider="openai", dialogue_model="gpt-4o", dialogue_key_ref="ACME_OPENAI_KEY"),
        config=config,
    )

    assert form.fields["dialogue_key_ref"].choices == [  # type: ignore[attr-defined]
        ("", "\u2014"),
        ("OPENAI_API_KEY", "OPENAI_API_KEY"),
        ("ACME_OPENAI_KEY", "ACME_OPENAI_KEY"),
    ]
    assert form.is_valid(), form.errors
    assert form.changes()["dialogue_options"] == {"model": "gpt-4o", "key_ref": "ACME_OPENAI_KEY"}
