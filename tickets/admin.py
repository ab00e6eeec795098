"""Tickets, callbacks and unanswered questions on a tenant's own admin site.

Every change goes through ``tickets.services`` (the activity log and live
updates depend on it); the admin only parses the form and picks the service.
Tickets are not added here: calls, the help desk pages and the API create them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tenants.models import Membership, User
from tenants.permissions import request_actor
from tenants.services import audit_event_record
from tickets.models import STATUS_FLOW, Callback, CallbackAttempt, Ticket, UnansweredQuestion
from tickets.services import (
    TicketError,
    ticket_assign,
    ticket_update,
    unanswered_question_dismiss,
)
from voicedesk.web.admin_site import (
    Role,
    TenantInline,
    TenantModelAdmin,
    changed_values,
    request_has_role,
    request_tenant,
    service_dry_run,
    tenant_admin_site,
)

# Fields a person edits; the rest is written by the services (SLA, timestamps)
# or by the call (summary, captured fields).
TICKET_UPDATE_FIELDS = (
    "subject",
    "status",
    "priority",
    "category",
    "tags",
    "caller_name",
    "callback_number",
    "email",
    "description",
)
TICKET_READONLY_FIELDS = (
    "number",
    "source",
    "call_link",
    "summary",
    "due_at",
    "sla_paused_at",
    "resolved_at",
    "created_at",
    "updated_at",
    "captured",
    "faq_answered",
    "activity",
)
_NO_CHANGE = object()


def _members(request: HttpRequest) -> QuerySet[User]:
    return User.objects.filter(memberships__tenant=request_tenant(request)).order_by("email")


def _ticket_apply(*, ticket_id: int, actor: User | None, changes: dict[str, Any], assignee: Any) -> None:
    """One admin save: field changes through ``ticket_update``, then the assignee through ``ticket_assign``."""
    if changes:
        ticket_update(ticket_id=ticket_id, actor=actor, **changes)
    if assignee is not _NO_CHANGE:
        ticket_assign(ticket_id=ticket_id, actor=actor, assignee=assignee)


class TicketAdminForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = (*TICKET_UPDATE_FIELDS, "assignee")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is not None and self.instance.pk is not None:
            # Offer only the moves the status flow allows from here.
            allowed = {self.instance.status, *STATUS_FLOW[self.instance.status]}
            status.choices = [(value, label) for value, label in Ticket.Status.choices if value in allowed]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors or self.instance.pk is None:
            return cleaned
        service_dry_run(
            self,
            lambda: _ticket_apply(
                ticket_id=self.instance.pk, actor=None, changes=self.ticket_changes(), assignee=self.new_assignee()
            ),
        )
        return cleaned

    def ticket_changes(self) -> dict[str, Any]:
        return changed_values(self, TICKET_UPDATE_FIELDS)

    def new_assignee(self) -> Any:
        return self.cleaned_data.get("assignee") if "assignee" in self.changed_data else _NO_CHANGE


class AssigneeFilter(admin.SimpleListFilter):
    """Filter by the business's members only: the user table is shared by every tenant."""

    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        members = [(str(user.pk), user.email) for user in _members(request)]
        return [("none", "Unassigned"), *members]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset


