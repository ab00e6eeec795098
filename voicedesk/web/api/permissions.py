"""Who may call the API. Missing and forbidden look the same: 404, as on the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.models import ApiKey, Membership, User
from tenants.permissions import ROLE_RANK, membership_has_role, request_membership

if TYPE_CHECKING:
    from rest_framework.views import APIView  # DRF's views import these classes: no runtime import


def request_is_api_key(request: Request) -> bool:
    return isinstance(request.auth, ApiKey)


class TenantRolePermission(BasePermission):
    """At least ``role`` in the request's tenant. An API key counts as an admin.

    Anonymous requests fail (401); signed-in members below the role get 404.
    """

    role: str = Membership.Role.AGENT

    def required_role(self, request: Request) -> str:
        return self.role

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request_is_api_key(request):
            # A key acts with admin rights; authentication has checked its creator still has them.
            return ROLE_RANK[Membership.Role.ADMIN] >= ROLE_RANK[self.required_role(request)] or _hidden()
        if not membership_has_role(request_membership(request._request), self.required_role(request)):
            return _hidden()
        return True


def _hidden() -> bool:
    raise NotFound()


class IsTenantMember(TenantRolePermission):
    role = Membership.Role.AGENT


class IsTenantAdmin(TenantRolePermission):
    role = Membership.Role.ADMIN


class MemberReadsAdminWrites(TenantRolePermission):
    """Agents read the business's settings; admins, owners and keys change them."""

    def required_role(self, request: Request) -> str:
        return Membership.Role.AGENT if request.method in SAFE_METHODS else Membership.Role.ADMIN


def api_actor(request: Request) -> User:
    """The user a request acts as: the signed-in member, or the member who made the API key."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
