"""Every registered transport's routes: its webhooks (public host) and its media websocket.

A carrier's websocket authenticates each stream itself (a signed token); a
transport used from our own pages gets the dashboards' checks first.
"""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import URLPattern, URLResolver, path

from calls.transports import TRANSPORTS, Transport
from calls.views.webhooks import post_call_transcript_webhook
from voicedesk.web.channels_tenancy import TenantWebsocketMiddleware


def _websocket_app(transport: Transport, consumer: type[AsyncWebsocketConsumer]) -> Any:
    app = consumer.as_asgi()
    if transport.session_auth:
        # As for the dashboards' sockets: an allowed origin, the tenant of the Host header, the session's user.
        app = AllowedHostsOriginValidator(TenantWebsocketMiddleware(AuthMiddlewareStack(app)))
    return app


carrier_websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path(transport.websocket_path, _websocket_app(transport, transport.consumer))
    for transport in TRANSPORTS.values()
    if transport.consumer is not None
]
carrier_http_urlpatterns: list[URLPattern | URLResolver] = [
    url for transport in TRANSPORTS.values() for url in transport.http_urls
]

# Cloud speech vendors' webhooks for a tenant's call (the public host: the schema is in the path).
provider_http_urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "hooks/assemblyai/<str:schema>/<int:call_id>",
        post_call_transcript_webhook,
        name="post-call-transcript-webhook",
    ),
]
