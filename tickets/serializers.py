"""API representations of tickets, notes, their history and callbacks.

Output serializers are read-only; writes have their own input serializers
and go through ``tickets.services``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.models import User
from tickets.models import Callback, Ticket, TicketChange, TicketNote
from tickets.services import TAG_MAX_LENGTH
from voicedesk.core.tenancy import current_schema


class UserRefSerializer(serializers.Serializer):
    """A member, as shown on a ticket: id and email."""

    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)


class TicketSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    call_id = serializers.IntegerField(read_only=True, allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "subject",
            "description",
            "summary",
            "caller_name",
            "callback_number",
            "email",
            "category",
            "tags",
            "priority",
            "status",
            "source",
            "assignee",
            "due_at",
            "sla_paused_at",
            "resolved_at",
            "is_overdue",
            "call_id",
            "captured",
            "faq_answered",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _member(user_id: int | None) -> User | None:
    """The member of the active tenant with ``user_id``; unknown ids and outsiders look alike."""
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True, memberships__tenant__schema_name=current_schema()).first()
    if user is None:
        raise serializers.ValidationError("The assignee must be a member of this business.")
    return user


class _TicketFieldsInput(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    caller_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    callback_number = serializers.CharField(required=False, allow_blank=True, max_length=32)
    email = serializers.EmailField(required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True, max_length=50)
    tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX_LENGTH), required=False, max_length=50)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    assignee = serializers.IntegerField(
        required=False, allow_null=True, help_text="User id of a member of this business; null for nobody."
    )

    def validate_assignee(self, value: int | None) -> User | None:
        return _member(value)


class TicketCreateSerializer(_TicketFieldsInput):
    subject = serializers.CharField(max_length=200)


class TicketUpdateSerializer(_TicketFieldsInput):
    subject = serializers.CharField(required=False, max_length=200)
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        return attrs


class TicketNoteSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = TicketNote
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = fields


class TicketNoteCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20_000)


class TicketChangeSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = TicketChange
        fields = ["id", "field", "old_value", "new_value", "actor", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_actor(self, change: TicketChange) -> str | None:
        """Who made the change; null for the system (the voice agent, scheduled jobs)."""
        return change.actor.email if change.actor is not None else None


class CallbackSerializer(serializers.ModelSerializer):
    ticket_id = serializers.IntegerField(read_only=True)
    ticket_number = serializers.CharField(source="ticket.number", read_only=True)
    ticket_subject = serializers.CharField(source="ticket.subject", read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = Callback
        fields = [
            "id",
            "ticket_id",
            "ticket_number",
            "ticket_subject",
            "assignee",
            "phone",
            "priority",
            "reason",
            "requested_window",
            "due_at",
            "is_overdue",
            "attempts",
            "outcome",
            "last_attempt_at",
            "completed_at",
            "created_at",
        ]
        read_only_fields = fields


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset (``Z`` or ``+hh:mm``).

    DRF would read a time without one in the server's zone, which is rarely
    the zone of the person calling the API: a callback at the wrong hour.
    """

    default_error_messages = {
        "naive": "Give the time with its time zone, e.g. 2030-11-25T15:00:00Z or 2030-11-25T10:00:00-05:00.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            parsed = parse_datetime(value.strip())
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        elif isinstance(value, datetime) and timezone.is_naive(value):
            self.fail("naive")
        result: datetime = super().to_internal_value(value)
        return result


class CallbackOutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[c for c in Callback.Outcome.choices if c[0] != Callback.Outcome.PENDING])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5_000)
    reschedule_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="Try again at this time (ISO 8601 with time zone)."
    )
    resolve_ticket = serializers.BooleanField(required=False, default=False)
