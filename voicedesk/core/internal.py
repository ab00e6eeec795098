"""Who may see the platform's internals (metrics, readiness details): our own network or a bearer token."""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest


@cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def request_is_internal(request: HttpRequest) -> bool:
    """True for a request from ``INTERNAL_NETWORKS`` (after trusted-proxy resolution) or carrying ``METRICS_TOKEN``.

    Requests relayed by the public proxy carry the outside client's address,
    so the internet never counts as internal.
    """
    token = settings.METRICS_TOKEN
    supplied = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.INTERNAL_NETWORKS)))
