"""Warm transfer on Twilio: the media stream hands the caller to ``<Dial>``, whose action reports how it went.

A whole call through the Media Streams consumer and the real session
(offline speech): the caller asks for a person, the agent says so, the
ticket is written and the stream ends; Twilio then asks the stream-ended
webhook what next (a ``<Dial>`` to the business's number) and reports the
dial to the dial-ended webhook. Each outcome ends with the right ticket and
callback.
"""

from __future__ import annotations

import asyncio
import base64
import json
from xml.etree import ElementTree

import numpy as np
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from calls.audio import mulaw_encode, resample
from calls.models import AgentConfig, Call
from calls.services import call_start
from calls.transports.twilio.consumer import TwilioMediaStreamConsumer
from calls.transports.twilio.twiml import stream_token_issue
from tickets.models import Callback, Ticket
from tickets.services import ticket_create_from_call
from voicedesk.simulator.caller import SpeechModels

TRANSFER_NUMBER = "+15550100199"
CALL_SID = "CA0123456789abcdef0123456789abcdef"
ASKS_FOR_A_PERSON = "Hello, my water heater is leaking. Can I speak to a person, please?"
SILENCE = b"\xff" * 160


def _start(token: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "accountSid": "AC1",
                "callSid": CALL_SID,
                "tracks": ["inbound"],
                "customParameters": {"token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def _media(payload: bytes) -> str:
    return json.dumps(
        {
            "event": "media",
            "streamSid": "MZ1",
            "media": {"track": "inbound", "payload": base64.b64encode(payload).decode()},
        }
    )


def _signed_post(path: str, params: dict[str, str]):
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(f"http://localhost{path}", params)
    return Client(HTTP_HOST="localhost").post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def _ringing_call_with_transfer_number(tenant_a) -> tuple[Call, str]:
    with tenant_context(tenant_a.tenant):
        # No business hours: open around the clock, so the test does not depend on the time it runs.
        AgentConfig.objects.update(transfer_number=TRANSFER_NUMBER, business_hours={})
    call = call_start(
        tenant=tenant_a.tenant,
        carrier="twilio",
        carrier_call_id=CALL_SID,
        from_number="+15557654321",
        to_number="+15550001001",
    )
    return call, stream_token_issue(tenant=tenant_a.tenant, call=call)


def _stored(tenant_a, call_id: int) -> tuple[Call, Ticket | None, Callback | None]:
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get(pk=call_id)
        ticket = Ticket.objects.filter(call=call).first()
        callback = Callback.objects.filter(ticket=ticket).first() if ticket else None
        return call, ticket, callback


def _ticket_after_finish(tenant_a, call_id: int) -> Ticket:
    """The call-finished worker's run: the ticket made at the transfer is completed, never duplicated."""
    with tenant_context(tenant_a.tenant):
        ticket = ticket_create_from_call(call_id=call_id)
        assert Ticket.objects.count() == 1
        return ticket


async def _media_frames(communicator: WebsocketCommunicator, agent: list[dict], closed: asyncio.Event) -> None:
    """The caller's phone: everything the agent sends, until the stream is closed."""
    while True:
        output = await communicator.receive_output(timeout=120)
        if output["type"] == "websocket.close":
            closed.set()
            return
        agent.append(json.loads(output["text"]))


async def _send_in_real_time(communicator: WebsocketCommunicator, frames: list[bytes], closed: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, frame in enumerate(frames):
        if closed.is_set():
            return
        await communicator.send_to(text_data=_media(frame))
        await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - loop.time()))


def _spoken(agent: list[dict]) -> int:
    return sum(1 for message in agent if message["event"] == "media")


async def _call_that_asks_for_a_person(tenant_a) -> int:
    """Greeting, "can I speak to a person", the agent's answer, and the stream closed by the agent."""
    call, token = await database_sync_to_async(_ringing_call_with_transfer_number)(tenant_a)
    caller_voice = SpeechModels()
    chunks = [chunk async for chunk in caller_voice.tts.synthesize(ASKS_FOR_A_PERSON)]
    line = mulaw_encode(resample(np.concatenate(chunks), caller_voice.tts.sample_rate, 8000))
    speech = [line[at : at + 160] for at in range(0, len(line) - 159, 160)]

    communicator = WebsocketCommunicator(TwilioMediaStreamConsumer.as_asgi(), "/ws/twilio/stream")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await communicator.send_to(text_data=_start(token))
    agent: list[dict] = []
    closed = asyncio.Event()
    reader = asyncio.create_task(_media_frames(communicator, agent, closed))
    try:
        # The greeting plays while the caller's line carries silence.
        heard = -1
        while heard != _spoken(agent) or heard == 0:
            heard = _spoken(agent)
            await _send_in_real_time(communicator, [SILENCE] * 40, closed)
        await _send_in_real_time(communicator, speech + [SILENCE] * 50, closed)
        # The agent says it is putting the caller through, then ends the stream.
        await asyncio.wait_for(_silence_until(communicator, closed), 90)
    finally:
        if not closed.is_set():
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await communicator.wait(timeout=10)
    return call.pk


async def _silence_until(communicator: WebsocketCommunicator, closed: asyncio.Event) -> None:
    while not closed.is_set():
        await _send_in_real_time(communicator, [SILENCE] * 10, closed)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("dial_status", "transfer_status", "callback_reason", "heard"),
    [
        ("completed", "answered", None, None),
        # "no-answer" takes the same path as "busy" (the services and the webhook tests tell them apart);
        # each spoken call here costs half a minute of the suite.
        ("busy", "busy", "Transfer to a person failed: the line was busy", "the line is busy right now"),
    ],
)
async def test_a_caller_asking_for_a_person_is_dialled_through_with_the_ticket_written_first(
    tenant_a, dial_status, transfer_status, callback_reason, heard
) -> None:
    call_id = await _call_that_asks_for_a_person(tenant_a)

    # The stream is over: the call is finished as transferred, the ticket written, the transfer dialing.
    call, ticket, callback = await database_sync_to_async(_stored)(tenant_a, call_id)
    assert (call.transfer_status, call.transfer_to, call.end_reason, call.status) == (
        "dialing",
        TRANSFER_NUMBER,
        "transferred",
        "completed",
    )
    assert ticket is not None
    assert ticket.created_at >= call.transfer_started_at
    assert (ticket.priority, ticket.callback_number) == ("high", "+15557654321")
    assert "water heater" in ticket.summary.lower()
    assert callback is None

    # Twilio asks what next: a <Dial> to the business's number, reporting back to the dial-ended webhook.
    params = {"CallSid": CALL_SID, "From": "+15557654321", "To": "+15550001001", "AccountSid": "AC1"}
    response = await database_sync_to_async(_signed_post)("/twilio/stream-ended", params)
    assert response.status_code == 200
    dial = ElementTree.fromstring(response.content).find("./Dial")
    assert dial is not None
    assert (dial.get("action"), dial.get("timeout"), dial.findtext("./Number")) == (
        "/twilio/dial-ended",
        "25",
        TRANSFER_NUMBER,
    )

    ended = {**params, "DialCallStatus": dial_status, "DialCallSid": "CA99"}
    response = await database_sync_to_async(_signed_post)("/twilio/dial-ended", ended)
    assert response.status_code == 200
    document = ElementTree.fromstring(response.content)
    await database_sync_to_async(_ticket_after_finish)(tenant_a, call_id)
    call, ticket, callback = await database_sync_to_async(_stored)(tenant_a, call_id)
    assert call.transfer_status == transfer_status
    assert call.transfer_ended_at is not None
    assert call.captured["transfer"] == transfer_status
    if callback_reason is None:
        assert [child.tag for child in document] == ["Hangup"]
        assert callback is None
    else:
        assert [child.tag for child in document] == ["Say", "Hangup"]
        assert heard in document.findtext("./Say")
        assert "call you back as a priority" in document.findtext("./Say")
        assert callback is not None
        assert (callback.priority, callback.reason, callback.phone) == ("high", callback_reason, "+15557654321")
        # Twilio retrying the report queues nothing more.
        await database_sync_to_async(_signed_post)("/twilio/dial-ended", ended)
        assert await database_sync_to_async(_callbacks)(tenant_a) == 1


def _callbacks(tenant_a) -> int:
    with tenant_context(tenant_a.tenant):
        return Callback.objects.count()
