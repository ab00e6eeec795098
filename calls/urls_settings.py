"""The tenant's settings pages: the agent's configuration and its FAQ."""

from django.urls import URLPattern, URLResolver, path

from calls.views import settings as views

app_name = "settings"

urlpatterns: list[URLPattern | URLResolver] = [
    path("agent/", views.agent_settings, name="agent"),
    path("agent/models/", views.dialogue_models, name="dialogue_models"),
    path("agent/voice/", views.agent_voice, name="agent_voice"),
    path("agent/voice/preview/", views.agent_voice_preview, name="agent_voice_preview"),
    path(
        "agent/category-examples/<int:pk>/delete/",
        views.category_example_delete,
        name="category_example_delete",
    ),
    path("provider-keys/", views.provider_keys, name="provider_keys"),
    path("provider-keys/post-call/", views.post_call_transcription, name="post_call_transcription"),
    path("provider-keys/<str:provider>/delete/", views.provider_key_delete, name="provider_key_delete"),
    path("provider-keys/<str:provider>/test/", views.provider_key_test, name="provider_key_test"),
    path("faq/", views.faq_list, name="faq"),
    path("faq/new/", views.faq_create, name="faq_create"),
    path("faq/try/", views.faq_try, name="faq_try"),
    path("faq/<int:pk>/", views.faq_entry, name="faq_entry"),
    path("faq/<int:pk>/edit/", views.faq_edit, name="faq_edit"),
    path("faq/<int:pk>/active/", views.faq_active, name="faq_active"),
    path("faq/<int:pk>/delete/", views.faq_delete, name="faq_delete"),
]
