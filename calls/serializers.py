"""API representations of calls (with transcript and latencies), FAQ entries and the agent's configuration.

Output serializers are read-only; writes have their own input serializers
and go through ``calls.services``.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import COLLECTABLE_FIELDS, AgentConfig, Call, FaqEntry, TurnLatency, Utterance


def recording_url(request: Any, call_id: int) -> str:
    """Absolute URL of a call's recording (members only; supports byte ranges)."""
    path = reverse("calls:recording", args=[call_id])
    return str(request.build_absolute_uri(path)) if request is not None else path


class UtteranceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Utterance
        fields = ["speaker", "text", "start_s", "end_s", "confidence", "interrupted"]
        read_only_fields = fields


class TurnLatencySerializer(serializers.ModelSerializer):
    class Meta:
        model = TurnLatency
        fields = [
            "turn_index", "pause_ms", "transcript_ms", "endpoint_ms", "decision_ms", "first_audio_ms", "first_frame_ms"
        ]  # fmt: skip
        read_only_fields = fields


class CallSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    ticket_id = serializers.IntegerField(source="ticket_pk", read_only=True, allow_null=True)
    recording_url = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "carrier",
            "carrier_call_id",
            "from_number",
            "to_number",
            "status",
            "end_reason",
            "started_at",
            "answered_at",
            "ended_at",
            "duration_seconds",
            "ticket_id",
            "recording_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_recording_url(self, call: Call) -> str | None:
        if not call.recording:
            return None
        return recording_url(self.context.get("request"), call.pk)


class CallDetailSerializer(CallSerializer):
    transcript = UtteranceSerializer(source="utterances", many=True, read_only=True)
    turn_latencies = TurnLatencySerializer(many=True, read_only=True)

    class Meta(CallSerializer.Meta):
        fields = [
            *CallSerializer.Meta.fields,
            "captured",
            "transfer_to",
            "transfer_status",
            "transfer_started_at",
            "transfer_ended_at",
            "transcript",
            "post_call_status",
            "post_call_transcript",
            "turn_latencies",
        ]
        read_only_fields = fields


class FaqEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = FaqEntry
        fields = ["id", "question", "answer", "is_active", "created_at"]
        read_only_fields = fields


class FaqEntryCreateSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=500)
    answer = serializers.CharField()
    is_active = serializers.BooleanField(required=False, default=True)


class FaqEntryUpdateSerializer(serializers.Serializer):
    question = serializers.CharField(required=False, max_length=500)
    answer = serializers.CharField(required=False)
    is_active = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        return attrs


class AgentConfigSerializer(serializers.ModelSerializer):
    collect = serializers.ListField(child=serializers.CharField(), read_only=True)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)
    urgent_keywords = serializers.ListField(child=serializers.CharField(), read_only=True)
    vocabulary = serializers.ListField(child=serializers.CharField(), read_only=True)
    business_hours = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), read_only=True)
    sla_hours = serializers.SerializerMethodField()

    class Meta:
        model = AgentConfig
        fields = [
            "business_name",
            "greeting",
            "persona",
            "stt_provider",
            "tts_provider",
            "dialogue_provider",
            "collect",
            "categories",
            "urgent_keywords",
            "vocabulary",
            "timezone",
            "business_hours",
            "sla_hours",
            "redact_transcripts",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.FloatField()))
    def get_sla_hours(self, config: AgentConfig) -> dict[str, float | int]:
        """As stored: whole hours stay integers."""
        return dict(config.sla_hours)


def _terms(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(), required=False, max_length=50, help_text=help_text)


class AgentConfigUpdateSerializer(serializers.Serializer):
    """The settings a PATCH may change; the service validates the values themselves."""

    business_name = serializers.CharField(required=False, max_length=200)
    greeting = serializers.CharField(required=False, allow_blank=True)
    persona = serializers.CharField(required=False, allow_blank=True)
    stt_provider = serializers.CharField(required=False, help_text="The speech recognition engine.")
    tts_provider = serializers.CharField(required=False, help_text="The text-to-speech engine: the voice callers hear.")
    collect = serializers.ListField(
        child=serializers.ChoiceField(choices=COLLECTABLE_FIELDS),
        required=False,
        help_text="What the agent asks every caller; name, callback_number and reason always.",
    )
    categories = _terms("Ticket categories the agent sorts calls into.")
    urgent_keywords = _terms("Words that make a call urgent.")
    vocabulary = _terms("Names and words that help speech recognition.")
    timezone = serializers.CharField(required=False, help_text="IANA name, e.g. America/New_York.")
    business_hours = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(), allow_empty=True, allow_null=True),
        required=False,
        help_text='Weekday (mon..sun) → ["09:00", "17:00"]; a missing or empty day is closed.',
    )
    sla_hours = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text="Business hours to resolve a ticket, for each of urgent, high, normal and low.",
    )
    redact_transcripts = serializers.BooleanField(
        required=False,
        help_text="Mask phone numbers and emails in stored transcripts and summaries (captured fields are kept).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Send at least one setting to change.")
        return attrs
