"""Public home page and the tenant dashboard."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.selectors import tenant_list_for_user


def home(request: HttpRequest) -> HttpResponse:
    """Landing page on the public host; signed-in users see their businesses."""
    tenants = tenant_list_for_user(user=request.user) if request.user.is_authenticated else []
    return render(request, "tenants/home.html", {"tenants": tenants})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    from tickets.selectors import dashboard_counts

    counts = dashboard_counts(tenant=request.tenant)  # type: ignore[attr-defined]
    return render(request, "tenants/dashboard.html", {"counts": counts, "membership": request.membership})  # type: ignore[attr-defined]
