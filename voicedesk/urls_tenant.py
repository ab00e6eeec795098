"""URLs served on a tenant's own host (``<slug>.<base domain>``)."""

from django.urls import include, path

from voicedesk.insights import views as insights_views
from voicedesk.web.admin_site import tenant_admin_site

urlpatterns = [
    path("", insights_views.dashboard, name="dashboard"),
    path("accounts/", include("allauth.urls")),
    path("", include("tickets.urls")),
    path("", include("calls.urls")),
    path("", include("voicedesk.insights.urls")),
    path("settings/", include("calls.urls_settings")),
    path("settings/api-keys/", include("tenants.urls")),
    path("settings/numbers/", include("tenants.urls_numbers")),
    path("billing/", include("billing.urls")),
    path("api/", include("voicedesk.urls_api")),
    path("admin/", tenant_admin_site.urls),
]

handler404 = "voicedesk.views.page_not_found"
handler500 = "voicedesk.views.server_error"
