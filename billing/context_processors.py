"""The billing banner on a business's pages: why calls are not answered, or a payment to fix."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from billing.selectors import service_access_for_tenant


def billing_notice(request: HttpRequest) -> dict[str, Any]:
    """``billing_notice`` (text and level) for a member on their business's host, when there is one."""
    membership = getattr(request, "membership", None)
    tenant = getattr(request, "tenant", None)
    if membership is None or tenant is None:
        return {}
    access = service_access_for_tenant(tenant=tenant)
    if not access.notice:
        return {}
    return {"billing_notice": {"text": access.notice, "level": access.level}}
