"""The Media Streams consumer: protocol handling, bad input, and the call record."""

import asyncio
import base64
import json
import wave
from io import BytesIO

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django_tenants.utils import tenant_context

from calls.models import Call, Utterance
from calls.services import call_start
from calls.transports.capacity import VOICE_CAPACITY
from calls.transports.twilio import consumer as consumer_module
from calls.transports.twilio.consumer import MessageBudget, TwilioMediaStreamConsumer
from calls.transports.twilio.twiml import stream_token_issue
from voicedesk.core.metrics import CALLS_IN_PROGRESS, STREAMS_REFUSED

FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


def _start(token: str, call_sid: str, media_format: dict | None = None) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "accountSid": "AC1",
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": {"token": token},
                "mediaFormat": media_format or FORMAT,
            },
        }
    )


def _media(payload: bytes, seq: int = 2) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": "MZ1",
            "media": {
                "track": "inbound",
                "chunk": str(seq),
                "timestamp": str(seq * 20),
                "payload": base64.b64encode(payload).decode(),
            },
        }
    )


async def _connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(TwilioMediaStreamConsumer.as_asgi(), "/ws/twilio/stream")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    return communicator


@pytest.fixture
def ringing_call(tenant_a):
    call = call_start(
        tenant=tenant_a.tenant,
        carrier="twilio",
        carrier_call_id="CA-test-1",
        from_number="+15557654321",
        to_number="+15550001001",
    )
    return tenant_a.tenant, call, stream_token_issue(tenant=tenant_a.tenant, call=call)


@database_sync_to_async
def _call(tenant, pk):
    with tenant_context(tenant):
        return Call.objects.get(pk=pk)


@database_sync_to_async
def _utterances(tenant, pk):
    with tenant_context(tenant):
        return list(Utterance.objects.filter(call_id=pk))


@database_sync_to_async
def _wav_header(call):
    with call.recording.open("rb") as fh, wave.open(BytesIO(fh.read())) as wav:
        return wav.getnchannels(), wav.getframerate(), wav.getsampwidth()


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("not json", "invalid JSON"),
        ('["a list"]', "not a JSON object"),
        (_media(b"\xff" * 160), "media before start"),
        ('{"event": "mark", "mark": {"name": "x"}}', "mark before start"),
        ('{"event": "surprise"}', "unknown event"),
        ("x" * 20_000, "exceeds"),
    ],
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_malformed_or_out_of_order_input_closes_cleanly(message: str, why: str, caplog) -> None:
    communicator = await _connect()
    await communicator.send_to(text_data=message)
    closed = await communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4008}
    await communicator.wait()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_forged_token_and_wrong_encoding_are_refused_without_touching_the_call(ringing_call) -> None:
    tenant, call, token = ringing_call
    for start in (
        _start(token + "x", "CA-test-1"),
        _start(token, "CA-other"),
        _start(token, "CA-test-1", {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}),
    ):
        communicator = await _connect()
        await communicator.send_to(text_data=start)
        assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 4008}
        await communicator.wait()
    assert (await _call(tenant, call.pk)).status == "ringing"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_call_greets_records_and_is_kept_when_the_caller_hangs_up(ringing_call) -> None:
    tenant, call, token = ringing_call
    communicator = await _connect()
    await communicator.send_to(text_data=_start(token, "CA-test-1"))
    frames = []
    for seq in range(60):  # 1.2 s of caller silence while the greeting plays
        await communicator.send_to(text_data=_media(b"\xff" * 160, seq + 2))
        while not communicator.output_queue.empty():
            frames.append(json.loads((await communicator.receive_output())["text"]))
    while len([f for f in frames if f["event"] == "media"]) < 20:
        frames.append(json.loads((await communicator.receive_output(timeout=30))["text"]))
    await communicator.send_to(
        text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA-test-1"}})
    )
    await communicator.wait(timeout=10)

    media = [f for f in frames if f["event"] == "media"]
    assert {f["streamSid"] for f in frames} == {"MZ1"}
    assert all(len(base64.b64decode(f["media"]["payload"])) == 160 for f in media)
    stored = await _call(tenant, call.pk)
    assert (stored.status, stored.end_reason, stored.stream_id) == ("abandoned", "caller_hangup", "MZ1")
    assert stored.captured["completed"] is False
    assert stored.captured["frames_sent"] >= 20
    assert await _wav_header(stored) == (2, 8000, 2)
    [greeting] = await _utterances(tenant, call.pk)
    assert (greeting.speaker, greeting.interrupted) == ("agent", True)
    assert "Thanks for calling Alpha Plumbing. How can I help?".startswith(greeting.text)


def _dtmf(digit: str) -> str:
    return json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": digit}})


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_callback_number_keyed_in_on_the_keypad_is_captured(ringing_call) -> None:
    tenant, call, token = ringing_call
    communicator = await _connect()
    await communicator.send_to(text_data=_start(token, "CA-test-1"))
    seq = 2
    for key in "6175550142#":
        await communicator.send_to(text_data=_dtmf(key))
        for _ in range(5):  # 100 ms of line silence between keys
            await communicator.send_to(text_data=_media(b"\xff" * 160, seq))
            seq += 1
            await asyncio.sleep(0.02)
    for _ in range(50):  # a second for the agent to answer
        await communicator.send_to(text_data=_media(b"\xff" * 160, seq))
        seq += 1
        await asyncio.sleep(0.02)
    await communicator.send_to(
        text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA-test-1"}})
    )
    await communicator.wait(timeout=10)

    stored = await _call(tenant, call.pk)
    assert stored.captured["fields"]["callback_number"] == "+16175550142"
    caller = [(u.text, u.confidence) for u in await _utterances(tenant, call.pk) if u.speaker == "caller"]
    assert caller == [("6175550142", 1.0)]


