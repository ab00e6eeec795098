"""Call pages on a tenant's host: call history, a call, analytics."""

from django.urls import URLPattern, URLResolver, path

from calls.views import recording

app_name = "calls"

urlpatterns: list[URLPattern | URLResolver] = [
    path("calls/<int:pk>/recording", recording.call_recording, name="recording"),
]
