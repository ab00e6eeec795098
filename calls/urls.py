"""Call pages on a tenant's host: call history, a call and its recording, the test call."""

from django.urls import URLPattern, URLResolver, path

from calls.views import history, recording, test_call

app_name = "calls"

urlpatterns: list[URLPattern | URLResolver] = [
    path("calls/", history.call_list, name="call_list"),
    path("calls/test/", test_call.test_call_page, name="test_call"),
    path("calls/<int:pk>/", history.call_detail, name="detail"),
    path("calls/<int:pk>/recording", recording.call_recording, name="recording"),
]
