"""Who may do what inside a tenant. Missing and forbidden look the same: 404."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from tenants.models import Membership, User

Role = Membership.Role
# Higher ranks can do everything lower ranks can.
ROLE_RANK: dict[str, int] = {Role.AGENT: 1, Role.ADMIN: 2, Role.OWNER: 3}

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def membership_has_role(membership: Membership | None, role: str) -> bool:
    """True when ``membership`` is at least ``role`` (agent < admin < owner)."""
    return membership is not None and ROLE_RANK.get(membership.role, 0) >= ROLE_RANK[role]


def request_actor(request: HttpRequest) -> User | None:
    """The signed-in user a change is recorded against, for the services' audit rows."""
    return request.user if isinstance(request.user, User) else None


def request_membership(request: HttpRequest) -> Membership | None:
    """The signed-in user's membership of the request's tenant (set by ``TenantAccessMiddleware``)."""
    membership: Membership | None = getattr(request, "membership", None)
    return membership


def role_required(role: str) -> Callable[[View], View]:
    """Decorate a tenant view: sign-in required, then at least ``role`` in this tenant, else 404."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not membership_has_role(request_membership(request), role):
                raise Http404("No such page.")
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
