"""API keys in the ``Authorization`` header.

A key works on its own tenant's host only. Another tenant's valid key gets
404, as a missing page does; an unknown or revoked key gets 401. A request
made with a key acts as the member who made the key: audit rows name that
person, and the key stops working when they are no longer an admin or owner
of the business (revoke it and make a new one).
"""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.request import Request

from tenants.models import ApiKey, Membership, User
from tenants.permissions import membership_has_role
from tenants.selectors import api_key_verify, tenant_membership_get
from tenants.services import api_key_used_mark

KEYWORDS = frozenset({"bearer", "api-key"})


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer vd_...`` or ``Authorization: Api-Key vd_...``."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: session authentication may still apply
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid API key.")
        key = api_key_verify(raw_key=parts[1])
        if key is None or key.revoked_at is not None:
            raise AuthenticationFailed("Invalid API key.")
        tenant = getattr(request._request, "tenant", None)
        if tenant is None or key.tenant_id != tenant.pk:
            raise NotFound()
        creator = key.created_by
        if creator is None or not creator.is_active:
            raise AuthenticationFailed("This API key's creator is no longer a member of this business.")
        if not membership_has_role(tenant_membership_get(user=creator, tenant=tenant), Membership.Role.ADMIN):
            raise AuthenticationFailed("This API key's creator is no longer an admin of this business.")
        api_key_used_mark(key=key)
        return creator, key

    def authenticate_header(self, request: Request) -> str:
        # Makes unauthenticated requests 401 (with this challenge) rather than 403.
        return 'Bearer realm="api"'
