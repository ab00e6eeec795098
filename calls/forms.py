"""Forms of the settings pages: the agent's configuration, FAQ entries and the "try a question" box.

They parse and check what a person typed and give per-field messages; the
services in ``calls.services`` validate again and do the writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError

from calls.models import COLLECTABLE_FIELDS, AgentConfig, ProviderKey
from calls.providers.registry import TTS_PROVIDERS
from calls.services import (
    FAQ_ANSWER_MAX_LENGTH,
    FAQ_QUESTION_MAX_LENGTH,
    GREETING_MAX_LENGTH,
    PERSONA_MAX_LENGTH,
    PROVIDER_KEY_MAX_LENGTH,
    REQUIRED_COLLECT_FIELDS,
    SLA_HOURS_MAX,
    SLA_PRIORITIES,
    agent_terms_normalize,
    dialogue_base_url_check,
    dialogue_key_refs,
    transfer_number_clean,
)
from tenants.business_hours import WEEKDAYS, BusinessHoursError, business_hours_validate, timezone_validate

COLLECT_LABELS: dict[str, str] = {
    "name": "Caller's name",
    "callback_number": "Callback number",
    "reason": "Reason for calling",
    "address": "Address",
    "email": "Email address",
    "preferred_time": "Preferred callback time",
}
VOICE_LABELS: dict[str, str] = {
    "offline": "Automatic: the most natural voice installed (Piper, else eSpeak)",
    "piper": "Piper \u201cJoe\u201d: natural US English",
    "espeak": "eSpeak NG: robotic, always available",
    "elevenlabs": "ElevenLabs: cloud voice, once its key is set up",
    "cartesia": "Cartesia: cloud voice, once its key is set up",
}
WEEKDAY_LABELS: dict[str, str] = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
RECEPTIONIST_CHOICES = [
    ("receptionist", "Built-in receptionist: follows your settings and FAQ, needs no model"),
    ("openai", "An OpenAI model"),
    ("ollama", "Ollama or another OpenAI-compatible server"),
]
# What the page sets; other options an operator gave the same provider are kept.
DIALOGUE_PAGE_OPTIONS = ("model", "base_url", "key_ref")
PRIORITY_LABELS: dict[str, str] = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
_TERM_SEPARATOR = re.compile(r"[,\n;]")


def voice_choices() -> list[tuple[str, str]]:
    """Every registered text-to-speech engine; one registered later shows up under its own name."""
    return [(name, VOICE_LABELS.get(name, name)) for name in sorted(TTS_PROVIDERS, key=lambda n: (n != "offline", n))]


def terms_split(text: str) -> list[str]:
    """The comma (or line) separated entries of a tag-style input."""
    return [part for part in _TERM_SEPARATOR.split(text) if part.strip()]


def service_errors_add(form: forms.Form, error: ValidationError) -> None:
    """Show a service's refusal (keyed by setting name) on the matching field of ``form``, else above it."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


@dataclass(frozen=True)
class CollectOption:
    value: str
    label: str
    checked: bool
    required: bool


@dataclass(frozen=True)
class BusinessDayRow:
    day: str
    label: str
    opens: forms.BoundField
    closes: forms.BoundField
    closed: forms.BoundField


