"""The tenant's settings pages: the agent's configuration and its FAQ."""

from django.urls import URLPattern, URLResolver, path

from calls.views import settings as views

app_name = "settings"

urlpatterns: list[URLPattern | URLResolver] = [
    path("agent/", views.agent_settings, name="agent"),
    path("agent/models/", views.dialogue_models, name="dialogue_models"),
    path(
        "agent/category-examples/<int:pk>/delete/",
        views.category_example_delete,
        name="category_example_delete",
    ),
    path("faq/", views.faq_list, name="faq"),
    path("faq/new/", views.faq_create, name="faq_create"),
    path("faq/try/", views.faq_try, name="faq_try"),
    path("faq/<int:pk>/", views.faq_entry, name="faq_entry"),
    path("faq/<int:pk>/edit/", views.faq_edit, name="faq_edit"),
    path("faq/<int:pk>/active/", views.faq_active, name="faq_active"),
    path("faq/<int:pk>/delete/", views.faq_delete, name="faq_delete"),
]
