"""Calls, the agent's configuration and the FAQ on a tenant's own admin site.

Calls are records of what happened and stay read-only. Settings and FAQ
changes go through ``calls.services``, which validate them and write the
audit rows.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from calls.models import AgentConfig, Call, FaqEntry, TurnLatency, Utterance
from calls.services import agent_config_update, faq_entry_create, faq_entry_delete, faq_entry_update
from tenants.permissions import request_actor
from voicedesk.web.admin_site import (
    Role,
    TenantInline,
    TenantModelAdmin,
    changed_values,
    service_dry_run,
    tenant_admin_site,
)

# What an admin may change here; the receptionist is chosen on the agent settings page.
AGENT_CONFIG_EDITABLE = (
    "business_name",
    "greeting",
    "persona",
    "tts_provider",
    "stt_provider",
    "collect",
    "categories",
    "urgent_keywords",
    "vocabulary",
    "timezone",
    "business_hours",
    "sla_hours",
    "transfer_number",
    "redact_transcripts",
)
FAQ_EDITABLE = ("question", "answer", "is_active")


class UtteranceInline(TenantInline):
    model = Utterance
    fields = ("start_s", "end_s", "speaker", "text", "confidence", "interrupted")
    readonly_fields = fields
    verbose_name_plural = "Transcript"


class TurnLatencyInline(TenantInline):
    model = TurnLatency
    fields = (
        "turn_index", "pause_ms", "transcript_ms", "endpoint_ms", "decision_ms", "first_audio_ms", "first_frame_ms"
    )  # fmt: skip
    readonly_fields = fields
    verbose_name_plural = "Turn latencies (ms after the caller stopped speaking)"


@admin.register(Call, site=tenant_admin_site)
class CallAdmin(TenantModelAdmin):
    list_display = ("started_at", "from_number", "status", "duration", "end_reason", "has_recording")
    list_filter = ("status", "carrier", "started_at")
    search_fields = ("from_number", "to_number", "carrier_call_id")
    date_hierarchy = "started_at"
    list_per_page = 50
    fields = (
        "started_at",
        "answered_at",
        "ended_at",
        "duration",
        "status",
        "end_reason",
        "from_number",
        "to_number",
        "carrier",
        "carrier_call_id",
        "transfer_status",
        "transfer_to",
        "transfer_started_at",
        "transfer_ended_at",
        "recording_player",
        "ticket_link",
        "captured_pretty",
    )
    readonly_fields = fields
    inlines = (UtteranceInline, TurnLatencyInline)

    def view_on_site(self, obj: Call) -> str:
        return reverse("calls:detail", args=[obj.pk])

    @admin.display(description="Duration")
    def duration(self, obj: Call) -> str:
        seconds = obj.duration_seconds
        if seconds is None:
            return "-"
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}:{rest:02d}"

    @admin.display(description="Recording", boolean=True)
    def has_recording(self, obj: Call) -> bool:
        return bool(obj.recording)

    @admin.display(description="Recording")
    def recording_player(self, obj: Call) -> str:
        if not obj.recording:
            return "-"
        url = reverse("calls:recording", args=[obj.pk])
        return format_html(
            '<audio controls preload="none" src="{}" aria-label="Recording of the call">'
            '<a href="{}">Download the recording</a></audio>',
            url,
            url,
        )

    @admin.display(description="Ticket")
    def ticket_link(self, obj: Call) -> str:
        ticket = getattr(obj, "ticket", None)
        if ticket is None:
            return "-"
        url = reverse("admin:tickets_ticket_change", args=[ticket.pk], current_app=tenant_admin_site.name)
        return format_html('<a href="{}">{}</a>', url, ticket)

    @admin.display(description="Captured")
    def captured_pretty(self, obj: Call) -> str:
        if not obj.captured:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(obj.captured, indent=2, sort_keys=True))


class AgentConfigForm(forms.ModelForm):
    class Meta:
        model = AgentConfig
        fields = AGENT_CONFIG_EDITABLE

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.errors:
            # A fresh copy: the service writes the values it saves on the object it is given.
            current = AgentConfig.objects.get(pk=self.instance.pk)
            service_dry_run(self, lambda: agent_config_update(config=current, **self.config_changes()))
        return cleaned

    def config_changes(self) -> dict[str, Any]:
        return changed_values(self, AGENT_CONFIG_EDITABLE)


@admin.register(AgentConfig, site=tenant_admin_site)
class AgentConfigAdmin(TenantModelAdmin):
    """The one configuration row of the tenant: changed in place, never added or deleted."""

    form = AgentConfigForm
    change_role = Role.ADMIN
    fields = (*AGENT_CONFIG_EDITABLE, "dialogue_provider", "dialogue_options", "updated_at")
    readonly_fields = ("dialogue_provider", "dialogue_options", "updated_at")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        config = AgentConfig.objects.first()
        if config is None:
            return super().changelist_view(request, extra_context)
        return HttpResponseRedirect(
            reverse("admin:calls_agentconfig_change", args=[config.pk], current_app=self.admin_site.name)
        )

    def save_model(self, request: HttpRequest, obj: AgentConfig, form: Any, change: bool) -> None:
        # The form has already written the new values on ``obj``; the service
        # compares with the row it locks, so it sees what really changed.
        agent_config_update(config=obj, actor=request_actor(request), **form.config_changes())
        obj.refresh_from_db()


class FaqEntryForm(forms.ModelForm):
    class Meta:
        model = FaqEntry
        fields = FAQ_EDITABLE
        widgets = {"question": forms.TextInput(attrs={"size": 80})}

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        if self.instance.pk is None:
            service_dry_run(
                self,
                lambda: faq_entry_create(
                    actor=None,
                    question=cleaned.get("question", ""),
                    answer=cleaned.get("answer", ""),
                    is_active=cleaned.get("is_active", True),
                ),
            )
        else:
            service_dry_run(
                self, lambda: faq_entry_update(entry_id=self.instance.pk, actor=None, **self.entry_changes())
            )
        return cleaned

    def entry_changes(self) -> dict[str, Any]:
        return changed_values(self, FAQ_EDITABLE)


@admin.register(FaqEntry, site=tenant_admin_site)
class FaqEntryAdmin(TenantModelAdmin):
    form = FaqEntryForm
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("question", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("question", "answer")

    def save_model(self, request: HttpRequest, obj: FaqEntry, form: Any, change: bool) -> None:
        if change:
            faq_entry_update(entry_id=obj.pk, actor=request_actor(request), **form.entry_changes())
        else:
            created = faq_entry_create(
                actor=request_actor(request),
                question=form.cleaned_data["question"],
                answer=form.cleaned_data["answer"],
                is_active=form.cleaned_data.get("is_active", True),
            )
            obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: FaqEntry) -> None:
        faq_entry_delete(entry_id=obj.pk, actor=request_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FaqEntry]) -> None:
        for entry_id in queryset.values_list("pk", flat=True):
            faq_entry_delete(entry_id=entry_id, actor=request_actor(request))
