"""One error format: domain errors become DRF's 400s, every 404 looks the same."""

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from calls.models import FaqEntry
from tickets.services import TicketError
from voicedesk.core.api.csv_export import CsvRenderer
from voicedesk.core.api.exceptions import api_exception_handler


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (TicketError("A closed ticket cannot become open."), 400, {"detail": "A closed ticket cannot become open."}),
        (ValidationError("Nope."), 400, {"detail": "Nope."}),
        (ValidationError({"question": "Required."}), 400, {"question": ["Required."]}),
        (Http404("No Ticket matches the given query."), 404, {"detail": "Not found."}),
        (FaqEntry.DoesNotExist(), 404, {"detail": "Not found."}),
    ],
)
def test_domain_errors_use_the_standard_format(exc: Exception, status: int, body: dict) -> None:
    response = api_exception_handler(exc, {})

    assert (response.status_code, response.data) == (status, body)


def test_unexpected_errors_are_left_to_django() -> None:
    assert api_exception_handler(RuntimeError("bug"), {}) is None


def test_a_failed_csv_download_answers_in_json() -> None:
    request = APIRequestFactory().get("/api/tickets/export.csv")
    request.accepted_renderer = CsvRenderer()
    request.accepted_media_type = "text/csv"

    api_exception_handler(Http404(), {"request": request})

    assert isinstance(request.accepted_renderer, JSONRenderer)
    assert request.accepted_media_type == "application/json"
