"""Request bodies checked by a serializer before a view acts on them."""

import ast
from pathlib import Path

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from voicedesk.core.api.params import validated


class _NoteInput(serializers.Serializer):
    body = serializers.CharField(max_length=10)
    pinned = serializers.BooleanField(required=False, default=False)


def _request(data: dict) -> Request:
    from rest_framework.parsers import JSONParser

    return Request(APIRequestFactory().post("/", data, format="json"), parsers=[JSONParser()])


def test_valid_input_comes_back_as_a_plain_dict_with_defaults() -> None:
    data = validated(_NoteInput, _request({"body": "Rang out", "extra": "ignored"}))

    assert data == {"body": "Rang out", "pinned": False}
    assert type(data) is dict


def test_invalid_input_raises_a_400_with_the_field_errors() -> None:
    with pytest.raises(ValidationError) as raised:
        validated(_NoteInput, _request({"body": "far too long a note"}))

    assert raised.value.status_code == 400
    assert raised.value.detail == {"body": ["Ensure this field has no more than 10 characters."]}


@pytest.mark.parametrize("module", ["calls/api.py", "tickets/api.py"])
def test_the_api_modules_share_helpers_through_voicedesk_api_not_each_other(module: str) -> None:
    # The calls API once borrowed these helpers from the tickets API, tying one resource to the other.
    tree = ast.parse((Path(__file__).resolve().parents[3] / module).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert {"voicedesk.core.api.params", "voicedesk.core.api.csv_export"} <= imported
    assert imported & {"tickets.api", "calls.api"} == set()
