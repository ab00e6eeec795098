"""The tenant's phone number page."""

from django.urls import URLPattern, URLResolver, path

from tenants import views

app_name = "phone_numbers"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.phone_number_page, name="list"),
    path("<int:number_id>/remove/", views.phone_number_remove_view, name="remove"),
]
