"""Errors reach Sentry (a loopback server speaking Sentry's envelope protocol) with numbers and emails masked."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk

from voicedesk.core.sentry import sentry_event_scrub, sentry_init


@pytest.fixture
def sentry_server() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/42", received
    server.shutdown()
    sentry_sdk.init(dsn=None)  # reporting off again for the rest of the run


def test_scrub_masks_numbers_and_emails_but_keeps_identifiers() -> None:
    event = {"event_id": "5550100100aa", "message": "call 555 201 3344", "extra": {"who": ["jo@example.com"]}}
    assert sentry_event_scrub(event, {}) == {
        "event_id": "5550100100aa",
        "message": "call [phone]",
        "extra": {"who": ["[email]"]},
    }


def test_an_error_is_reported_with_the_callers_details_masked(sentry_server) -> None:
    dsn, received = sentry_server
    sentry_init(dsn=dsn, environment="test", traces_sample_rate=0.0)
    try:
        raise ValueError("could not reach 555 201 3344 or jo@example.com")
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)

    assert len(received) == 1
    items = [json.loads(line) for line in received[0].splitlines() if line.strip().startswith(b"{")]
    event = next(item for item in items if "exception" in item)
    assert event["exception"]["values"][0]["value"] == "could not reach [phone] or [email]"
    assert event["environment"] == "test"
    assert b"3344" not in received[0]
