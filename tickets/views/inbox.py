"""The ticket inbox and the form for a new ticket."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from tenants.models import Membership
from tenants.permissions import role_required
from tickets.forms import TicketCreateForm, TicketFilterForm
from tickets.selectors import PAGE_SIZE, tenant_members, ticket_categories, ticket_list
from tickets.services import TicketError, ticket_create
from tickets.views.common import business_time, request_actor
from voicedesk.core.htmx import is_htmx
from voicedesk.core.tenancy import current_tenant


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def inbox(request: HttpRequest) -> HttpResponse:
    """Tickets, filtered, searched, sorted and paged; htmx asks for the results fragment only."""
    form = TicketFilterForm(
        request.GET or None,
        members=tenant_members(tenant=current_tenant()),
        categories=ticket_categories(),
        zone=timezone.get_current_timezone(),
    )
    tickets = ticket_list(actor=request_actor(request), filters=form.filters())
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "tickets": page.object_list}
    template = "tickets/_inbox_results.html" if is_htmx(request) else "tickets/inbox.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@role_required(Membership.Role.AGENT)
@business_time
def ticket_new(request: HttpRequest) -> HttpResponse:
    """Open a ticket by hand (source "web"): a walk-in, an email, a call the agent did not take."""
    members = tenant_members(tenant=current_tenant())
    form = TicketCreateForm(request.POST or None, members=members)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = ticket_create(actor=request_actor(request), source="web", **form.cleaned_data)
        except TicketError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Ticket {ticket.number} created.")
            return redirect("tickets:detail", pk=ticket.pk)
    return render(request, "tickets/ticket_new.html", {"form": form, "categories": ticket_categories()})
