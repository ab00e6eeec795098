"""Help desk pages on a tenant's host: inbox, tickets, callback queue, unanswered questions."""

from django.urls import URLPattern, URLResolver

app_name = "tickets"

urlpatterns: list[URLPattern | URLResolver] = []
