"""The tenant's API key page."""

from django.urls import URLPattern, URLResolver

app_name = "api_keys"

urlpatterns: list[URLPattern | URLResolver] = []
