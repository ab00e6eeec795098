"""Stripe's webhook endpoint on the public host, and the owner's billing page on the tenant host."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import stripe
import structlog
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from billing.models import Plan, Subscription
from billing.selectors import (
    BillingOverview,
    MonthFigures,
    billing_history,
    billing_overview,
    billing_summary_for_tenant,
    invoice_list_for_tenant,
    plan_list_active,
)
from billing.services import LIVE_STATUSES, checkout_session_start, portal_session_start, stripe_event_receive
from billing.templatetags.money import dollars
from tenants.models import Membership
from tenants.permissions import role_required
from voicedesk.core.charts import BarChart, bar_chart

logger = structlog.get_logger(__name__)

# Stripe's events are a few kilobytes; anything this large is not one.
MAX_WEBHOOK_BYTES = 512 * 1024
CALLS_PER_PAGE = 25


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify the signature on the raw body, store the event once, answer at once; a worker applies it."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return JsonResponse({"error": "Billing is not configured."}, status=404)
    if int(request.headers.get("Content-Length") or 0) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "Payload too large."}, status=413)
    try:
        _event, created = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except (stripe.SignatureVerificationError, ValueError):
        logger.warning("stripe_webhook_rejected")
        return JsonResponse({"error": "Invalid signature or payload."}, status=400)
    return JsonResponse({"received": True, "duplicate": not created})


@require_http_methods(["GET"])
def billing_overview_page(request: HttpRequest) -> HttpResponse:
    """The platform owner's revenue page on the public host: staff signed in with a second factor."""
    if not admin.site.has_permission(request):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("account_login"))
        if not request.user.is_staff:
            raise Http404("No such page.")
        return redirect(f"{reverse('admin:login')}?next={request.path}")
    overview = billing_overview(actor=request.user)  # type: ignore[arg-type]
    history = billing_history(actor=request.user)  # type: ignore[arg-type]
    context = {"overview": overview, "history": history, "charts": _overview_charts(overview, history)}
    return render(request, "billing/overview.html", context)


def _money(cents: float) -> str:
    return dollars(Decimal(str(cents)))


def _overview_charts(overview: BillingOverview, history: list[MonthFigures]) -> dict[str, BarChart]:
    """The owner page's charts, drawn from the same figures as its tables."""
    months = [f"{m.month:%b %y}" for m in history]
    month_name = f"{overview.period_start:%B %Y}" if overview.period_start else "this month"
    return {
        "mrr": bar_chart(
            title="Monthly recurring revenue at each month's end, and money collected in the month",
            labels=months,
            series=[("MRR", [m.mrr_cents for m in history]), ("Collected", [m.collected_cents for m in history])],
            value_text=_money,
        ),
        "minutes": bar_chart(
            title="Billed call minutes per month",
            labels=months,
            series=[("Minutes", [m.minutes for m in history])],
            counts=True,
        ),
        "days": bar_chart(
            title="Billed call minutes per day, last 30 days",
            labels=[day[5:] for day, _ in overview.minutes_per_day],
            series=[("Minutes", [minutes for _, minutes in overview.minutes_per_day])],
            counts=True,
        ),
        "failed": bar_chart(
            title="Failed payments per month",
            labels=months,
            series=[("Failed payments", [m.failed_payments for m in history])],
            counts=True,
        ),
        "margin": bar_chart(
            title=f"Revenue against provider cost by business, {month_name}",
            labels=[row.tenant.name for row in overview.rows],
            series=[
                ("Revenue", [row.revenue_cents for row in overview.rows]),
                ("Provider cost", [row.provider_cost_cents for row in overview.rows]),
            ],
            value_text=_money,
        ),
    }


@role_required(Membership.Role.OWNER)
@require_http_methods(["GET"])
def billing_page(request: HttpRequest) -> HttpResponse:
    """The owner's billing page: plan, this period's minutes against those included, the estimate, invoices,
    and the cost of each call, a page at a time."""
    tenant = request.tenant  # type: ignore[attr-defined]
    summary = billing_summary_for_tenant(tenant=tenant)
    status = summary.subscription.status if summary.subscription else Subscription.Status.NONE
    page_number = request.GET.get("page", "1")
    if not page_number.isdigit():
        return HttpResponseBadRequest("The page must be a number.")
    context = {
        "summary": summary,
        "calls_page": Paginator(summary.calls, CALLS_PER_PAGE).get_page(int(page_number)),
        "invoices": invoice_list_for_tenant(tenant=tenant),
        "status": status,
        "status_label": Subscription.Status(status).label,
        "live": status in LIVE_STATUSES,
        "plans": plan_list_active(),
        "billing_enabled": bool(settings.STRIPE_SECRET_KEY),
        "confirming": request.GET.get("checkout") == "done" and status not in LIVE_STATUSES,
    }
    return render(request, "billing/billing.html", context)


def _to_stripe(request: HttpRequest, start: Callable[[], str], *, unavailable: str) -> HttpResponse:
    """Redirect to the Stripe page ``start`` opens; a refusal or an unreachable Stripe goes back with a message."""
    if not settings.STRIPE_SECRET_KEY:
        raise Http404("Billing is not configured.")
    try:
        url = start()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("billing:page")
    except stripe.StripeError:
        logger.exception("stripe_session_failed")
        messages.error(request, unavailable)
        return redirect("billing:page")
    return redirect(url)


@role_required(Membership.Role.OWNER)
@require_POST
def billing_checkout(request: HttpRequest) -> HttpResponse:
    """Send the owner to Stripe Checkout for the chosen plan."""
    plan = Plan.objects.filter(code=request.POST.get("plan", ""), is_active=True).first()
    if plan is None:
        messages.error(request, "Choose one of the plans below.")
        return redirect("billing:page")
    page = request.build_absolute_uri(reverse("billing:page"))
    return _to_stripe(
        request,
        lambda: checkout_session_start(
            tenant=request.tenant,  # type: ignore[attr-defined]
            plan=plan,
            actor=request.user,  # type: ignore[arg-type]
            success_url=f"{page}?checkout=done",
            cancel_url=page,
        ),
        unavailable="Payments are unavailable right now; nothing was charged. Please try again shortly.",
    )


@role_required(Membership.Role.OWNER)
@require_POST
def billing_portal(request: HttpRequest) -> HttpResponse:
    """Send the owner to the Stripe Billing Portal (cards, invoices, plan changes, cancellation)."""
    return _to_stripe(
        request,
        lambda: portal_session_start(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            return_url=request.build_absolute_uri(reverse("billing:page")),
        ),
        unavailable="The billing portal is unavailable right now. Please try again shortly.",
    )
