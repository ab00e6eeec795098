"""Call pages on a tenant's host: call history, a call and its recording."""

from django.urls import URLPattern, URLResolver, path

from calls.views import history, recording

app_name = "calls"

urlpatterns: list[URLPattern | URLResolver] = [
    path("calls/", history.call_list, name="call_list"),
    path("calls/<int:pk>/", history.call_detail, name="detail"),
    path("calls/<int:pk>/recording", recording.call_recording, name="recording"),
]
