"""One error format for the whole API: DRF's (``{"detail": ...}``, or field → messages)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from voicedesk.core.api.csv_export import CsvRenderer
from voicedesk.core.errors import DomainError


class BadRequest(exceptions.APIException):
    """A request the domain refuses; the message says why, for the person who asked."""

    status_code = 400
    default_detail = "This request cannot be carried out."
    default_code = "invalid"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        exc = BadRequest(str(exc))
    elif isinstance(exc, DjangoValidationError):
        exc = (
            exceptions.ValidationError(exc.message_dict)
            if hasattr(exc, "error_dict")
            else BadRequest(" ".join(exc.messages))
        )
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        # The same body whether the row is missing or belongs to someone else.
        exc = exceptions.NotFound()
    request = context.get("request")
    if request is not None and isinstance(getattr(request, "accepted_renderer", None), CsvRenderer):
        # A CSV download that fails answers with the usual JSON error.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return exception_handler(exc, context)
