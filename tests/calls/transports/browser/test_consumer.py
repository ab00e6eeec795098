"""The test call websocket, through the real ASGI application: who may call, the protocol, and a whole call.

Transactional tests: the consumer reads sessions and memberships and writes
the call on its own database connections, which only see committed rows.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Iterator
from typing import Any

import dramatiq
import numpy as np
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from dramatiq import Worker

from billing.models import UsageRecord
from billing.services import usage_record_call
from calls.audio import resample
from calls.models import Call, TurnLatency, Utterance
from calls.providers.piper_tts import PiperTextToSpeech
from calls.services import TEST_CALLS_AT_ONCE
from calls.transports.browser import consumer as consumer_module
from calls.transports.capacity import VOICE_CAPACITY
from tenants.models import AuditEvent
from tests.factories import MembershipFactory
from tickets.models import Ticket
from voicedesk.core.metrics import CALLS_IN_PROGRESS
from voicedesk.simulator.caller import CallerBrain
from voicedesk.simulator.scenario import CallerSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

RATE = 16_000
FRAME = RATE // 50  # 20 ms
SILENCE = np.zeros(FRAME, dtype=np.int16).tobytes()


def _application() -> Any:
    # Importing the ASGI module would otherwise load the speech models in a background thread.
    os.environ.setdefault("VOICEDESK_WARM_UP", "0")
    return importlib.import_module("voicedesk.asgi").application


@database_sync_to_async
def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def _open(
    host: str, cookie: bytes | None, *, origin: str | None = None
) -> tuple[WebsocketCommunicator, bool, Any]:
    headers = [(b"host", host.encode()), (b"origin", (origin or f"http://{host}").encode())]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(_application(), "/ws/test-call/", headers=headers)
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def _open_as_owner(tenant_a: Any) -> WebsocketCommunicator:
    communicator, connected, _ = await _open(tenant_a.host, await _session_cookie(tenant_a.owner))
    assert connected
    return communicator


@database_sync_to_async
def _calls(tenant: Any) -> list[Call]:
    with tenant_context(tenant):
        return list(Call.objects.order_by("pk"))


@database_sync_to_async
def _audit_actions() -> list[str]:
    return list(AuditEvent.objects.filter(action="call.test_started").values_list("action", flat=True))


async def _json(communicator: WebsocketCommunicator, *, timeout: float = 30) -> dict[str, Any]:
    """The next JSON message, skipping the agent's audio frames."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            raise AssertionError(f"closed with {output.get('code')} while waiting for a message")
        if output.get("text") is not None:
            return json.loads(output["text"])


async def _until_close(communicator: WebsocketCommunicator, *, timeout: float = 30) -> tuple[list[dict], int]:
    """Every JSON message up to the close, and the close code."""
    messages: list[dict] = []
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return messages, output.get("code", 1000)
        if output.get("text") is not None:
            messages.append(json.loads(output["text"]))


# -- who may call -------------------------------------------------------------------------


@pytest.fixture
def agent_member(tenant_a: Any) -> Any:
    return MembershipFactory(tenant=tenant_a.tenant, role="agent").user


@pytest.mark.parametrize("who", ["anonymous", "other_business_owner", "agent_of_the_business", "foreign_origin"])
async def test_only_the_business_admins_get_a_socket_and_refusals_make_nothing(
    who: str, tenant_a: Any, tenant_b: Any, agent_member: Any
) -> None:
    origin = None
    if who == "anonymous":
        cookie = None
    elif who == "other_business_owner":
        cookie = await _session_cookie(tenant_b.owner)
    elif who == "agent_of_the_business":
        cookie = await _session_cookie(agent_member)
    else:
        cookie = await _session_cookie(tenant_a.owner)
        origin = f"http://{tenant_b.host}"
    calls_before = await _calls(tenant_a.tenant)

    communicator, connected, code = await _open(tenant_a.host, cookie, origin=origin)

    assert connected is False
    assert code == 4404
    await communicator.wait()
    assert await _calls(tenant_a.tenant) == calls_before
    assert await _audit_actions() == []


