"""ASGI entry point: HTTP through Django, websockets through Channels.

The carrier's media stream is not a browser, so it skips the origin check and
authenticates with a signed token instead; dashboard sockets get the full
origin, session and tenant checks.
"""

import os

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
from django.urls import re_path  # noqa: E402

from calls.routing import carrier_websocket_urlpatterns  # noqa: E402
from voicedesk.routing import dashboard_websocket_urlpatterns  # noqa: E402
from voicedesk.web.channels_tenancy import TenantWebsocketMiddleware  # noqa: E402

if os.environ.get("VOICEDESK_WARM_UP", "1") == "1":
    import threading

    from calls.pipeline.factory import engines_warm_up

    threading.Thread(target=engines_warm_up, name="engines-warm-up", daemon=True).start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                *carrier_websocket_urlpatterns,
                # A prefix: the routes inside are wrapped in middleware, which
                # Channels cannot see through to match "ws/" as a prefix itself.
                re_path(
                    r"^ws/",
                    AllowedHostsOriginValidator(
                        TenantWebsocketMiddleware(AuthMiddlewareStack(URLRouter(dashboard_websocket_urlpatterns)))
                    ),
                ),
            ]
        ),
    }
)
