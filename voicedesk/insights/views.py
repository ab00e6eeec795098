"""The overview page and the analytics page: check access, call the read models, shape the charts' data."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from calls import selectors
from calls.views.history import TenantRequest
from tenants.models import Membership
from tenants.permissions import membership_has_role, role_required
from voicedesk.core.htmx import htmx_render
from voicedesk.core.timefmt import span_label
from voicedesk.insights import analytics
from voicedesk.insights.selectors import dashboard_counts, onboarding_checklist, onboarding_is_live

# Who may open the page of each onboarding step.
STEP_ROLES = {
    "details": Membership.Role.ADMIN,
    "agent": Membership.Role.ADMIN,
    "number": Membership.Role.ADMIN,
    "plan": Membership.Role.OWNER,
    "test_call": Membership.Role.ADMIN,
}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    membership = request.membership  # type: ignore[attr-defined]
    steps = onboarding_checklist(tenant=tenant)
    context = {
        "counts": dashboard_counts(tenant=tenant),
        "membership": membership,
        # Each step with the page that does it, when this member may open that page.
        "steps": [
            (step, reverse(step.url_name) if membership_has_role(membership, STEP_ROLES[step.key]) else "")
            for step in steps
        ],
        "steps_left": sum(not step.done for step in steps),
        "live": onboarding_is_live(steps),
    }
    return render(request, "tenants/dashboard.html", context)


class PeriodForm(forms.Form):
    days = forms.ChoiceField(
        label="Period",
        required=False,
        choices=[(str(days), f"Last {days} days") for days in analytics.PERIOD_DAYS],
    )
    # Test calls from the dashboard are left out unless asked for (``?test_calls=1``).
    test_calls = forms.BooleanField(label="Include test calls", required=False)

    def period_days(self) -> int:
        value: str = self.cleaned_data["days"]
        return int(value) if value else analytics.DEFAULT_PERIOD_DAYS


def percent_label(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.0f}%"


def chart_data(summary: dict[str, Any]) -> dict[str, Any]:
    """What ``static/js/analytics.js`` draws, passed with ``json_script``."""
    days = summary["calls_per_day"]
    return {
        "callsPerDay": {
            "labels": [row["day"].isoformat() for row in days],
            "completed": [row["completed"] for row in days],
            "abandoned": [row["abandoned"] for row in days],
            "handleSeconds": [
                None if row["handle_seconds"] is None else round(row["handle_seconds"], 1) for row in days
            ],
        },
        "ticketsByCategory": {
            "labels": [row["label"] for row in summary["tickets_by_category"]],
            "counts": [row["count"] for row in summary["tickets_by_category"]],
        },
        "ticketsByPriority": {
            "labels": [row["label"] for row in summary["tickets_by_priority"]],
            "counts": [row["count"] for row in summary["tickets_by_priority"]],
        },
        "latency": {
            "labels": [stage["label"] for stage in summary["latency"]["stages"]],
            "p50": [stage["p50"] for stage in summary["latency"]["stages"]],
            "p95": [stage["p95"] for stage in summary["latency"]["stages"]],
        },
    }


@require_GET
@role_required(Membership.Role.AGENT)
def analytics_page(request: TenantRequest) -> HttpResponse:
    """Calls, tickets, callbacks, FAQ coverage and response latency over the last 7, 30 or 90 days."""
    form = PeriodForm(request.GET)
    context: dict[str, Any] = {"form": form, "periods": analytics.PERIOD_DAYS}
    status = 200
    if form.is_valid():
        tenant = request.tenant
        tz = selectors.agent_timezone(tenant=tenant)
        period = analytics.analytics_period(
            days=form.period_days(), tz=tz, include_test_calls=form.cleaned_data["test_calls"]
        )
        summary = analytics.analytics_summary(tenant=tenant, period=period)
        calls_total = sum(row["total"] for row in summary["calls_per_day"])
        context |= {
            "period": period,
            "summary": summary,
            "charts": chart_data(summary),
            "calls_total": calls_total,
            "calls_completed": sum(row["completed"] for row in summary["calls_per_day"]),
            "calls_abandoned": sum(row["abandoned"] for row in summary["calls_per_day"]),
            "tickets_total": sum(row["count"] for row in summary["tickets_by_priority"]),
            "labels": {
                "handle_time": span_label(summary["handle_time"]["average_seconds"]),
                "resolution_median": span_label(summary["resolution"]["median_seconds"]),
                "resolution_average": span_label(summary["resolution"]["average_seconds"]),
                "callback_rate": percent_label(summary["callbacks"]["success_rate"]),
                "faq_rate": percent_label(summary["faq"]["rate"]),
            },
            "day_rows": [row | {"handle_label": span_label(row["handle_seconds"])} for row in summary["calls_per_day"]],
        }
    else:
        status = 400
    return htmx_render(request, "calls/analytics.html", "calls/_analytics_body.html", context, status=status)
