"""The carrier's voice webhook: signatures, tenant lookup and TwiML."""

from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from calls.models import Call
from calls.transports.twilio.twiml import stream_token_verify
from tickets.models import Callback
from tickets.services import ticket_create_from_call

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
    # When the stream ends, the carrier asks what next.
    assert root.find("./Connect").get("action") == "/twilio/stream-ended"
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


def _signed(path: str, params: dict[str, str], *, signature: str | None = None):
    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(f"http://localhost{path}", params)
    return Client(HTTP_HOST="localhost").post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


CALL_PARAMS = {"CallSid": "CA42", "From": "+15557654321", "To": "+15550001001"}


def _ended_call(tenant_a, *, transfer: bool, django_capture_on_commit_callbacks) -> Call:
    from calls.services import call_answer, call_finish, call_start, call_transfer_update

    call = call_start(tenant=tenant_a.tenant, carrier="twilio", carrier_call_id="CA42",
                      from_number="+15557654321", to_number="+15550001001")  # fmt: skip
    with tenant_context(tenant_a.tenant), django_capture_on_commit_callbacks(execute=True):
        call_answer(call_id=call.pk, stream_id="MZ1")
        if transfer:
            captured = {"fields": {"callback_number": "+15557654321"}, "reason": "Boiler broken", "wants_human": True}
            call_transfer_update(call_id=call.pk, status="dialing", to="+15550100199", captured=captured)
        call_finish(call_id=call.pk, end_reason="transferred" if transfer else "agent_hangup", outcome={},
                    completed=True)  # fmt: skip
        return Call.objects.get(pk=call.pk)


