"""One ticket: what was captured, the call (transcript and recording), and the controls to work on it.

Every control posts on its own. With htmx the response is the panel it
changed (and the activity log, out of band); without, a redirect back here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from tenants.models import Membership
from tenants.permissions import role_required
from tickets.forms import TicketAssignForm, TicketNoteForm, TicketUpdateForm
from tickets.models import Callback, Ticket
from tickets.selectors import (
    tenant_members,
    ticket_activity,
    ticket_categories,
    ticket_faq_answers,
    ticket_get,
    ticket_transcript,
    ticket_unanswered_questions,
)
from tickets.services import TicketError, ticket_assign, ticket_note_add, ticket_update
from tickets.views.common import business_time, request_actor
from voicedesk.core.htmx import is_htmx
from voicedesk.core.tenancy import current_tenant


def _ticket(pk: int) -> Ticket:
    try:
        return ticket_get(ticket_id=pk)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket.") from exc


def _properties_context(ticket: Ticket, **overrides: Any) -> dict[str, Any]:
    members = tenant_members(tenant=current_tenant())
    context: dict[str, Any] = {
        "ticket": ticket,
        "update_form": TicketUpdateForm(ticket=ticket),
        "assign_form": TicketAssignForm(members=members, initial={"assignee": ticket.assignee_id or ""}),
        "categories": ticket_categories(),
        "error": "",
        "notice": "",
    }
    return context | overrides


def _activity_context(ticket: Ticket) -> dict[str, Any]:
    return {"ticket": ticket, "activity": ticket_activity(ticket=ticket, zone=timezone.get_current_timezone())}


def _callback_of(ticket: Ticket) -> Callback | None:
    try:
        return ticket.callback
    except ObjectDoesNotExist:
        return None


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _ticket(pk)
    context = (
        _properties_context(ticket)
        | _activity_context(ticket)
        | {
            "note_form": TicketNoteForm(),
            "transcript": ticket_transcript(call=ticket.call),
            "faq_answers": ticket_faq_answers(ticket=ticket),
            "unanswered": ticket_unanswered_questions(ticket=ticket),
            "callback": _callback_of(ticket),
        }
    )
    return render(request, "tickets/ticket_detail.html", context)


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def ticket_activity_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The activity log alone, for live refreshes when someone else changes the ticket."""
    return render(request, "tickets/_ticket_activity.html", _activity_context(_ticket(pk)))


def _properties_response(request: HttpRequest, ticket: Ticket, error: str, **overrides: Any) -> HttpResponse:
    notice = "" if error else f"Ticket {ticket.number} saved."
    if not is_htmx(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        return redirect("tickets:detail", pk=ticket.pk)
    context = _properties_context(ticket, error=error, notice=notice, **overrides) | _activity_context(ticket)
    return render(request, "tickets/_ticket_properties_response.html", context)


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def ticket_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Status, priority, category or tags: whichever the control posted."""
    ticket = _ticket(pk)
    form = TicketUpdateForm(request.POST, ticket=ticket)
    if not form.is_valid():
        error = " ".join(str(message) for messages_ in form.errors.values() for message in messages_)
        return _properties_response(request, ticket, error, update_form=form)
    changes = form.changes()
    if not changes:
        return _properties_response(request, ticket, "Nothing to change was sent.")
    try:
        ticket_update(ticket_id=ticket.pk, actor=request_actor(request), **changes)
    except TicketError as exc:
        return _properties_response(request, ticket, str(exc))
    return _properties_response(request, _ticket(pk), "")


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def ticket_assign_view(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _ticket(pk)
    form = TicketAssignForm(request.POST, members=tenant_members(tenant=current_tenant()))
    if not form.is_valid():
        return _properties_response(request, ticket, "Choose a member of this business.")
    try:
        ticket_assign(ticket_id=ticket.pk, actor=request_actor(request), assignee=form.cleaned_data["assignee"])
    except TicketError as exc:
        return _properties_response(request, ticket, str(exc))
    return _properties_response(request, _ticket(pk), "")


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def ticket_note_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _ticket(pk)
    form = TicketNoteForm(request.POST)
    added = False
    if form.is_valid():
        try:
            ticket_note_add(ticket_id=ticket.pk, actor=request_actor(request), body=form.cleaned_data["body"])
        except TicketError as exc:
            form.add_error("body", str(exc))
        else:
            form, added = TicketNoteForm(), True
    if not is_htmx(request):
        for error in form.errors.get("body", []):
            messages.error(request, str(error))
        if not form.errors:
            messages.success(request, "Note added.")
        return redirect("tickets:detail", pk=ticket.pk)
    context = _activity_context(ticket) | {"note_form": form, "added": added}
    return render(request, "tickets/_ticket_note_response.html", context)
