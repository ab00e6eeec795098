"""The tenant's API key page."""

from django.urls import URLPattern, URLResolver, path

from tenants import views

app_name = "api_keys"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.api_key_page, name="list"),
    path("<int:pk>/revoke", views.api_key_revoke_view, name="revoke"),
]
