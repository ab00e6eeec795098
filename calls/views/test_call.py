"""The test call page: an admin talks to the business's agent through the microphone."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from calls.transports import TRANSPORTS
from tenants.models import Membership
from tenants.permissions import role_required


@require_GET
@role_required(Membership.Role.ADMIN)
def test_call_page(request: HttpRequest) -> HttpResponse:
    """The page only carries the socket's address; the call itself runs over the websocket."""
    browser = TRANSPORTS["browser"]
    context = {"websocket_path": f"/{browser.websocket_path}", "sample_rate": browser.audio.sample_rate}
    return render(request, "calls/test_call.html", context)
