"""The call history and one call's page: parse the request, check access, call the selectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from calls import selectors
from calls.models import Call, TransferStatus
from tenants.models import Membership, Tenant
from tenants.permissions import role_required
from voicedesk.core.htmx import htmx_render, is_htmx
from voicedesk.core.timefmt import duration_label, offset_label

PAGE_SIZE = 25
# The ids of the pager's links (``HX-Trigger`` names the one followed).
PAGER_LINK_IDS = frozenset({"calls-page-prev", "calls-page-next"})
SORT_CHOICES = (
    ("-started", "Newest first"),
    ("started", "Oldest first"),
    ("-duration", "Longest first"),
    ("duration", "Shortest first"),
)


class TenantRequest(HttpRequest):
    """A request on a tenant host, as django-tenants, django-htmx and the access middleware leave it."""

    tenant: Tenant
    htmx: HtmxDetails
    membership: Membership | None


class CallFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100, strip=True)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Call.Status.choices])
    transfer = forms.ChoiceField(
        label="Transfer",
        required=False,
        choices=[("", "Any call"), ("any", "Any transfer"), *TransferStatus.choices[1:]],
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The “From” date must not be after the “To” date.")
        return cleaned

    def filters(self) -> selectors.CallFilters:
        data = self.cleaned_data
        return selectors.CallFilters(
            q=data["q"],
            status=data["status"],
            transfer=data["transfer"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            sort=data["sort"] or "-started",
        )


@dataclass(frozen=True)
class CallRow:
    call: Call
    duration: str


@require_GET
@role_required(Membership.Role.AGENT)
def call_list(request: TenantRequest) -> HttpResponse:
    """Search, filter, sort and page through the calls; htmx asks for the results fragment only.

    After a pager link swapped the results in, focus moves to them (the link
    that had it is gone); a live refresh leaves focus where it is.
    """
    tenant = request.tenant
    tz = selectors.agent_timezone(tenant=tenant)
    form = CallFilterForm(request.GET)
    paged = is_htmx(request) and request.htmx.trigger in PAGER_LINK_IDS
    context: dict[str, Any] = {"form": form, "tz": tz, "sort": "-started", "focus_results": paged}
    status = 200
    if form.is_valid():
        filters = form.filters()
        calls = selectors.call_list(tenant=tenant, filters=filters, tz=tz)
        page = Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))
        context |= {
            "page": page,
            "rows": [CallRow(call=call, duration=duration_label(call.duration)) for call in page],  # type: ignore[attr-defined]
            "sort": filters.sort,
            "searched": True,
            "filtered": bool(filters.q or filters.status or filters.transfer or filters.date_from or filters.date_to),
        }
    else:
        status = 400
    return htmx_render(request, "calls/call_list.html", "calls/_call_results.html", context, status=status)


@require_GET
@role_required(Membership.Role.AGENT)
def call_detail(request: TenantRequest, pk: int) -> HttpResponse:
    """One call: details, captured fields, ticket, recording with a seekable transcript, turn latencies."""
    tenant = request.tenant
    try:
        call = selectors.call_get(tenant=tenant, call_id=pk)
    except Call.DoesNotExist as exc:
        raise Http404("No such call.") from exc
    ticket = getattr(call, "ticket", None)  # the reverse one-to-one raises when there is no ticket
    context = {
        "call": call,
        "ticket": ticket,
        "tz": selectors.agent_timezone(tenant=tenant),
        "duration": duration_label(
            call.ended_at - call.answered_at if call.ended_at and call.answered_at else None,
        ),
        "caller_name": selectors.call_caller_name(call=call),
        "fields": selectors.call_captured_fields(call=call),
        "utterances": [(u, offset_label(u.start_s)) for u in selectors.call_transcript(tenant=tenant, call=call)],
        "latencies": list(selectors.call_turn_latencies(tenant=tenant, call=call)),
        "first_frame": selectors.call_first_frame_percentiles(tenant=tenant, call=call),
    }
    return render(request, "calls/call_detail.html", context)
