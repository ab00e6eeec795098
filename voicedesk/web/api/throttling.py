"""Rate limits per API key, else per signed-in user, in the shared (Redis) cache.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` by the view's
``throttle_scope`` (default ``"api"``), read on each request so a settings
override takes effect. Cache keys carry the schema (the cache's key function
adds it), so a user of two businesses has a budget in each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView  # DRF's views import these classes: no runtime import

DEFAULT_SCOPE = "api"


class ApiRateThrottle(SimpleRateThrottle):
    scope = DEFAULT_SCOPE

    def __init__(self) -> None:
        # The scope, and so the rate, is known only once the view is.
        self.rate = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = getattr(view, "throttle_scope", None) or DEFAULT_SCOPE
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if not isinstance(rate, str):
            raise ImproperlyConfigured(f"No API rate for the scope {self.scope!r}.")
        return rate

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
