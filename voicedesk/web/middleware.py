"""Request plumbing: request ids, health probes, tenant access and log context."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Sequence
from functools import cache

import structlog
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name

from tenants.selectors import tenant_membership_get
from voicedesk.core import health, metrics
from voicedesk.core.tenancy import current_schema

Handler = Callable[[HttpRequest], HttpResponse]
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _is_trusted(address: str, networks: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address_resolve(remote_addr: str, forwarded_for: str, trusted: Sequence[IpNetwork]) -> str:
    """The client's address: the right-most hop in ``X-Forwarded-For`` that is not one of our proxies.

    Hops left of the first untrusted one were written by the client and prove nothing.
    """
    if not _is_trusted(remote_addr, trusted):
        return remote_addr
    for hop in reversed([hop.strip() for hop in forwarded_for.split(",") if hop.strip()]):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return remote_addr
    return remote_addr


class TrustedProxyMiddleware:
    """Believe forwarded headers only from ``settings.TRUSTED_PROXIES``; drop them from anyone else.

    Sets ``REMOTE_ADDR`` to the real client behind our proxies, which is what
    allauth's per-address sign-in limits and the logs use.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
        remote = request.META.get("REMOTE_ADDR", "")
        if _is_trusted(remote, trusted):
            request.META["REMOTE_ADDR"] = client_address_resolve(
                remote, request.META.get("HTTP_X_FORWARDED_FOR", ""), trusted
            )
        else:
            for header in _FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


class RequestIdMiddleware:
    """Give each request an id (the caller's ``X-Request-ID`` when sane) and log it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.clear_contextvars()
        response["X-Request-ID"] = request_id
        return response


class HealthCheckMiddleware:
    """Serve the probes and metrics before tenant resolution, so they answer on any host."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return health.liveness(request)
        if request.path == "/readyz":
            return health.readiness(request)
        if request.path == "/metrics":
            return metrics.metrics_view(request)
        return self.get_response(request)


class TenantAccessMiddleware:
    """A signed-in user only reaches tenants they belong to; others get 404.

    Missing and forbidden look the same, so a tenant's existence is not leaked.
    Anonymous visitors are sent to sign in by the views themselves; the
    carrier's webhook authenticates by signature, not by session.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        request.membership = None  # type: ignore[attr-defined]
        if tenant is not None and tenant.schema_name != get_public_schema_name():
            user = request.user
            if user.is_authenticated:
                membership = tenant_membership_get(user=user, tenant=tenant)
                if membership is None and not request.path.startswith("/accounts/logout"):
                    raise Http404("No such page.")
                request.membership = membership  # type: ignore[attr-defined]
        return self.get_response(request)


class LogContextMiddleware:
    """Bind the tenant schema and user to every log line of the request."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        structlog.contextvars.bind_contextvars(
            tenant=current_schema(),
            user_id=request.user.pk if request.user.is_authenticated else None,
        )
        return self.get_response(request)
