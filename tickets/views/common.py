"""Plumbing shared by the help desk views: the acting user, the business's clock, htmx responses."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from calls.selectors import agent_timezone
from tenants.models import User
from voicedesk.core.htmx import htmx_vary

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def request_actor(request: HttpRequest) -> User:
    """The signed-in member; views run behind ``role_required``, so there always is one."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("help desk views need a signed-in user")
    return user


def business_time(view: View) -> View:
    """Show and read dates and times in the business's time zone (``AgentConfig.timezone``)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with timezone.override(agent_timezone(tenant=request.tenant)):  # type: ignore[attr-defined]
            response = view(request, *args, **kwargs)
        # Pages and their htmx fragments share URLs: caches must keep them apart.
        return htmx_vary(response)

    return wrapped  # type: ignore[return-value]