# -- the protocol ---------------------------------------------------------------------------

START = json.dumps({"type": "start", "sample_rate": RATE})


@pytest.mark.parametrize(
    ("messages", "why"),
    [
        ([SILENCE], "audio before start"),
        (['{"type": "stop"}'], "stop before start"),
        (["not json"], "invalid JSON"),
        (['["a list"]'], "message is not a JSON object"),
        (['{"type": "surprise"}'], "unknown message type 'surprise'"),
        (['{"type": "start", "sample_rate": 44100}'], "sample_rate must be one of (8000, 16000, 24000, 48000)"),
        (["x" * 2_000], "exceeds 1024"),
    ],
)
async def test_bad_input_before_start_closes_cleanly_and_makes_no_call(
    messages: list[str | bytes], why: str, tenant_a: Any
) -> None:
    communicator = await _open_as_owner(tenant_a)
    for message in messages:
        if isinstance(message, bytes):
            await communicator.send_to(bytes_data=message)
        else:
            await communicator.send_to(text_data=message)
    received, code = await _until_close(communicator)
    await communicator.wait()

    assert code == 4008
    assert len(received) == 1
    assert received[0]["type"] == "error"
    assert why in received[0]["reason"]
    assert await _calls(tenant_a.tenant) == []


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (b"\x00" * 641, "audio frame of 641 bytes"),
        (b"\x00" * 6_402, "audio frame of 6402 bytes"),
        (START, "second start on one socket"),
        ('{"type": "hello"}', "unknown message type 'hello'"),
    ],
)
async def test_bad_input_during_a_call_ends_it_and_keeps_its_record(message: str | bytes, why: str, tenant_a) -> None:
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    started = await _json(communicator)
    assert (started["type"], started["sample_rate"], started["frame_ms"]) == ("started", RATE, 20)
    for _ in range(10):
        await communicator.send_to(bytes_data=SILENCE)
    if isinstance(message, bytes):
        await communicator.send_to(bytes_data=message)
    else:
        await communicator.send_to(text_data=message)
    received, code = await _until_close(communicator)
    await communicator.wait()

    assert code == 4008
    errors = [m for m in received if m["type"] == "error"]
    assert len(errors) == 1
    assert why in errors[0]["reason"]
    [call] = await _calls(tenant_a.tenant)
    assert call.pk == started["call_id"]
    assert (call.carrier, call.is_test) == ("browser", True)
    assert (call.status, call.end_reason) == ("abandoned", "protocol_error")
    assert call.ended_at is not None
    assert call.captured["completed"] is False


async def test_a_flood_of_frames_ends_the_call_and_keeps_its_record(tenant_a, monkeypatch) -> None:
    # A small budget, so a busy test machine reading the frames slowly still sees a flood.
    monkeypatch.setattr(consumer_module, "MESSAGE_RATE", 5.0)
    monkeypatch.setattr(consumer_module, "MESSAGE_BURST", 40.0)
    in_progress = CALLS_IN_PROGRESS.labels(transport="browser")
    before = in_progress._value.get()
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    started = await _json(communicator)
    assert in_progress._value.get() == before + 1
    for _ in range(300):  # six seconds of audio at once
        await communicator.send_to(bytes_data=SILENCE)
    received, code = await _until_close(communicator)
    await communicator.wait()

    assert code == 4008
    assert [m["reason"] for m in received if m["type"] == "error"] == ["more than 5 messages a second"]
    [call] = await _calls(tenant_a.tenant)
    assert (call.pk, call.status, call.end_reason) == (started["call_id"], "abandoned", "protocol_error")
    assert in_progress._value.get() == before


async def test_a_socket_that_never_starts_is_closed(tenant_a, monkeypatch) -> None:
    monkeypatch.setattr(consumer_module, "START_DEADLINE_S", 0.2)
    communicator = await _open_as_owner(tenant_a)
    received, code = await _until_close(communicator, timeout=5)
    await communicator.wait()
    assert code == 4008
    assert received == [{"type": "error", "reason": "no start within 0.2 s"}]
    assert await _calls(tenant_a.tenant) == []


