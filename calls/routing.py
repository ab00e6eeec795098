"""Carrier media websockets. They authenticate with a signed stream token."""

from django.urls import URLPattern, URLResolver, path

from calls.consumers import TwilioMediaStreamConsumer

carrier_websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/twilio/stream", TwilioMediaStreamConsumer.as_asgi()),
]
