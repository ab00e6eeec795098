"""Carrier media websockets, one per registered transport. They authenticate with a signed stream token."""

from django.urls import URLPattern, URLResolver, path

from calls.transports import TRANSPORTS

carrier_websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path(transport.websocket_path, transport.consumer.as_asgi()) for transport in TRANSPORTS.values()
]