def test_the_message_budget_allows_real_time_and_bursts_but_not_a_flood() -> None:
    now = [0.0]
    budget = MessageBudget(rate=100.0, burst=5.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(6)] == [True] * 5 + [False]
    now[0] += 0.02  # two more messages' worth of time
    assert [budget.take() for _ in range(3)] == [True, True, False]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_socket_that_never_starts_is_closed(monkeypatch) -> None:
    monkeypatch.setattr(consumer_module, "START_DEADLINE_S", 0.2)
    communicator = await _connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4008}
    await communicator.wait()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_media_flood_ends_the_call_and_keeps_its_record(ringing_call) -> None:
    tenant, call, token = ringing_call
    in_progress = CALLS_IN_PROGRESS.labels(transport="twilio")
    before = in_progress._value.get()
    communicator = await _connect()
    await communicator.send_to(text_data=_start(token, "CA-test-1"))
    while (await _call(tenant, call.pk)).status != "in_progress":
        await asyncio.sleep(0.05)
    assert in_progress._value.get() == before + 1

    closed = None
    for seq in range(4000):  # 80 s of audio at once
        await communicator.send_to(text_data=_media(b"\xff" * 160, seq + 2))
        while not communicator.output_queue.empty():
            output = await communicator.receive_output()
            if output["type"] == "websocket.close":
                closed = output
        if closed:
            break
    closed = closed or await _receive_close(communicator)
    await communicator.wait(timeout=10)

    assert closed == {"type": "websocket.close", "code": 4008}
    stored = await _call(tenant, call.pk)
    assert stored.end_reason == "protocol_error"
    assert stored.status == "abandoned"
    assert in_progress._value.get() == before


async def _receive_close(communicator: WebsocketCommunicator) -> dict:
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output


@database_sync_to_async
def _recorded_frames(tenant, pk) -> int:
    with tenant_context(tenant):
        call = Call.objects.get(pk=pk)
        if not call.recording:
            return 0
        with wave.open(call.recording.path, "rb") as wav:
            return wav.getnframes()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_running_call_beats_and_its_recording_grows_on_disk(ringing_call, settings) -> None:
    settings.CALL_HEARTBEAT_S = 0.25
    tenant, call, token = ringing_call
    communicator = await _connect()
    await communicator.send_to(text_data=_start(token, "CA-test-1"))
    beats = []
    for seq in range(125):  # 2.5 s of caller silence, in real time
        await communicator.send_to(text_data=_media(b"\xff" * 160, seq + 2))
        await asyncio.sleep(0.02)
        if seq % 25 == 24:
            stored = await _call(tenant, call.pk)
            beats.append((stored.status, stored.heartbeat_at, await _recorded_frames(tenant, call.pk)))
    frames_while_running = beats[-1][2]
    await communicator.send_to(
        text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA-test-1"}})
    )
    await communicator.wait(timeout=10)

    assert {status for status, _, _ in beats} == {"in_progress"}
    times = [at for _, at, _ in beats]
    assert times == sorted(times)
    assert len(set(times)) >= 3
    # Written as the call ran: at least a second of audio was on disk before the caller hung up.
    assert frames_while_running >= 8000
    stored = await _call(tenant, call.pk)
    assert stored.status == "abandoned"
    assert await _recorded_frames(tenant, call.pk) >= 125 * 160


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_process_at_capacity_refuses_a_stream_unanswered_and_takes_one_once_a_call_ends(
    ringing_call, settings
) -> None:
    settings.VOICE_PROCESS_CAPACITY = 1
    tenant, _first, first_token = ringing_call
    second = await database_sync_to_async(call_start)(
        tenant=tenant,
        carrier="twilio",
        carrier_call_id="CA-test-2",
        from_number="+15557654322",
        to_number="+15550001001",
    )
    second_token = stream_token_issue(tenant=tenant, call=second)
    refused = STREAMS_REFUSED.labels(transport="twilio")
    refused_before = refused._value.get()

    running = await _connect()
    await running.send_to(text_data=_start(first_token, "CA-test-1"))
    await running.receive_output(timeout=30)  # the greeting's first frame: the call is up
    assert VOICE_CAPACITY.in_use == 1

    turned = await _connect()
    await turned.send_to(text_data=_start(second_token, "CA-test-2"))
    assert await _receive_close(turned) == {"type": "websocket.close", "code": 4013}
    # What the carrier still sends on the refused stream is ignored, not treated as a protocol error.
    await turned.send_to(text_data=_media(b"\xff" * 160))
    await turned.wait()
    stored = await _call(tenant, second.pk)
    assert (stored.status, stored.answered_at, stored.stream_id, stored.ended_at) == ("ringing", None, "", None)
    assert refused._value.get() == refused_before + 1
    assert VOICE_CAPACITY.in_use == 1

    await running.send_to(text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA-test-1"}}))
    await running.wait(timeout=10)
    assert VOICE_CAPACITY.in_use == 0

    retried = await _connect()
    await retried.send_to(text_data=_start(second_token, "CA-test-2"))
    output = await retried.receive_output(timeout=30)
    assert json.loads(output["text"])["event"] == "media"
    await retried.send_to(text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA-test-2"}}))
    await retried.wait(timeout=10)
    assert ((await _call(tenant, second.pk)).status, VOICE_CAPACITY.in_use) == ("abandoned", 0)
