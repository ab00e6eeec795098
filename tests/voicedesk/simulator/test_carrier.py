"""The carrier emulation: webhook signing, TwiML, Media Streams messages, playback, marks and clear."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_asyncio
from twilio.request_validator import RequestValidator
from websockets.asyncio.server import ServerConnection, serve

from voicedesk.simulator.carrier import (
    SILENCE_FRAME,
    CarrierError,
    CarrierStream,
    PlaybackBuffer,
    PlayedFrame,
    StreamInstructions,
    dial,
    parse_twiml,
    webhook_signature,
)

TOKEN = "test-auth-token"
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://127.0.0.1:9/ws/twilio/stream">'
    '<Parameter name="token" value="abc:123" /></Stream></Connect></Response>'
)


def frame(value: int) -> bytes:
    return bytes([value]) * 160


# -- the playback buffer ------------------------------------------------------------


def test_frames_play_in_order_and_marks_are_reached_after_their_audio() -> None:
    buffer = PlaybackBuffer()
    buffer.push_media(frame(1) + frame(2))
    assert buffer.push_mark("a") == []
    buffer.push_media(frame(3))
    assert buffer.push_mark("b") == []
    assert buffer.buffered_frames == 3
    assert buffer.play() == (frame(1), [])
    assert buffer.play() == (frame(2), ["a"])
    assert buffer.play() == (frame(3), ["b"])
    assert buffer.play() == (None, [])


def test_a_mark_on_an_empty_buffer_is_echoed_at_once() -> None:
    assert PlaybackBuffer().push_mark("now") == ["now"]


def test_clear_drops_audio_and_returns_pending_marks() -> None:
    buffer = PlaybackBuffer()
    buffer.push_media(frame(1) * 3)
    buffer.push_mark("m1")
    buffer.push_media(frame(2))
    buffer.push_mark("m2")
    assert buffer.play() == (frame(1), [])
    assert buffer.clear() == ["m1", "m2"]
    assert buffer.buffered_frames == 0
    assert buffer.play() == (None, [])


def test_payloads_of_any_size_play_as_20ms_frames() -> None:
    buffer = PlaybackBuffer()
    buffer.push_media(frame(7)[:100])
    assert buffer.buffered_frames == 0
    buffer.push_media(frame(7)[:100])
    assert buffer.buffered_frames == 1
    assert buffer.play() == (frame(7), [])
    # The 40-byte remainder plays padded with silence before a mark.
    buffer.push_mark("end")
    assert buffer.play() == (frame(7)[:40] + SILENCE_FRAME[:120], ["end"])


# -- webhook and TwiML ------------------------------------------------------------------


def test_parse_twiml_reads_stream_url_and_parameters() -> None:
    assert parse_twiml(TWIML) == StreamInstructions(
        url="ws://127.0.0.1:9/ws/twilio/stream", parameters={"token": "abc:123"}
    )


def test_parse_twiml_reads_where_to_ask_once_the_stream_ends() -> None:
    document = TWIML.replace("<Connect>", '<Connect action="/twilio/stream-ended">')
    assert parse_twiml(document).action == "/twilio/stream-ended"
    assert parse_twiml(TWIML).action == ""


def test_parse_twiml_quotes_what_was_said_instead() -> None:
    document = "<Response><Say>Sorry, the number you have called is not in service.</Say><Hangup/></Response>"
    with pytest.raises(CarrierError, match=r"no <Connect><Stream> \(it said: 'Sorry, the number you have called"):
        parse_twiml(document)
    with pytest.raises(CarrierError, match="did not answer TwiML"):
        parse_twiml("<html>Server Error")


@dataclass
class _WebhookLog:
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, _WebhookLog]]:
    log = _WebhookLog()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            params = dict(urllib.parse.parse_qsl(body))
            url = f"http://{self.headers['Host']}{self.path}"
            valid = RequestValidator(TOKEN).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
            log.requests.append({"path": self.path, "params": params, "valid": valid})
            self.send_response(200 if valid else 403)
            self.send_header("Content-Type", "text/xml")
            self.end_headers()
            self.wfile.write(TWIML.encode() if valid else b"Invalid signature.")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()
    server.server_close()


def test_webhook_signature_is_twilios() -> None:
    params = {"CallSid": "CA1", "From": "+15557654321"}
    signature = webhook_signature("http://localhost:8000/twilio/voice", params, TOKEN)
    assert RequestValidator(TOKEN).validate("http://localhost:8000/twilio/voice", params, signature) is True


@pytest.mark.asyncio
async def test_dial_posts_a_signed_webhook_and_reads_the_stream(webhook_server: tuple[str, _WebhookLog]) -> None:
    base_url, log = webhook_server
    instructions = await dial(
        base_url + "/", call_sid="CA1", from_number="+15557654321", to_number="+15550100100",
        account_sid="AC1", auth_token=TOKEN,
    )  # fmt: skip
    assert instructions.parameters == {"token": "abc:123"}
    assert len(log.requests) == 1
    request = log.requests[0]
    assert request["path"] == "/twilio/voice"
    assert request["valid"] is True
    assert {k: request["params"][k] for k in ("CallSid", "From", "To", "AccountSid")} == {
        "CallSid": "CA1", "From": "+15557654321", "To": "+15550100100", "AccountSid": "AC1",
    }  # fmt: skip


@pytest.mark.asyncio
async def test_dial_reports_a_refused_signature(webhook_server: tuple[str, _WebhookLog]) -> None:
    base_url, _ = webhook_server
    with pytest.raises(CarrierError, match=r"answered HTTP 403: 'Invalid signature.'"):
        await dial(base_url, call_sid="CA1", from_number="+1", to_number="+2", account_sid="AC1", auth_token="wrong")


# -- the media stream against a loopback server ------------------------------------------------


class FakeServer:
    """A minimal product side: records what the carrier sends, lets the test send agent messages."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.connection: ServerConnection | None = None
        self.connected = asyncio.Event()
        self.new_message = asyncio.Event()
        self.url = ""

    async def handler(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.connected.set()
        async for raw in connection:
            message = json.loads(raw)
            self.received.append((time.monotonic(), message))
            self.new_message.set()
            if message["event"] == "stop":
                await connection.close()  # as the product does

    async def send(self, message: dict[str, Any]) -> None:
        assert self.connection is not None
        await self.connection.send(json.dumps({**message, "streamSid": "MZ1"}))

    async def send_audio(self, frames: list[bytes]) -> None:
        for f in frames:
            await self.send({"event": "media", "media": {"payload": base64.b64encode(f).decode()}})

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for _, m in self.received if m["event"] == name]

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> tuple[float, dict[str, Any]]:
        """The first received message matching ``predicate``, with its arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.received:
                if predicate(item[1]):
                    return item
            self.new_message.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the carrier never sent the expected message")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_message.wait(), timeout=remaining)


@pytest_asyncio.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}/ws/twilio/stream"
        yield server


async def open_stream(
    server: FakeServer, played: list[PlayedFrame] | None = None, idle: Iterator[bytes] | None = None
) -> CarrierStream:
    stream = CarrierStream(
        StreamInstructions(url=server.url, parameters={"token": "t0k"}),
        call_sid="CA123",
        account_sid="AC456",
        stream_sid="MZ1",
        on_tick=played.append if played is not None else None,
        record=True,
        idle=idle,
    )
    await stream.open()
    await asyncio.wait_for(server.connected.wait(), timeout=5)
    return stream


@pytest.mark.asyncio
async def test_connected_start_and_paced_media_exactly_as_twilio(fake_server: FakeServer) -> None:
    stream = await open_stream(fake_server)
    await asyncio.sleep(0.5)
    await stream.hang_up()
    messages = [m for _, m in fake_server.received]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert messages[1] == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ1",
        "start": {
            "streamSid": "MZ1",
            "accountSid": "AC456",
            "callSid": "CA123",
            "tracks": ["inbound"],
            "customParameters": {"token": "t0k"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    media = fake_server.events("media")
    assert media[0] == {
        "event": "media",
        "sequenceNumber": "2",
        "streamSid": "MZ1",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "0",
            "payload": base64.b64encode(SILENCE_FRAME).decode(),
        },
    }
    assert [m["media"]["chunk"] for m in media] == [str(i) for i in range(1, len(media) + 1)]
    assert [m["media"]["timestamp"] for m in media] == [str(20 * i) for i in range(len(media))]
    # Real time: about 25 frames in half a second, never a burst ahead of the clock.
    assert 20 <= len(media) <= 30
    times = [t for t, m in fake_server.received if m["event"] == "media"]
    assert times[-1] - times[0] >= (len(media) - 1) * 0.02 - 0.03
    stop = messages[-1]
    assert stop == {
        "event": "stop",
        "sequenceNumber": str(len(messages) - 1),
        "streamSid": "MZ1",
        "stop": {"accountSid": "AC456", "callSid": "CA123"},
    }
    assert [int(m["sequenceNumber"]) for m in messages[1:]] == list(range(1, len(messages)))
    assert stream.close_reason == "caller_hangup"


@pytest.mark.asyncio
async def test_caller_speech_is_sent_in_order_and_reports_its_last_frame(fake_server: FakeServer) -> None:
    stream = await open_stream(fake_server)
    speech = frame(0x10) + frame(0x20) + frame(0x30)[:80]
    ended = await asyncio.wait_for(stream.speak(speech), timeout=2)
    assert stream.caller_speaking is False
    await asyncio.sleep(0.05)
    await stream.hang_up()
    payloads = [base64.b64decode(m["media"]["payload"]) for m in fake_server.events("media")]
    spoken = [p for p in payloads if p != SILENCE_FRAME]
    assert spoken == [frame(0x10), frame(0x20), frame(0x30)[:80] + SILENCE_FRAME[:80]]
    assert ended <= time.monotonic()


@pytest.mark.asyncio
async def test_a_noisy_line_sends_its_noise_while_the_caller_is_quiet(fake_server: FakeServer) -> None:
    hiss = (frame(0x70 + i % 4) for i in itertools.count())
    stream = await open_stream(fake_server, idle=hiss)
    await asyncio.sleep(0.1)
    ended = await asyncio.wait_for(stream.speak(frame(0x10) + frame(0x20)), timeout=2)
    await asyncio.sleep(0.1)
    await stream.hang_up()
    payloads = [base64.b64decode(m["media"]["payload"]) for m in fake_server.events("media")]
    spoken_at = payloads.index(frame(0x10))
    assert payloads[spoken_at + 1] == frame(0x20)
    quiet = payloads[:spoken_at] + payloads[spoken_at + 2 :]
    assert SILENCE_FRAME not in quiet
    # The noise runs on through the speech, one frame per quiet tick.
    assert quiet == [frame(0x70 + i % 4) for i in range(len(quiet))]
    assert 0 < stream.last_speech_sent_at <= ended


@pytest.mark.asyncio
async def test_agent_audio_plays_in_real_time_and_the_mark_is_echoed_when_reached(fake_server: FakeServer) -> None:
    played: list[PlayedFrame] = []
    stream = await open_stream(fake_server, played)
    audio = [frame(i) for i in range(1, 11)]  # 200 ms
    sent_at = time.monotonic()
    await fake_server.send_audio(audio)
    await fake_server.send({"event": "mark", "mark": {"name": "t1-1"}})
    echoed_at, echo = await fake_server.wait_for(lambda m: m["event"] == "mark")
    assert echo == {
        "event": "mark",
        "sequenceNumber": echo["sequenceNumber"],
        "streamSid": "MZ1",
        "mark": {"name": "t1-1"},
    }
    # Ten frames take 200 ms to play; the echo comes after them, not on receipt.
    assert 0.17 <= echoed_at - sent_at <= 0.6
    await stream.hang_up()
    heard = [p.agent for p in played if p.agent is not None]
    assert heard == audio
    assert stream.stats.frames_received == 10
    assert stream.stats.marks_echoed == 1
    # The recording has the agent on the right channel, time-aligned with the ticks.
    assert len(stream.stereo_wav()) == 44 + len(played) * 160 * 4


@pytest.mark.asyncio
async def test_clear_drops_buffered_audio_and_echoes_pending_marks_at_once(fake_server: FakeServer) -> None:
    played: list[PlayedFrame] = []
    stream = await open_stream(fake_server, played)
    await fake_server.send_audio([frame(9)] * 100)  # two seconds of audio
    await fake_server.send({"event": "mark", "mark": {"name": "a"}})
    await fake_server.send_audio([frame(8)] * 10)
    await fake_server.send({"event": "mark", "mark": {"name": "b"}})
    await asyncio.sleep(0.1)
    cleared_at = time.monotonic()
    await fake_server.send({"event": "clear"})
    _, first = await fake_server.wait_for(lambda m: m["event"] == "mark")
    echoed_at, second = await fake_server.wait_for(lambda m: m["event"] == "mark" and m["mark"]["name"] == "b")
    assert [first["mark"]["name"], second["mark"]["name"]] == ["a", "b"]
    assert echoed_at - cleared_at < 0.15
    await asyncio.sleep(0.1)
    await stream.hang_up()
    heard = [p.agent for p in played if p.agent is not None]
    assert 2 <= len(heard) <= 15  # about 100 ms played before the clear, nothing after
    assert set(heard) == {frame(9)}
    assert stream.stats.clears == 1


@pytest.mark.asyncio
async def test_the_server_hanging_up_ends_the_stream(fake_server: FakeServer) -> None:
    stream = await open_stream(fake_server)
    speaking = stream.speak(frame(0x10) * 200)
    assert fake_server.connection is not None
    await fake_server.connection.close()
    await asyncio.wait_for(stream.wait_closed(), timeout=2)
    assert stream.close_reason.startswith("server_closed")
    with pytest.raises(CarrierError, match="the call ended"):
        await speaking
