"""The carrier's voice webhook: signatures, tenant lookup and TwiML."""

from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from calls.models import Call
from calls.transports.twilio.twiml import stream_token_verify

URL = "http://localhost/twilio/voice"


def _post(params: dict[str, str], *, signature: str | None = None):
    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(URL, params)
    return Client(HTTP_HOST="localhost").post("/twilio/voice", params, HTTP_X_TWILIO_SIGNATURE=signature)


def _calls(tenant) -> list[tuple[str, str, str, str]]:
    with tenant_context(tenant):
        return list(Call.objects.values_list("carrier_call_id", "from_number", "to_number", "status"))


def test_known_number_gets_a_stream_with_a_token_and_a_ringing_call(tenant_a) -> None:
    response = _post({"CallSid": "CA123", "From": "+15557654321", "To": "+15550001001", "AccountSid": "AC1"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    root = ElementTree.fromstring(response.content)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "ws://localhost/ws/twilio/stream"
    token = stream.find("./Parameter[@name='token']").get("value")
    assert _calls(tenant_a.tenant) == [("CA123", "+15557654321", "+15550001001", "ringing")]
    grant = stream_token_verify(token)
    with tenant_context(tenant_a.tenant):
        assert (grant.schema_name, grant.call_id) == ("alpha", Call.objects.get().pk)


def test_carrier_retry_does_not_duplicate_the_call(tenant_a) -> None:
    params = {"CallSid": "CA999", "From": "+15557654321", "To": "+15550001001"}
    _post(params)
    _post(params)
    assert len(_calls(tenant_a.tenant)) == 1


def test_bad_signature_is_403_and_records_nothing(tenant_a) -> None:
    response = _post({"CallSid": "CA1", "From": "+15557654321", "To": "+15550001001"}, signature="forged")
    assert response.status_code == 403
    assert _calls(tenant_a.tenant) == []


@pytest.mark.parametrize("to", ["+15559999999", "garbage", ""])
def test_unknown_number_gets_a_polite_goodbye(tenant_a, tenant_b, to: str) -> None:
    response = _post({"CallSid": "CA2", "From": "+15557654321", "To": to})
    root = ElementTree.fromstring(response.content)
    assert response.status_code == 200
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "not in service" in root.find("Say").text
    assert _calls(tenant_a.tenant) == []
    assert _calls(tenant_b.tenant) == []


def test_webhook_is_post_only(db) -> None:
    assert Client(HTTP_HOST="localhost").get("/twilio/voice").status_code == 405