def test_a_stream_that_ends_without_a_transfer_hangs_up(tenant_a, django_capture_on_commit_callbacks) -> None:
    _ended_call(tenant_a, transfer=False, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    response = _signed("/twilio/stream-ended", CALL_PARAMS)
    assert response.status_code == 200
    assert [child.tag for child in ElementTree.fromstring(response.content)] == ["Hangup"]


def test_the_stream_of_a_call_being_transferred_ends_in_a_dial(tenant_a, django_capture_on_commit_callbacks) -> None:
    _ended_call(tenant_a, transfer=True, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    response = _signed("/twilio/stream-ended", CALL_PARAMS)
    dial = ElementTree.fromstring(response.content).find("./Dial")
    assert (dial.get("action"), dial.get("answerOnBridge"), dial.findtext("./Number")) == (
        "/twilio/dial-ended", "true", "+15550100199",
    )  # fmt: skip


def test_the_voice_webhook_asks_back_when_the_stream_ends(tenant_a) -> None:
    response = _post({"CallSid": "CA7", "From": "+15557654321", "To": "+15550001001"})
    assert ElementTree.fromstring(response.content).find("./Connect").get("action") == "/twilio/stream-ended"


@pytest.mark.parametrize("path", ["/twilio/stream-ended", "/twilio/dial-ended"])
def test_unsigned_transfer_callbacks_are_refused_and_change_nothing(
    tenant_a, django_capture_on_commit_callbacks, path: str
) -> None:
    _ended_call(tenant_a, transfer=True, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    params = {**CALL_PARAMS, "DialCallStatus": "busy"}
    assert _signed(path, params, signature="forged").status_code == 403
    with tenant_context(tenant_a.tenant):
        from tickets.models import Callback

        assert Call.objects.get().transfer_status == "dialing"
        assert Callback.objects.count() == 0


def test_a_dial_report_with_an_unknown_status_is_refused(tenant_a, django_capture_on_commit_callbacks) -> None:
    _ended_call(tenant_a, transfer=True, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    response = _signed("/twilio/dial-ended", {**CALL_PARAMS, "DialCallStatus": "ringing-forever"})
    assert response.status_code == 400
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().transfer_status == "dialing"


def test_a_dial_report_for_another_business_or_no_transfer_changes_nothing(
    tenant_a, tenant_b, django_capture_on_commit_callbacks
) -> None:
    _ended_call(tenant_a, transfer=False, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    # The call SID is alpha's, but the dialled number is beta's: beta has no such call.
    other = _signed("/twilio/dial-ended", {**CALL_PARAMS, "To": "+15550001002", "DialCallStatus": "busy"})
    no_transfer = _signed("/twilio/dial-ended", {**CALL_PARAMS, "DialCallStatus": "busy"})
    for response in (other, no_transfer):
        assert response.status_code == 200
        assert [child.tag for child in ElementTree.fromstring(response.content)] == ["Hangup"]
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().transfer_status == ""


# When the stream ends: hang up, offer it to another voice process, or say the lines are busy.

ENDED_URL = "http://localhost/twilio/stream-ended"
BUSY = (
    "Thank you for calling Alpha Plumbing. All our lines are busy right now. "
    "We have your number, and someone will call you back as soon as possible. Goodbye."
)


def _ended(params: dict[str, str], *, signature: str | None = None):
    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(ENDED_URL, params)
    return Client(HTTP_HOST="localhost").post("/twilio/stream-ended", params, HTTP_X_TWILIO_SIGNATURE=signature)


def _tags(response) -> list[str]:
    assert (response.status_code, response["Content-Type"]) == (200, "text/xml")
    return [child.tag for child in ElementTree.fromstring(response.content)]


CALL = {"CallSid": "CA500", "From": "+15557654321", "To": "+15550001001"}


def test_a_call_whose_stream_was_answered_hangs_up(tenant_a) -> None:
    _post(CALL)
    with tenant_context(tenant_a.tenant):
        Call.objects.update(status=Call.Status.COMPLETED)

    assert _tags(_ended(CALL)) == ["Hangup"]
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("status", "end_reason", "stream_retries")) == [("completed", "", 0)]


def test_a_stream_no_process_took_is_offered_to_each_retry_url_then_the_caller_hears_the_lines_are_busy(
    tenant_a, settings
) -> None:
    settings.TWILIO_STREAM_RETRY_URLS = [
        "wss://voice-2.example.com/ws/twilio/stream",
        "wss://voice-3.example.com/ws/twilio/stream",
    ]
    _post(CALL)

    offered = []
    for _ in range(2):
        root = ElementTree.fromstring(_ended(CALL).content)
        stream = root.find("./Connect/Stream")
        offered.append(stream.get("url"))
        assert root.find("./Connect").get("action") == "/twilio/stream-ended"
        grant = stream_token_verify(stream.find("./Parameter[@name='token']").get("value"))
        with tenant_context(tenant_a.tenant):
            assert (grant.schema_name, grant.call_id) == ("alpha", Call.objects.get().pk)
    assert offered == settings.TWILIO_STREAM_RETRY_URLS

    last = _ended(CALL)
    root = ElementTree.fromstring(last.content)
    assert _tags(last) == ["Say", "Hangup"]
    assert root.find("Say").text == BUSY
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get()
        assert (call.status, call.end_reason, call.stream_retries, call.answered_at) == (
            "abandoned",
            "turned_away:no_voice_capacity",
            2,
            None,
        )
        ticket = ticket_create_from_call(call_id=call.pk)  # what the call-finished hook's worker runs
        assert (ticket.subject, ticket.callback_number) == ("Missed call: no line was free to answer", "+15557654321")
        assert list(Callback.objects.values_list("ticket_id", "phone")) == [(ticket.pk, "+15557654321")]

    # The carrier asking again gets the same answer, and the call is not finished twice.
    assert ElementTree.fromstring(_ended(CALL).content).find("Say").text == BUSY
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().stream_retries == 2


def test_without_retry_urls_a_refused_stream_hears_the_lines_are_busy_at_once(tenant_a) -> None:
    _post(CALL)
    assert _tags(_ended(CALL)) == ["Say", "Hangup"]
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().end_reason == "turned_away:no_voice_capacity"


def test_stream_ended_needs_the_carriers_signature_and_a_known_call(tenant_a, tenant_b) -> None:
    _post(CALL)

    assert _ended(CALL, signature="forged").status_code == 403
    assert _tags(_ended(CALL | {"CallSid": "CA-unknown"})) == ["Hangup"]
    # Another business's number does not reach this business's call.
    assert _tags(_ended(CALL | {"To": "+15550001002"})) == ["Hangup"]
    assert _ended(CALL | {"CallSid": "bad sid!"}).status_code == 400
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("status", "end_reason", "stream_retries")) == [("ringing", "", 0)]


def test_a_call_being_transferred_is_dialled_through_even_with_retry_urls_set(
    tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    # One <Connect action> serves both cases: a transfer is put through, never offered to another process.
    settings.TWILIO_STREAM_RETRY_URLS = ["wss://voice-2.example.com/ws/twilio/stream"]
    _ended_call(tenant_a, transfer=True, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)

    response = _signed("/twilio/stream-ended", CALL_PARAMS)

    assert _tags(response) == ["Dial"]
    dial = ElementTree.fromstring(response.content).find("./Dial")
    assert (dial.get("action"), dial.get("timeout"), dial.findtext("./Number")) == (
        "/twilio/dial-ended", "25", "+15550100199",
    )  # fmt: skip
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get()
        assert (call.transfer_status, call.end_reason, call.stream_retries) == ("dialing", "transferred", 0)
