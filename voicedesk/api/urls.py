"""Routes of the REST API under ``/api/`` on a tenant's host."""

from django.urls import URLPattern, URLResolver

app_name = "api"

urlpatterns: list[URLPattern | URLResolver] = []
