import json
import logging

import pytest
import structlog
from django.test import Client

from voicedesk.core.logging import build_logging_config
from voicedesk.core.redaction import pii_mask


def test_json_logs_carry_request_id_tenant_and_call_id(client_a, capsys) -> None:
    logging.config.dictConfig(build_logging_config("json", "INFO"))
    try:
        structlog.contextvars.bind_contextvars(call_id=42)
        structlog.get_logger("test").info("call_event", detail="x")
        structlog.contextvars.clear_contextvars()
        response = client_a.get("/", HTTP_X_REQUEST_ID="req-12345678")
    finally:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    event = next(line for line in lines if line["event"] == "call_event")
    assert (event["call_id"], event["detail"], event["level"]) == (42, "x", "info")
    assert response["X-Request-ID"] == "req-12345678"


def test_request_id_is_generated_when_missing_or_unsafe(db) -> None:
    response = Client().get("/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert len(response["X-Request-ID"]) == 32
    assert response["X-Request-ID"] != "bad id\nwith newline"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call me on 555 201 3344 please", "call me on [phone] please"),
        ("+1 (555) 201-3344", "[phone]"),
        ("+442079460958 or 555.201.3344", "[phone] or [phone]"),
        ("mail jane.doe+work@example.co.uk now", "mail [email] now"),
        ("caller +15550100100 <a@b.io>", "caller [phone] <[email]>"),
        # Not phone numbers: dates, times, short numbers, hex ids, amounts.
        ("2026-12-06T11:01:35Z", "2026-12-06T11:01:35Z"),
        ("ticket T-1234 at 12:30", "ticket T-1234 at 12:30"),
        ("request a1234567b89c", "request a1234567b89c"),
        ("took 1500 ms", "took 1500 ms"),
        ("1234567890123456789", "1234567890123456789"),
    ],
)
def test_pii_mask(text: str, masked: str) -> None:
    assert pii_mask(text) == masked


def test_logs_never_carry_phone_numbers_or_emails_whatever_the_source(capsys) -> None:
    logging.config.dictConfig(build_logging_config("json", "INFO"))
    try:
        structlog.get_logger("test").info(
            "caller_details", number="555 201 3344", nested={"emails": ["jo@example.com"]}, seconds=12
        )
        logging.getLogger("some.library").warning("could not reach +1 555 201 3344 for jo@example.com")
        try:
            raise ValueError("bad number 555-201-3344")
        except ValueError:
            structlog.get_logger("test").exception("failed")
    finally:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    by_event = {line["event"]: line for line in lines}
    assert (by_event["caller_details"]["number"], by_event["caller_details"]["nested"]) == (
        "[phone]",
        {"emails": ["[email]"]},
    )
    assert by_event["caller_details"]["seconds"] == 12
    assert by_event["could not reach [phone] for [email]"]["level"] == "warning"
    assert "ValueError: bad number [phone]" in by_event["failed"]["exception"]
    assert "3344" not in err
    assert "jo@example.com" not in err
