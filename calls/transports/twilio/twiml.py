"""TwiML documents and the signed token that ties a media stream to its call."""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from twilio.twiml.voice_response import Connect, VoiceResponse

from calls.models import Call
from tenants.models import Tenant

# Where the carrier opens the media websocket; the webhook answers with it.
STREAM_PATH = "ws/twilio/stream"
_TOKEN_SALT = "calls.twilio.stream"  # noqa: S105 - a signing namespace, not a secret
# The carrier connects within seconds of our answer; a stale token is refused.
STREAM_TOKEN_MAX_AGE_S = 300


@dataclass(frozen=True, slots=True)
class StreamGrant:
    schema_name: str
    call_id: int


def stream_token_issue(*, tenant: Tenant, call: Call) -> str:
    return signing.dumps({"s": tenant.schema_name, "c": call.pk}, salt=_TOKEN_SALT, compress=True)


def stream_token_verify(token: str) -> StreamGrant:
    """Return the grant in ``token``; raise ``signing.BadSignature`` when forged or stale."""
    data = signing.loads(token, salt=_TOKEN_SALT, max_age=STREAM_TOKEN_MAX_AGE_S)
    return StreamGrant(schema_name=str(data["s"]), call_id=int(data["c"]))


def connect_stream(url: str, *, tenant: Tenant, call: Call) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    stream.parameter(name="token", value=stream_token_issue(tenant=tenant, call=call))
    response.append(connect)
    return str(response)


def unknown_number() -> str:
    response = VoiceResponse()
    response.say("Sorry, the number you have called is not in service. Goodbye.")
    response.hangup()
    return str(response)


def turned_away_text(*, business_name: str, busy: bool, caller_known: bool) -> str:
    """What a caller the receptionist does not take hears (every transport says the same)."""
    if busy:
        first = f"Thank you for calling {business_name}. All our lines are busy right now."
    else:
        first = f"Thank you for calling {business_name}. We are not taking calls through this line right now."
    then = (
        "We have your number, and someone will call you back as soon as possible. Goodbye."
        if caller_known
        else "Please call again later. Goodbye."
    )
    return f"{first} {then}"


def turned_away(*, business_name: str, busy: bool, caller_known: bool) -> str:
    """A short, polite message for a call the receptionist does not take, then hang up.

    ``busy``: every line of the plan is in use; otherwise the business is not
    taking calls through this line. The call's ticket holds the caller's number.
    """
    response = VoiceResponse()
    response.say(turned_away_text(business_name=business_name, busy=busy, caller_known=caller_known))
    response.hangup()
    return str(response)
