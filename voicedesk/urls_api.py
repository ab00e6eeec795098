"""Routes of the REST API under ``/api/`` on a tenant's host."""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from calls.api import AgentConfigView, CallExportView, CallViewSet, FaqEntryViewSet
from tenants.models import Membership
from tenants.permissions import role_required
from tickets.api import CallbackViewSet, TicketExportView, TicketViewSet
from voicedesk.web.api import schema  # noqa: F401  (registers the API-key scheme with the schema)

app_name = "api"

router = SimpleRouter(use_regex_path=False)
router.register("tickets", TicketViewSet, basename="ticket")
router.register("callbacks", CallbackViewSet, basename="callback")
router.register("calls", CallViewSet, basename="call")
router.register("faq-entries", FaqEntryViewSet, basename="faq-entry")

urlpatterns: list[URLPattern | URLResolver] = [
    # Before the router, so "export.csv" is never read as a ticket id.
    path("tickets/export.csv", TicketExportView.as_view(), name="ticket-export"),
    path("calls/export.csv", CallExportView.as_view(), name="call-export"),
    path("agent-config/", AgentConfigView.as_view(), name="agent-config"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs page is for people: anonymous visitors sign in first, non-members get 404.
    path(
        "docs/",
        role_required(Membership.Role.AGENT)(SpectacularSwaggerView.as_view(url_name="api:schema")),
        name="docs",
    ),
    *router.urls,
]
