"""Every registered transport's routes: its webhooks (public host) and its media websocket (signed stream token)."""

from django.urls import URLPattern, URLResolver, path

from calls.transports import TRANSPORTS

carrier_websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path(transport.websocket_path, transport.consumer.as_asgi())
    for transport in TRANSPORTS.values()
    if transport.consumer is not None
]
carrier_http_urlpatterns: list[URLPattern | URLResolver] = [
    url for transport in TRANSPORTS.values() for url in transport.http_urls
]
