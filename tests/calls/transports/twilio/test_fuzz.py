"""Malformed carrier input, generated: the voice webhook and the Media Streams socket never fail with an error.

The webhook answers every signed request with TwiML or a 4xx, never a 5xx.
The media socket closes cleanly (4008 for a protocol error) whatever
arrives, in whatever order, and a call that had started is always finished
and kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from calls.models import Call
from calls.services import call_start
from calls.transports.twilio.consumer import TwilioMediaStreamConsumer
from calls.transports.twilio.twiml import stream_token_issue

URL = "http://localhost/twilio/voice"
ALPHA_NUMBER = "+15550001001"

# -- The voice webhook -------------------------------------------------------------------

TWILIO_KEYS = ("CallSid", "From", "To", "AccountSid", "CallStatus", "Direction", "ApiVersion")
any_text = st.text(max_size=80)
webhook_params = st.dictionaries(
    keys=st.sampled_from(TWILIO_KEYS) | st.text(min_size=1, max_size=20),
    values=any_text | st.sampled_from([ALPHA_NUMBER, "CA" + "a" * 32, "+15557654321", ""]),
    max_size=8,
)


def _post(params: dict[str, str], signature: str) -> Any:
    """POST the webhook form-encoded, as Twilio does."""
    return Client(HTTP_HOST="localhost").post(
        "/twilio/voice",
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=webhook_params, to_alpha=st.booleans())
@example(params={"CallSid": "CA" + "a" * 80, "From": "+15557654321"}, to_alpha=True)
@example(params={"CallSid": "CA\x00", "From": "+1555\x00"}, to_alpha=True)
@example(params={"CallSid": "CA" + "b" * 32, "From": "\x00" * 40}, to_alpha=True)
def test_the_voice_webhook_answers_any_signed_request_without_a_server_error(
    tenant_a, params: dict[str, str], to_alpha: bool
) -> None:
    if to_alpha:
        params = {**params, "To": ALPHA_NUMBER}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(URL, params)
    with tenant_context(tenant_a.tenant):
        before = Call.objects.count()

    response = _post(params, signature)

    assert response.status_code in (200, 400), response.content[:200]
    with tenant_context(tenant_a.tenant):
        made = Call.objects.count() - before
    if response.status_code == 200:
        ElementTree.fromstring(response.content)  # well-formed TwiML
    else:
        assert made == 0


@hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=webhook_params, signature=any_text)
def test_the_voice_webhook_refuses_any_unsigned_request_and_records_nothing(
    tenant_a, params: dict[str, str], signature: str
) -> None:
    with tenant_context(tenant_a.tenant):
        before = list(Call.objects.values_list("pk", flat=True))
    response = _post({**params, "To": ALPHA_NUMBER}, signature)
    assert response.status_code == 403
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("pk", flat=True)) == before


# -- The Media Streams socket --------------------------------------------------------------


def _media(payload: str) -> dict[str, Any]:
    return {"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": payload}}


SILENCE = base64.b64encode(b"\xff" * 160).decode()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
# One step of what a broken or hostile carrier might send (a "flood" is 400 frames at once).
steps = st.one_of(
    st.just(_media(SILENCE)),
    st.text(max_size=40).map(_media),  # not base64, or base64 of anything
    st.binary(min_size=1601, max_size=4000).map(lambda b: _media(base64.b64encode(b).decode())),  # huge frame
    st.just({"event": "media", "streamSid": "MZ1", "media": {"payload": 5}}),
    st.just({"event": "media", "streamSid": "MZ1"}),
    st.just({"event": "mark", "mark": {"name": "m1"}}),
    st.just({"event": "mark"}),
    st.sampled_from("0123456789*#AX").map(lambda d: {"event": "dtmf", "dtmf": {"digit": d}}),
    st.just({"event": "dtmf", "dtmf": {}}),
    st.just({"event": "start", "start": {}}),
    st.just({"event": "stop"}),
    st.text(max_size=12).map(lambda e: {"event": e}),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    st.just("not json"),
    st.just("[1, 2]"),
    st.just("x" * 20_000),
    st.just(b"\x00binary"),
    st.just("flood"),
)


def _start(token: str, call_sid: str) -> dict[str, Any]:
    return {
        "event": "start",
        "streamSid": "MZ1",
        "start": {
            "streamSid": "MZ1",
            "callSid": call_sid,
            "customParameters": {"token": token},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }


async def _send(communicator: WebsocketCommunicator, step: Any) -> None:
    if step == "flood":
        for _ in range(400):
            await communicator.send_to(text_data=json.dumps(_media(SILENCE)))
    elif isinstance(step, bytes):
        await communicator.send_to(bytes_data=step)
    elif isinstance(step, str):
        await communicator.send_to(text_data=step)
    else:
        await communicator.send_to(text_data=json.dumps(step))


async def _closed(communicator: WebsocketCommunicator) -> dict[str, Any] | None:
    """The close the consumer sent, if it did; every other output is agent audio or a mark."""
    while not communicator.output_queue.empty():
        output = await communicator.receive_output()
        if output["type"] == "websocket.close":
            return output
        assert output["type"] == "websocket.send"
    return None


async def _stream(token: str, call_sid: str, started: bool, script: list[Any]) -> dict[str, Any] | None:
    communicator = WebsocketCommunicator(TwilioMediaStreamConsumer.as_asgi(), "/ws/twilio/stream")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    if started:
        await communicator.send_to(text_data=json.dumps(_start(token, call_sid)))
    closed = None
    for step in script:
        await _send(communicator, step)
        await asyncio.sleep(0.01)
        if closed := await _closed(communicator):
            break
    # Messages queue behind the start (the session is being built): give a close time to come.
    deadline = asyncio.get_running_loop().time() + 1.0
    while closed is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        closed = await _closed(communicator)
    # The socket goes away either way (the server closed it, or the carrier drops it); the
    # consumer must then end without an error (``disconnect`` raises the application's own).
    await communicator.disconnect(code=closed.get("code", 1000) if closed else 1001, timeout=30)
    return closed


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(started=st.booleans(), script=st.lists(steps, max_size=6))
def test_the_media_socket_closes_cleanly_on_any_input_and_keeps_the_call(
    tenant_a, started: bool, script: list[Any]
) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    call = call_start(
        tenant=tenant_a.tenant,
        carrier="twilio",
        carrier_call_id=call_sid,
        from_number="+15557654321",
        to_number=ALPHA_NUMBER,
    )
    token = stream_token_issue(tenant=tenant_a.tenant, call=call)

    closed = asyncio.run(_stream(token, call_sid, started, script))

    assert closed in (None, {"type": "websocket.close", "code": 4008}, {"type": "websocket.close"})
    with tenant_context(tenant_a.tenant):
        stored = Call.objects.get(pk=call.pk)
    if started:
        # Started, so finished whatever came after: ended, with its outcome and recording.
        assert stored.ended_at is not None
        assert stored.status == "abandoned"
        assert stored.end_reason in ("caller_hangup", "protocol_error", "socket_closed")
        assert "summary" in stored.captured
        assert stored.recording.name.endswith(f"/call-{call.pk}.wav")
    else:
        # Nothing valid started it: the call is as the webhook left it.
        assert (stored.status, stored.ended_at, stored.answered_at) == ("ringing", None, None)
