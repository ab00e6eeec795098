"""Forms of the help desk pages. They parse and validate input; the services make the changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from calls.services import FAQ_ANSWER_MAX_LENGTH, FAQ_QUESTION_MAX_LENGTH
from tenants.models import User
from tickets.models import STATUS_FLOW, Callback, Ticket
from tickets.selectors import OPEN_STATUSES, AssigneeFilter, TicketFilters
from tickets.services import TicketError, tags_normalize

STATUS_ACTIVE = "active"
STATUS_ANY = "any"
# Ascending first where that is what people mean by the key (due soonest, urgent first).
SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-updated", "Recently updated"),
    ("updated", "Least recently updated"),
    ("due", "Due soonest"),
    ("-due", "Due last"),
    ("priority", "Urgent first"),
    ("-priority", "Low priority first"),
    ("-number", "Highest number"),
    ("number", "Lowest number"),
]


def _choices_set(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{name} is not a choice field")
    field.choices = choices


def _member_choices(members: list[User]) -> list[tuple[str, str]]:
    return [(str(user.pk), user.email) for user in members]


def tags_split(text: str) -> list[str]:
    """``"vip, Landlord"`` → ``["vip", "landlord"]``; raises ``ValidationError`` for overlong tags."""
    try:
        return tags_normalize(text.split(","))
    except TicketError as exc:
        raise forms.ValidationError(str(exc)) from exc


class TicketFilterForm(forms.Form):
    """The inbox's filters. Invalid values are reported and then ignored, never fatal."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(label="Status", required=False)
    priority = forms.ChoiceField(label="Priority", required=False)
    category = forms.ChoiceField(label="Category", required=False)
    assignee = forms.ChoiceField(label="Assignee", required=False)
    created_from = forms.DateField(label="Created from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(label="Created to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    overdue = forms.BooleanField(label="Overdue only", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=SORT_CHOICES)

    def __init__(self, *args: Any, members: list[User], categories: list[str], zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["q"].widget.attrs.update({"type": "search", "placeholder": "Number, subject, name, phone, email"})
        _choices_set(
            self,
            "status",
            [
                (STATUS_ACTIVE, "All open (new, open, pending)"),
                (STATUS_ANY, "Any status"),
                *Ticket.Status.choices,
            ],
        )
        _choices_set(self, "priority", [("", "Any priority"), *Ticket.Priority.choices])
        _choices_set(self, "category", [("", "Any category"), *((c, c) for c in categories)])
        _choices_set(
            self,
            "assignee",
            [
                ("", "Anyone"),
                ("me", "Me"),
                ("none", "Unassigned"),
                *_member_choices(members),
            ],
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and end < start:
            self.add_error("created_to", "The end date must not be before the start date.")
        return cleaned

    def filters(self) -> TicketFilters:
        """The filters asked for; fields with errors fall back to their defaults."""
        data: dict[str, Any] = {}
        if self.is_bound:
            self.is_valid()
            data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        status = data.get("status") or STATUS_ACTIVE
        statuses: tuple[str, ...] = (
            OPEN_STATUSES if status == STATUS_ACTIVE else () if status == STATUS_ANY else (status,)
        )
        raw = str(data.get("assignee") or "")
        assignee: AssigneeFilter = ""
        if raw.isdigit():
            assignee = int(raw)
        elif raw in ("me", "none"):
            assignee = "me" if raw == "me" else "none"
        return TicketFilters(
            statuses=statuses,
            priority=data.get("priority") or "",
            category=data.get("category") or "",
            assignee=assignee,
            created_from=self._day_start(data.get("created_from")),
            created_before=self._day_start(data.get("created_to"), days=1),
            overdue=bool(data.get("overdue")),
            q=data.get("q") or "",
            sort=data.get("sort") or "-created",
        )

    def _day_start(self, day: date | None, days: int = 0) -> datetime | None:
        """Midnight in the business's time zone: "created on the 3rd" means the 3rd where the business is."""
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=days), time.min, self.zone)


class TicketCreateForm(forms.Form):
    subject = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}))
    caller_name = forms.CharField(label="Caller name", required=False, max_length=200)
    callback_number = forms.CharField(
        label="Phone", required=False, max_length=32, widget=forms.TextInput(attrs={"type": "tel"})
    )
    email = forms.EmailField(required=False)
    category = forms.CharField(
        required=False,
        max_length=50,
        help_text="Empty: general.",
        widget=forms.TextInput(attrs={"list": "tk-categories"}),
    )
    tags = forms.CharField(required=False, max_length=500, help_text="Separate tags with commas.")
    priority = forms.ChoiceField(choices=Ticket.Priority.choices, initial=Ticket.Priority.NORMAL)
    assignee = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, members: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = {str(user.pk): user for user in members}
        _choices_set(self, "assignee", [("", "Nobody yet"), *_member_choices(members)])

    def clean_tags(self) -> list[str]:
        return tags_split(self.cleaned_data.get("tags") or "")

    def clean_assignee(self) -> User | None:
        return self.members.get(self.cleaned_data.get("assignee") or "")


