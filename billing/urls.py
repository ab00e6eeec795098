"""The owner's billing page on the tenant host."""

from django.urls import URLPattern, URLResolver, path

from billing import views

app_name = "billing"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.billing_page, name="page"),
    path("checkout", views.billing_checkout, name="checkout"),
    path("portal", views.billing_portal, name="portal"),
]
