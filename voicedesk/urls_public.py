"""URLs of the public site: sign-up, login, the owner's admin."""

from django.contrib import admin
from django.urls import include, path

from billing import views as billing_views
from calls.routing import carrier_http_urlpatterns, provider_http_urlpatterns
from tenants import views as tenant_views

urlpatterns = [
    path("", tenant_views.home, name="home"),
    path("business/subdomain", tenant_views.business_signup_subdomain, name="business-signup-subdomain"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # Each transport's webhooks (calls.transports): adding a carrier adds no line here.
    *carrier_http_urlpatterns,
    *provider_http_urlpatterns,
    path("stripe/webhook", billing_views.stripe_webhook, name="stripe-webhook"),
    path("owner/billing/", billing_views.billing_overview_page, name="owner-billing"),
]

handler404 = "voicedesk.views.page_not_found"
handler500 = "voicedesk.views.server_error"
