"""The tenant's settings pages: the agent's configuration and its FAQ."""

from django.urls import URLPattern, URLResolver

app_name = "settings"

urlpatterns: list[URLPattern | URLResolver] = []
