"""Dashboard websockets (live updates) are added here by the help-desk views."""

from django.urls import URLPattern, URLResolver

dashboard_websocket_urlpatterns: list[URLPattern | URLResolver] = []