async def test_an_agent_that_cannot_start_still_closes_its_call(tenant_a, monkeypatch) -> None:
    async def engines_down(**_: Any) -> None:
        raise RuntimeError("no speech engine could be loaded")

    monkeypatch.setattr(consumer_module, "session_deps_for_call", engines_down)
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    received, code = await _until_close(communicator)
    await communicator.wait()

    assert code == 4011
    assert received == [{"type": "error", "reason": "The agent could not be started; try again."}]
    [call] = await _calls(tenant_a.tenant)
    assert (call.is_test, call.status, call.end_reason) == (True, "abandoned", "setup_failed")


async def test_closing_the_tab_mid_call_finishes_the_call(tenant_a) -> None:
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    started = await _json(communicator)
    for _ in range(25):
        await communicator.send_to(bytes_data=SILENCE)
    await communicator.disconnect()

    [call] = await _calls(tenant_a.tenant)
    assert (call.pk, call.status, call.end_reason) == (started["call_id"], "abandoned", "caller_hangup")


async def test_a_business_has_at_most_two_test_calls_at_once(tenant_a, monkeypatch) -> None:
    # No worker runs here: the ticket is not made, and the page is told so after this long.
    monkeypatch.setattr(consumer_module, "TICKET_WAIT_S", 0.5)
    assert TEST_CALLS_AT_ONCE == 2
    open_calls = []
    for _ in range(2):
        communicator = await _open_as_owner(tenant_a)
        await communicator.send_to(text_data=START)
        assert (await _json(communicator))["type"] == "started"
        open_calls.append(communicator)
    third = await _open_as_owner(tenant_a)
    await third.send_to(text_data=START)
    received, code = await _until_close(third)
    await third.wait()

    assert code == 4013
    assert received == [{"type": "error", "reason": "At most 2 test calls at once; end one first."}]
    assert len(await _calls(tenant_a.tenant)) == 2
    for communicator in open_calls:
        await communicator.send_to(text_data='{"type": "stop"}')
        received, code = await _until_close(communicator)
        assert code == 1000
        end = received[-1]
        assert (end["type"], end["reason"], end["ticket_id"], end["ticket_url"]) == ("end", "caller_hangup", None, None)
        assert end["call_url"] == f"/calls/{end['call_id']}/"


# -- a whole call -----------------------------------------------------------------------------


@pytest.fixture
def worker() -> Iterator[Worker]:
    """A Dramatiq worker on the configured broker: the ticket and metering actors run as in production."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    running = Worker(broker, worker_threads=1, worker_timeout=100)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        broker.flush_all()


class Microphone:
    """Real-time 20 ms PCM16 frames, as the page's AudioWorklet sends them: speech if there is some, else silence."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.pending = np.zeros(0, dtype=np.int16)
        self.tts = PiperTextToSpeech(variation=0)
        self.stopped = False

    async def say(self, text: str) -> None:
        chunks = [chunk async for chunk in self.tts.synthesize(text)]
        speech = resample(np.concatenate(chunks), self.tts.sample_rate, RATE)
        self.pending = np.concatenate([self.pending, speech])
        while len(self.pending):
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.stopped:
            frame, self.pending = self.pending[:FRAME], self.pending[FRAME:]
            if len(frame) < FRAME:
                frame = np.concatenate([frame, np.zeros(FRAME - len(frame), dtype=np.int16)])
            await self.communicator.send_to(bytes_data=frame.astype("<i2").tobytes())
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))


@database_sync_to_async
def _stored(tenant: Any, call_id: int) -> tuple[Call, Ticket, list[Utterance], list[TurnLatency], int, Any]:
    with tenant_context(tenant):
        call = Call.objects.get(pk=call_id)
        return (
            call,
            Ticket.objects.get(call=call),
            list(Utterance.objects.filter(call=call)),
            list(TurnLatency.objects.filter(call=call)),
            UsageRecord.objects.filter(tenant=tenant, call_id=call_id).count(),
            usage_record_call(tenant=tenant, call_id=call_id),
        )


