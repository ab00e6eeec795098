import json
import logging

import structlog
from django.test import Client

from voicedesk.logging import build_logging_config


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