class TicketUpdateForm(forms.Form):
    """One or more of a ticket's properties; only the fields posted are changed."""

    status = forms.ChoiceField(required=False)
    priority = forms.ChoiceField(required=False, choices=Ticket.Priority.choices)
    category = forms.CharField(required=False, max_length=50, widget=forms.TextInput(attrs={"list": "tk-categories"}))
    tags = forms.CharField(required=False, max_length=500, help_text="Separate tags with commas.")

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "status": ticket.status,
                "priority": ticket.priority,
                "category": ticket.category,
                "tags": ", ".join(ticket.tags),
            },
        )
        super().__init__(*args, **kwargs)
        # Only the statuses the ticket can move to, and the one it has.
        allowed = {ticket.status, *STATUS_FLOW[ticket.status]}
        _choices_set(self, "status", [(value, label) for value, label in Ticket.Status.choices if value in allowed])

    def clean_tags(self) -> list[str]:
        return tags_split(self.cleaned_data.get("tags") or "")

    def changes(self) -> dict[str, Any]:
        """The valid fields that were posted, as ``ticket_update`` keyword arguments."""
        return {name: value for name, value in self.cleaned_data.items() if name in self.data}


class TicketAssignForm(forms.Form):
    assignee = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, members: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = {str(user.pk): user for user in members}
        _choices_set(self, "assignee", [("", "Nobody"), *_member_choices(members)])

    def clean_assignee(self) -> User | None:
        return self.members.get(self.cleaned_data.get("assignee") or "")


class TicketNoteForm(forms.Form):
    body = forms.CharField(
        label="Internal note",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=10_000,
        error_messages={"required": "A note cannot be empty."},
    )


class ZonedDateTimeField(forms.DateTimeField):
    """A date and time typed in the business's time zone (not the server's)."""

    zone: ZoneInfo = ZoneInfo("UTC")

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(self.zone):
            return super().to_python(value)


class CallbackOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(
        label="What happened?",
        choices=[(value, label) for value, label in Callback.Outcome.choices if value != Callback.Outcome.PENDING],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)
    reschedule_at = ZonedDateTimeField(
        label="Call again at",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    resolve_ticket = forms.BooleanField(label="Resolve the ticket", required=False)

    def __init__(self, *args: Any, zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reschedule_at"]
        assert isinstance(field, ZonedDateTimeField)
        field.zone = zone
        field.help_text = f"Optional, for no answer or voicemail. Time zone: {zone.key}."


class QuestionToFaqForm(forms.Form):
    """A caller's question as it goes into the FAQ; the limits are the FAQ's own."""

    question = forms.CharField(
        label="Question for the FAQ",
        max_length=FAQ_QUESTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "The question is required."},
    )
    answer = forms.CharField(
        max_length=FAQ_ANSWER_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "The answer is required."},
    )
