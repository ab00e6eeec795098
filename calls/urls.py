"""Call pages on a tenant's host: call history, a call, analytics."""

from django.urls import URLPattern, URLResolver

app_name = "calls"

urlpatterns: list[URLPattern | URLResolver] = []
