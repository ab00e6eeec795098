"""Request input shared by the API's resources."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request body checked by ``serializer_class``; invalid input raises a 400 with field errors."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
