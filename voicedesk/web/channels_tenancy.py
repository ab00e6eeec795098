"""Websocket tenant resolution: the Host header picks the tenant, put in ``scope``.

Consumers must still wrap their database work in ``tenant_context(scope["tenant"])``:
sync helpers run in a thread pool whose connections start at public.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django_tenants.utils import get_public_schema_name, get_tenant_domain_model, remove_www, schema_context

from tenants.models import Membership, Tenant

Scope = dict[str, Any]


@database_sync_to_async
def _tenant_for_host(hostname: str) -> Tenant | None:
    domain = get_tenant_domain_model().objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain is not None else None


def hostname_from_scope(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return remove_www(value.decode("latin-1").split(":")[0].lower())
    return ""


class TenantWebsocketMiddleware:
    """Put the tenant of the Host header in ``scope["tenant"]``; unknown hosts are refused."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        tenant = await _tenant_for_host(hostname_from_scope(scope))
        if tenant is None or tenant.is_template:
            # Fail closed, before the handshake completes.
            await send({"type": "websocket.close", "code": 4404})
            return None
        return await self.app({**scope, "tenant": tenant}, receive, send)


def websocket_same_origin(scope: Scope) -> bool:
    """The page that opened the socket is on the socket's own host: another business's subdomain is a stranger."""
    headers = dict(scope.get("headers", []))
    origin = urlsplit(headers.get(b"origin", b"").decode("latin-1"))
    host = headers.get(b"host", b"").decode("latin-1")
    return bool(origin.netloc) and origin.netloc.lower() == host.lower()


@database_sync_to_async
def websocket_membership(user_id: int, tenant_id: int) -> Membership | None:
    """The active user's membership of the tenant, or None."""
    # Thread-pool connections may have been left on a tenant schema by other
    # work; memberships live in public.
    with schema_context(get_public_schema_name()):
        return Membership.objects.filter(user_id=user_id, tenant_id=tenant_id, user__is_active=True).first()
