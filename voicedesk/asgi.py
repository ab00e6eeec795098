"""ASGI entry point: HTTP through Django, websockets through Channels, for one process role.

``VOICEDESK_ROLE`` says what this process serves, so dashboards never share a
process with real-time audio:

* ``web``: pages, the API and the dashboards' live-update sockets (``/ws/``);
  no speech model is loaded.
* ``voice``: the carriers' webhooks and media streams (``/twilio/``,
  ``/ws/twilio/``) and the dashboard's test call (``/ws/test-call/``); the
  speech models are loaded at start-up.
* ``all``: both, in one process (``make run``, the tests, the simulator).

A proxy in front routes by path (see the README). The carrier's media stream
is not a browser, so it skips the origin check and authenticates with a
signed token instead; dashboard sockets and the test call get the full
origin, session and tenant checks.
"""

import os
import threading
from collections.abc import Mapping

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.prod")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.SERVE_STATIC:
    # Development and browser tests: daphne serves static files itself, as runserver does.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.urls import URLPattern, URLResolver, re_path  # noqa: E402

from calls.pipeline.factory import engines_warm_up  # noqa: E402
from calls.routing import carrier_websocket_urlpatterns  # noqa: E402
from voicedesk.routing import dashboard_websocket_urlpatterns  # noqa: E402
from voicedesk.web.channels_tenancy import TenantWebsocketMiddleware  # noqa: E402

ROLES = ("web", "voice", "all")


def role_check(role: str) -> str:
    if role not in ROLES:
        raise ImproperlyConfigured(f"VOICEDESK_ROLE must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def websocket_routes(role: str) -> list[URLPattern | URLResolver]:
    """The websocket routes a process of ``role`` serves."""
    routes: list[URLPattern | URLResolver] = []
    if role in ("voice", "all"):
        routes += carrier_websocket_urlpatterns
    if role in ("web", "all"):
        # A prefix: the routes inside are wrapped in middleware, which
        # Channels cannot see through to match "ws/" as a prefix itself.
        routes.append(
            re_path(
                r"^ws/",
                AllowedHostsOriginValidator(
                    TenantWebsocketMiddleware(AuthMiddlewareStack(URLRouter(dashboard_websocket_urlpatterns)))
                ),
            )
        )
    return routes


def warm_up_wanted(role: str, environ: Mapping[str, str]) -> bool:
    """Processes that take calls load the speech models at start-up, not on the first call.

    ``VOICEDESK_WARM_UP=0`` skips it (browser tests, which take no calls).
    """
    return role in ("voice", "all") and environ.get("VOICEDESK_WARM_UP", "1") == "1"


ROLE = role_check(settings.VOICEDESK_ROLE)

if warm_up_wanted(ROLE, os.environ):
    threading.Thread(target=engines_warm_up, name="engines-warm-up", daemon=True).start()

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_routes(ROLE))})
