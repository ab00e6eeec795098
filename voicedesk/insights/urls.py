"""Pages of the read models on a tenant's host."""

from django.urls import URLPattern, URLResolver, path

from voicedesk.insights import views

app_name = "insights"

urlpatterns: list[URLPattern | URLResolver] = [
    path("analytics/", views.analytics_page, name="analytics"),
]
