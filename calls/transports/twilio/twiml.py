"""TwiML documents and the signed token that ties a media stream to its call."""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from calls.models import Call
from tenants.models import Tenant

# Where the carrier opens the media websocket; the webhook answers with it.
STREAM_PATH = "ws/twilio/stream"
# Where the carrier asks what next once the media stream has ended (``<Connect action>``):
# put through a caller the agent is transferring, hang up after a call, or try another
# voice process when the stream was refused; and how a ``<Dial>`` to a person ended
# (``<Dial action>``). Relative: Twilio resolves them against the voice webhook's URL,
# so they reach the same host.
STREAM_ENDED_PATH = "/twilio/stream-ended"
DIAL_ENDED_PATH = "/twilio/dial-ended"
# How long the business's phone rings before the transfer counts as unanswered.
DIAL_TIMEOUT_S = 25
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
    """Connect the call to the media stream at ``url``; when the stream ends the carrier asks ``STREAM_ENDED_PATH``."""
    response = VoiceResponse()
    connect = Connect(action=STREAM_ENDED_PATH)
    stream = connect.stream(url=url)
    stream.parameter(name="token", value=stream_token_issue(tenant=tenant, call=call))
    response.append(connect)
    return str(response)


def dial_person(number: str) -> str:
    """Put the caller through to ``number``; Twilio reports how it went to ``DIAL_ENDED_PATH``.

    The agent has already told the caller; ``answerOnBridge`` keeps them
    hearing the ring until someone answers.
    """
    response = VoiceResponse()
    dial = Dial(action=DIAL_ENDED_PATH, timeout=DIAL_TIMEOUT_S, answer_on_bridge=True)
    dial.number(number)
    response.append(dial)
    return str(response)


# What a caller whose transfer failed hears before the call ends (the callback is queued).
TRANSFER_FAILED_TEXT = {
    "busy": "I'm sorry, the line is busy right now.",
    "no_answer": "I'm sorry, nobody could answer just now.",
    "failed": "I'm sorry, I couldn't put you through.",
}


def transfer_failed(status: str) -> str:
    """The caller is told the transfer failed and that the team will call back as a priority; then hang up.

    On Twilio the agent's media stream ended when the ``<Dial>`` began, and
    the ticket already holds the request and the caller's number, so the
    call closes with a clear promise instead of starting a second agent session.
    """
    response = VoiceResponse()
    lead = TRANSFER_FAILED_TEXT.get(status, TRANSFER_FAILED_TEXT["failed"])
    response.say(f"{lead} Someone from the team will call you back as a priority. Thank you for calling. Goodbye.")
    response.hangup()
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
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