class AgentConfigForm(forms.Form):
    """The receptionist's settings. Business hours and SLA targets are one field per weekday and priority."""

    greeting = forms.CharField(
        required=False,
        max_length=GREETING_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The first thing callers hear. Leave empty to greet with the business name.",
    )
    persona = forms.CharField(
        required=False,
        max_length=PERSONA_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How the receptionist should come across, e.g. \u201cfriendly and brief\u201d.",
    )
    tts_provider = forms.ChoiceField(label="Voice", choices=voice_choices, help_text="The voice callers hear.")
    collect = forms.MultipleChoiceField(
        required=False,
        choices=[(f, COLLECT_LABELS.get(f, f)) for f in COLLECTABLE_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Name, callback number and reason are always asked for.",
    )
    categories = forms.CharField(
        max_length=2000,
        help_text="Comma separated, e.g. leak, heating, general. Each ticket gets one.",
        error_messages={"required": "Give at least one category, e.g. general."},
    )
    category_descriptions = forms.CharField(
        label="What each category covers",
        required=False,
        max_length=6000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            "One line per category, e.g. \u201cclaims: anything our crew broke, lost or damaged\u201d. "
            "Common categories have a built-in description; write your own to change it."
        ),
    )
    urgent_keywords = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Comma separated words that make a call urgent, e.g. flood, gas smell.",
    )
    vocabulary = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Comma separated names and words callers use, to help speech recognition (e.g. street names). "
        "Your category names and the words your FAQ asks about are added for you.",
    )
    dialogue_provider = forms.ChoiceField(
        label="Receptionist",
        choices=RECEPTIONIST_CHOICES,
        required=False,
        widget=forms.RadioSelect,
        help_text="A language model handles conversations a script cannot; the built-in receptionist "
        "still checks what it stores and takes over when the model fails.",
    )
    dialogue_model = forms.CharField(
        label="Model",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "dialogue-models", "autocomplete": "off", "spellcheck": "false"}),
        help_text="e.g. gpt-4o-mini, or llama3.1 on Ollama. \u201cList models\u201d asks the server.",
    )
    dialogue_base_url = forms.CharField(
        label="Server URL",
        required=False,
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "http://localhost:11434/v1", "spellcheck": "false"}),
        help_text="Ollama or compatible servers only. Empty: Ollama on this machine.",
    )
    dialogue_key_ref = forms.ChoiceField(
        label="Key",
        required=False,
        help_text="OpenAI only: which key the platform's operator set up (the key itself is never shown).",
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        widget=forms.TextInput(attrs={"list": "settings-timezones", "autocomplete": "off", "spellcheck": "false"}),
        help_text="IANA name, e.g. America/New_York. Business hours and SLA due times use it.",
    )
    transfer_number = forms.CharField(
        label="Transfer number",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "placeholder": "+1 555 010 0199"}),
        help_text="In business hours, a caller who asks for a person is put through to this number, after the "
        "receptionist has written their ticket. If nobody answers they get a priority callback. "
        "International form, e.g. +1 555 010 0199. Empty: callers are always offered a callback.",
    )

    redact_transcripts = forms.BooleanField(
        label="Mask phone numbers and emails in transcripts",
        required=False,
        help_text="Stored transcripts, summaries and open questions show [phone] and [email] instead. "
        "The callback number and email the receptionist collected stay on the ticket; the recording is not changed.",
    )

    def __init__(self, *args: Any, config: AgentConfig, **kwargs: Any) -> None:
        kwargs.setdefault("initial", self.initial_from(config))
        super().__init__(*args, **kwargs)
        self.config = config
        self.fields["dialogue_key_ref"].choices = [  # type: ignore[attr-defined]
            ("", "\u2014"),
            *((ref, ref) for ref in dialogue_key_refs(config)),
        ]
        for day in WEEKDAYS:
            label = WEEKDAY_LABELS[day]
            self.fields[f"{day}_open"] = forms.TimeField(
                required=False, label=f"{label} opens", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
            )
            self.fields[f"{day}_close"] = forms.TimeField(
                required=False, label=f"{label} closes", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
            )
            self.fields[f"{day}_closed"] = forms.BooleanField(required=False, label=f"{label} closed")
        for priority in SLA_PRIORITIES:
            self.fields[f"sla_{priority}"] = forms.FloatField(
                label=f"{PRIORITY_LABELS.get(priority, priority)} priority (hours)",
                widget=forms.NumberInput(attrs={"step": "any", "min": "0", "inputmode": "decimal"}),
                error_messages={"required": "Give the hours for this priority.", "invalid": "Enter a number of hours."},
            )

    @classmethod
    def unsaved(cls, data: Any, *, config: AgentConfig) -> AgentConfigForm:
        """An unbound form showing what was typed in ``data`` (a POST), without judging it."""
        form = cls(config=config)
        for name, field in form.fields.items():
            if isinstance(field, forms.MultipleChoiceField):
                form.initial[name] = data.getlist(name)
            elif isinstance(field, forms.BooleanField):
                form.initial[name] = name in data
            else:
                form.initial[name] = data.get(name, "")
        return form

    @staticmethod
    def initial_from(config: AgentConfig) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "greeting": config.greeting,
            "persona": config.persona,
            "tts_provider": config.tts_provider,
            "collect": list(config.collect),
            "categories": ", ".join(config.categories),
            "category_descriptions": "\n".join(
                f"{name}: {text}" for name, text in (config.category_descriptions or {}).items()
            ),
            "urgent_keywords": ", ".join(config.urgent_keywords),
            "vocabulary": ", ".join(config.vocabulary),
            "timezone": config.timezone,
            "transfer_number": config.transfer_number,
            "dialogue_provider": config.dialogue_provider,
            "dialogue_model": (config.dialogue_options or {}).get("model", ""),
            "dialogue_base_url": (config.dialogue_options or {}).get("base_url", ""),
            "dialogue_key_ref": (config.dialogue_options or {}).get("key_ref", ""),
            "redact_transcripts": config.redact_transcripts,
        }
        hours = config.business_hours if isinstance(config.business_hours, dict) else {}
        for day in WEEKDAYS:
            span = hours.get(day)
            if span:
                initial[f"{day}_open"], initial[f"{day}_close"] = span
            initial[f"{day}_closed"] = not span
        sla = config.sla_hours if isinstance(config.sla_hours, dict) else {}
        for priority in SLA_PRIORITIES:
            initial[f"sla_{priority}"] = sla.get(priority)
        return initial

    # What the template renders.

    def collect_options(self) -> list[CollectOption]:
        chosen = set(self["collect"].value() or [])
        return [
            CollectOption(
                value=value,
                label=str(label),
                checked=value in chosen or value in REQUIRED_COLLECT_FIELDS,
                required=value in REQUIRED_COLLECT_FIELDS,
            )
            for value, label in self.fields["collect"].choices  # type: ignore[attr-defined]
        ]

    def business_day_rows(self) -> list[BusinessDayRow]:
        return [
            BusinessDayRow(
                day=day,
                label=WEEKDAY_LABELS[day],
                opens=self[f"{day}_open"],
                closes=self[f"{day}_close"],
                closed=self[f"{day}_closed"],
            )
            for day in WEEKDAYS
        ]

    def sla_fields(self) -> list[forms.BoundField]:
        return [self[f"sla_{priority}"] for priority in SLA_PRIORITIES]

    @staticmethod
    def timezone_names() -> list[str]:
        return sorted(available_timezones())

    # Validation.

    def clean_collect(self) -> list[str]:
        chosen = set(self.cleaned_data.get("collect") or []) | set(REQUIRED_COLLECT_FIELDS)
        return [f for f in COLLECTABLE_FIELDS if f in chosen]

    def _terms(self, name: str, label: str, *, lower: bool = True) -> list[str]:
        return agent_terms_normalize(terms_split(self.cleaned_data.get(name, "")), label=label, lower=lower)

    def clean_categories(self) -> list[str]:
        categories = self._terms("categories", "Categories")
        if not categories:
            raise ValidationError("Give at least one category, e.g. general.")
        return categories

    def clean_category_descriptions(self) -> dict[str, str]:
        described: dict[str, str] = {}
        for number, line in enumerate(str(self.cleaned_data.get("category_descriptions") or "").splitlines(), 1):
            if not line.strip():
                continue
            name, colon, text = line.partition(":")
            if not colon or not name.strip() or not text.strip():
                raise ValidationError(f"Line {number}: write the category, a colon, then what it covers.")
            described[name.strip().lower()] = text.strip()
        return described

    def clean_urgent_keywords(self) -> list[str]:
        return self._terms("urgent_keywords", "Urgent keywords")

    def clean_vocabulary(self) -> list[str]:
        return self._terms("vocabulary", "Vocabulary", lower=False)

    def clean_dialogue_base_url(self) -> str:
        url = str(self.cleaned_data.get("dialogue_base_url") or "").strip()
        if url:
            dialogue_base_url_check(url)
        return url

    def _dialogue_clean(self, cleaned: dict[str, Any]) -> None:
        provider = cleaned.get("dialogue_provider") or ""
        if provider in ("openai", "ollama") and not " ".join(str(cleaned.get("dialogue_model") or "").split()):
            self.add_error("dialogue_model", "Give the model's name, e.g. gpt-4o-mini or llama3.1.")
        if provider == "openai" and not cleaned.get("dialogue_key_ref") and "dialogue_key_ref" not in self.errors:
            self.add_error("dialogue_key_ref", "Choose the key the platform's operator set up for OpenAI.")

    def clean_transfer_number(self) -> str:
        try:
            return transfer_number_clean(self.cleaned_data["transfer_number"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        try:
            timezone_validate(name)
        except BusinessHoursError as exc:
            raise ValidationError(f"{exc} Use an IANA name such as Europe/London.") from exc
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        hours: dict[str, list[str]] = {}
        for day in WEEKDAYS:
            if cleaned.get(f"{day}_closed"):
                continue
            opens: time | None = cleaned.get(f"{day}_open")
            closes: time | None = cleaned.get(f"{day}_close")
            if f"{day}_open" in self.errors or f"{day}_close" in self.errors:
                continue
            label = WEEKDAY_LABELS[day]
            if opens is None or closes is None:
                self.add_error(
                    f"{day}_open" if opens is None else f"{day}_close",
                    f"{label}: give the opening and closing times, or tick \u201cclosed\u201d.",
                )
                continue
            if closes <= opens:
                self.add_error(f"{day}_close", f"{label}: closing time must be after opening time.")
                continue
            hours[day] = [opens.isoformat(timespec="minutes"), closes.isoformat(timespec="minutes")]
        if not any(f"{day}_{part}" in self.errors for day in WEEKDAYS for part in ("open", "close")):
            try:
                business_hours_validate(hours)
            except BusinessHoursError as exc:
                self.add_error(None, str(exc))
            cleaned["business_hours"] = hours
        sla: dict[str, float] = {}
        for priority in SLA_PRIORITIES:
            name = f"sla_{priority}"
            value: float | None = cleaned.get(name)
            if value is None:
                continue
            if not 0 < value <= SLA_HOURS_MAX:
                self.add_error(name, f"Must be more than 0 and at most {SLA_HOURS_MAX} hours.")
                continue
            sla[priority] = value
        if len(sla) == len(SLA_PRIORITIES):
            cleaned["sla_hours"] = sla
        self._dialogue_clean(cleaned)
        described = cleaned.get("category_descriptions") or {}
        unknown = sorted(set(described) - set(cleaned.get("categories") or []))
        if unknown and "categories" not in self.errors:
            self.add_error("category_descriptions", f"Not one of the categories: {', '.join(unknown)}.")
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The settings to hand to ``agent_config_update`` (only call on a valid form)."""
        data = self.cleaned_data
        return {
            "greeting": data["greeting"],
            "persona": data["persona"],
            "tts_provider": data["tts_provider"],
            "collect": data["collect"],
            "categories": data["categories"],
            "category_descriptions": data["category_descriptions"],
            "urgent_keywords": data["urgent_keywords"],
            "vocabulary": data["vocabulary"],
            "timezone": data["timezone"],
            "business_hours": data["business_hours"],
            "sla_hours": data["sla_hours"],
            "transfer_number": data["transfer_number"],
            "redact_transcripts": data["redact_transcripts"],
            **self.dialogue_changes(),
        }

    def dialogue_changes(self) -> dict[str, Any]:
        """The receptionist and its options; nothing when the form did not include the choice."""
        provider = self.cleaned_data.get("dialogue_provider") or ""
        if not provider:
            return {}
        options: dict[str, Any] = {}
        if provider == self.config.dialogue_provider:
            options = {k: v for k, v in (self.config.dialogue_options or {}).items() if k not in DIALOGUE_PAGE_OPTIONS}
        if provider in ("openai", "ollama"):
            options["model"] = " ".join(self.cleaned_data["dialogue_model"].split())
        if provider == "ollama" and self.cleaned_data["dialogue_base_url"]:
            options["base_url"] = self.cleaned_data["dialogue_base_url"]
        if provider == "openai":
            options["key_ref"] = self.cleaned_data["dialogue_key_ref"]
            # A compatible server the operator set for this business stays.
            kept = (self.config.dialogue_options or {}).get("base_url")
            if self.config.dialogue_provider == "openai" and kept:
                options["base_url"] = kept
        return {"dialogue_provider": provider, "dialogue_options": options}

    service_errors_add = service_errors_add


class FaqEntryForm(forms.Form):
    """A question callers ask and the answer the receptionist gives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "faq_new_%s")
        super().__init__(*args, **kwargs)

    question = forms.CharField(
        max_length=FAQ_QUESTION_MAX_LENGTH,
        help_text="Phrase it the way a caller would ask.",
        error_messages={"required": "The question is required."},
    )
    answer = forms.CharField(
        max_length=FAQ_ANSWER_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Spoken to the caller word for word; keep it short.",
        error_messages={"required": "The answer is required."},
    )

    service_errors_add = service_errors_add


class FaqTryForm(forms.Form):
    """A question as a caller would ask it; ids are prefixed so it can share a page with ``FaqEntryForm``."""

    question = forms.CharField(
        label="Caller's question",
        max_length=FAQ_QUESTION_MAX_LENGTH,
        error_messages={"required": "Type a question to try."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. When are you open?"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "faq_try_%s")
        super().__init__(*args, **kwargs)


class ProviderKeyForm(forms.Form):
    """A cloud speech provider and the business's API key for it; the key is never shown back."""

    provider = forms.ChoiceField(
        choices=ProviderKey.Provider.choices, error_messages={"required": "Choose a provider."}
    )
    api_key = forms.CharField(
        label="API key",
        max_length=PROVIDER_KEY_MAX_LENGTH,
        strip=True,
        # Never rendered back, even after an error: a page never holds the key.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": "Paste the key."},
        help_text="Stored encrypted; only its last four characters are shown again.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "provider_key_%s")
        super().__init__(*args, **kwargs)

    service_errors_add = service_errors_add