async def test_a_spoken_test_call_shows_its_transcript_and_latency_and_ends_with_its_ticket(tenant_a, worker) -> None:
    caller = CallerSpec(
        phone="",
        says_first="Hi, this is James Wilson, my number is 555 201 7788, and my kitchen sink is leaking.",
        facts={"name": "James Wilson", "callback_number": "555 201 7788"},
    )
    brain = CallerBrain(caller)
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    started = await _json(communicator)
    microphone = Microphone(communicator)
    sending = asyncio.get_running_loop().create_task(microphone.run())
    messages: list[dict[str, Any]] = []
    heard = ""
    try:
        async with asyncio.timeout(240):
            while True:
                message = await _json(communicator, timeout=60)
                messages.append(message)
                if message["type"] == "end":
                    break
                if message["type"] != "transcript" or message["speaker"] != "agent" or brain.done:
                    continue
                heard = f"{heard} {message['text']}".strip()
                if not brain.understands(heard):
                    continue  # a filler ("Okay.") before the real reply
                decision = brain.on_agent_turn(heard)
                heard = ""
                if decision.line is not None:
                    await microphone.say(decision.line.spoken)
                if decision.hang_up:
                    await communicator.send_to(text_data='{"type": "stop"}')
    finally:
        microphone.stopped = True
        await sending
    _, code = await _until_close(communicator)
    await communicator.wait()

    end = messages[-1]
    call, ticket, utterances, latencies, metered, usage = await _stored(tenant_a.tenant, started["call_id"])
    assert code == 1000
    assert end == {
        "type": "end",
        "reason": end["reason"],
        "call_id": call.pk,
        "call_url": f"/calls/{call.pk}/",
        "ticket_id": ticket.pk,
        "ticket_url": f"/tickets/{ticket.pk}/",
    }
    assert end["reason"] in ("agent_hangup", "caller_hangup")
    assert (call.carrier, call.is_test, call.from_number, call.status) == ("browser", True, "", "completed")
    assert (ticket.caller_name, ticket.callback_number) == ("James Wilson", "+15552017788")
    assert "sink" in ticket.summary.lower()
    # The page was shown every line stored, in order, and every turn's latency.
    shown = [(m["speaker"], m["text"]) for m in messages if m["type"] == "transcript"]
    assert shown == [(u.speaker, u.text) for u in sorted(utterances, key=lambda u: u.pk)]
    assert any(speaker == "caller" and "sink" in text.lower() for speaker, text in shown)
    shown_latency = [(m["turn"], m["first_frame_ms"]) for m in messages if m["type"] == "latency"]
    assert [turn for turn, _ in shown_latency] == [t.turn_index for t in latencies]
    # Shown in whole milliseconds, stored to the tenth.
    assert all(abs(ms - t.first_frame_ms) <= 0.55 for (_, ms), t in zip(shown_latency, latencies, strict=True))
    assert len(shown_latency) >= 2
    # Not metered: the metering actor ran and recorded nothing, and metering it again records nothing.
    assert (metered, usage) == (0, None)


async def test_a_voice_process_at_capacity_refuses_a_test_call_and_makes_nothing(tenant_a, settings) -> None:
    settings.VOICE_PROCESS_CAPACITY = 0
    in_progress = CALLS_IN_PROGRESS.labels(transport="browser")
    before = in_progress._value.get()
    communicator = await _open_as_owner(tenant_a)
    await communicator.send_to(text_data=START)
    received, code = await _until_close(communicator)
    await communicator.wait()

    assert code == 4013
    assert received == [{"type": "error", "reason": consumer_module.NO_ROOM_MESSAGE}]
    assert consumer_module.NO_ROOM_MESSAGE == "Every line of the agent is busy right now; try again in a minute."
    assert await _calls(tenant_a.tenant) == []
    assert (in_progress._value.get(), VOICE_CAPACITY.in_use) == (before, 0)
