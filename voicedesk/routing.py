"""Dashboard websockets (live updates), mounted under ``ws/`` by ``voicedesk.asgi``.

Everything here is behind the origin check, the tenant of the Host header and
the session: consumers find ``scope["tenant"]`` and ``scope["user"]`` set.
"""

from django.urls import URLPattern, URLResolver, path

from tickets.consumers import HelpdeskConsumer

dashboard_websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("helpdesk/", HelpdeskConsumer.as_asgi(), name="ws-helpdesk"),
]
