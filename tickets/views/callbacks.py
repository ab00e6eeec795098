"""The callback queue: who to call back next, and what happened when they were called."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from tenants.models import Membership
from tenants.permissions import role_required
from tickets.forms import CallbackOutcomeForm
from tickets.models import Callback
from tickets.selectors import CALLBACK_FILTERS, PAGE_SIZE, callback_get, callback_queue, callbacks_recently_done
from tickets.services import TicketError, callback_next, callback_outcome_log
from tickets.views.common import business_time, request_actor
from voicedesk.core.htmx import is_htmx


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def callback_queue_view(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "all")
    if show not in CALLBACK_FILTERS:
        show = "all"
    callbacks = callback_queue(actor=request_actor(request), show=show)
    page = Paginator(callbacks, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "callbacks": page.object_list,
        "show": show,
        "filters": CALLBACK_FILTERS,
        "now": timezone.now(),
    }
    if is_htmx(request):
        return render(request, "tickets/_callback_rows.html", context)
    context["recent"] = callbacks_recently_done()
    return render(request, "tickets/callback_queue.html", context)


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def callback_next_view(request: HttpRequest) -> HttpResponse:
    """Hand the agent the callback to make now, and open it."""
    try:
        callback = callback_next(actor=request_actor(request))
    except TicketError as exc:
        messages.error(request, str(exc))
        return redirect("tickets:callback_queue")
    if callback is None:
        messages.info(request, "No callbacks are waiting for you. Nice work.")
        return redirect("tickets:callback_queue")
    return redirect("tickets:callback_detail", pk=callback.pk)


def _callback(pk: int) -> Callback:
    try:
        return callback_get(callback_id=pk)
    except Callback.DoesNotExist as exc:
        raise Http404("No such callback.") from exc


def _detail(request: HttpRequest, callback: Callback, form: CallbackOutcomeForm, status: int = 200) -> HttpResponse:
    return render(request, "tickets/callback_detail.html", {"callback": callback, "form": form}, status=status)


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def callback_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _callback(pk), CallbackOutcomeForm(zone=timezone.get_current_timezone()))


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def callback_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    """Log one attempt; back to the queue when it is logged, the form with the reason when not."""
    callback = _callback(pk)
    form = CallbackOutcomeForm(request.POST, zone=timezone.get_current_timezone())
    if not form.is_valid():
        return _detail(request, callback, form)
    try:
        logged = callback_outcome_log(callback_id=callback.pk, actor=request_actor(request), **form.cleaned_data)
    except TicketError as exc:
        form.add_error(None, str(exc))
        return _detail(request, callback, form)
    label = Callback.Outcome(logged.outcome).label
    if logged.completed_at is not None:
        messages.success(request, f"{label}: the callback for {callback.ticket.number} is done.")
    elif form.cleaned_data["reschedule_at"] is not None:
        when = timezone.localtime(logged.due_at).strftime("%a %d %b %H:%M") if logged.due_at else ""
        messages.success(request, f"{label}: the callback for {callback.ticket.number} is due again {when}.")
    else:
        messages.success(request, f"{label}: the callback for {callback.ticket.number} stays in the queue.")
    return redirect("tickets:callback_queue")