@admin.register(Ticket, site=tenant_admin_site)
class TicketAdmin(TenantModelAdmin):
    form = TicketAdminForm
    # No add_role: a ticket made here would skip the intake of calls, pages and the API.
    change_role = Role.ADMIN
    delete_role = Role.OWNER

    list_display = (
        "number",
        "subject",
        "status",
        "priority",
        "category",
        "source",
        "assignee",
        "due_at",
        "overdue",
        "created_at",
    )
    list_display_links = ("number", "subject")
    list_filter = ("status", "priority", "source", "category", AssigneeFilter, "created_at")
    list_select_related = ("assignee",)
    search_fields = ("subject", "caller_name", "callback_number", "email", "summary", "description")
    search_help_text = "Subject, caller, number, email or text; T-12 finds ticket 12."
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ("resolve_selected",)
    readonly_fields = TICKET_READONLY_FIELDS

    def get_fieldsets(self, request: HttpRequest, obj: Ticket | None = None) -> Any:
        return (
            (None, {"fields": ("number", "subject", "status", "priority", "assignee", "category", "tags")}),
            ("Caller", {"fields": ("caller_name", "callback_number", "email", "source", "call_link")}),
            ("Details", {"fields": ("description", "summary", "captured", "faq_answered")}),
            ("SLA", {"fields": ("due_at", "sla_paused_at", "resolved_at", "created_at", "updated_at")}),
            ("Activity", {"fields": ("activity",)}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Ticket | None = None) -> Any:
        if obj is None or not self.has_change_permission(request, obj):
            return (*TICKET_UPDATE_FIELDS, "assignee", *TICKET_READONLY_FIELDS)
        return TICKET_READONLY_FIELDS

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assignee":
            kwargs["queryset"] = _members(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str
    ) -> tuple[QuerySet[Ticket], bool]:
        term = search_term.strip()
        if term[:2].upper() == "T-" and term[2:].isdigit():
            return queryset.filter(pk=int(term[2:])), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        _ticket_apply(
            ticket_id=obj.pk, actor=request_actor(request), changes=form.ticket_changes(), assignee=form.new_assignee()
        )
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Ticket) -> None:
        self.delete_queryset(request, Ticket.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        # No service deletes tickets: only owners can, here, and the platform audit keeps a trace.
        actor = request_actor(request)
        for ticket in queryset:
            # A phone ticket's call is named, so the ticket sweep does not make it again.
            call = {"call_id": ticket.call_id} if ticket.call_id else {}
            audit_event_record(
                action="ticket.deleted",
                actor=actor,
                tenant=request_tenant(request),
                ticket=ticket.number,
                subject=ticket.subject,
                **call,
            )
            ticket.delete()

    def view_on_site(self, obj: Ticket) -> str:
        return reverse("tickets:detail", args=[obj.pk])

    @admin.display(description="Number", ordering="id")
    def number(self, obj: Ticket) -> str:
        return obj.number

    @admin.display(description="Overdue", boolean=True)
    def overdue(self, obj: Ticket) -> bool:
        return obj.is_overdue

    @admin.display(description="Call")
    def call_link(self, obj: Ticket) -> str:
        if obj.call_id is None:
            return "-"
        url = reverse("admin:calls_call_change", args=[obj.call_id], current_app=tenant_admin_site.name)
        return format_html('<a href="{}">Call {}</a>', url, obj.call_id)

    @admin.display(description="Activity")
    def activity(self, obj: Ticket) -> SafeString | str:
        changes = obj.changes.select_related("actor").order_by("created_at", "id")
        if not changes:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.created_at:%Y-%m-%d %H:%M}",
                    change.actor.email if change.actor else "VoiceDesk",
                    change.field,
                    change.old_value,
                    change.new_value,
                )
                for change in changes
            ),
        )
        return format_html(
            "<table><caption>Changes, oldest first</caption><thead><tr>"
            '<th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th>'
            '<th scope="col">From</th><th scope="col">To</th></tr></thead><tbody>{}</tbody></table>',
            rows,
        )

    @admin.action(description="Resolve selected tickets", permissions=["change"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        actor = request_actor(request)
        resolved, refused = 0, []
        for ticket_id, status in queryset.order_by("id").values_list("id", "status"):
            if status == Ticket.Status.RESOLVED:
                continue
            try:
                ticket_update(ticket_id=ticket_id, actor=actor, status=Ticket.Status.RESOLVED)
            except TicketError as exc:
                refused.append(f"T-{ticket_id}: {exc}")
            else:
                resolved += 1
        self.message_user(request, f"Resolved {resolved} ticket{'s' if resolved != 1 else ''}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


class CallbackAttemptInline(TenantInline):
    model = CallbackAttempt
    fields = ("created_at", "actor", "outcome", "note")
    readonly_fields = fields
    verbose_name = "attempt"
    verbose_name_plural = "Attempts"


class CallbackStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "In the queue"), ("done", "Done")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "open":
            return queryset.filter(completed_at__isnull=True)
        if self.value() == "done":
            return queryset.filter(completed_at__isnull=False)
        return queryset


@admin.register(Callback, site=tenant_admin_site)
class CallbackAdmin(TenantModelAdmin):
    """Read-only: callbacks are worked from the callback queue, which logs every attempt."""

    list_display = ("ticket", "phone", "priority", "assignee", "due_at", "attempts", "outcome", "completed_at")
    list_filter = (CallbackStateFilter, "outcome", "priority")
    list_select_related = ("ticket", "assignee")
    search_fields = ("phone", "reason", "ticket__subject", "ticket__caller_name")
    date_hierarchy = "due_at"
    inlines = (CallbackAttemptInline,)

    def view_on_site(self, obj: Callback) -> str:
        return reverse("tickets:callback_detail", args=[obj.pk])


@admin.register(UnansweredQuestion, site=tenant_admin_site)
class UnansweredQuestionAdmin(TenantModelAdmin):
    """Read-only but for dismissing; answering one (adding it to the FAQ) is done in the help desk."""

    list_display = ("question", "status", "ticket", "faq_entry", "created_at")
    list_filter = ("status", "created_at")
    list_select_related = ("ticket", "faq_entry")
    search_fields = ("question",)
    actions = ("dismiss_selected",)

    def has_dismiss_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, Membership.Role.ADMIN)

    @admin.action(description="Dismiss selected questions", permissions=["dismiss"])
    def dismiss_selected(self, request: HttpRequest, queryset: QuerySet[UnansweredQuestion]) -> None:
        actor = request_actor(request)
        dismissed = 0
        for question_id in queryset.filter(status=UnansweredQuestion.Status.OPEN).values_list("id", flat=True):
            try:
                unanswered_question_dismiss(question_id=question_id, actor=actor)
            except TicketError:
                continue  # handled by someone else meanwhile
            dismissed += 1
        self.message_user(request, f"Dismissed {dismissed} question{'s' if dismissed != 1 else ''}.", messages.SUCCESS)
