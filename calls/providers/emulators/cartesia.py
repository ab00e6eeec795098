"""Cartesia's TTS websocket on loopback, speaking with piper (or espeak-ng).

Speaks ``/tts/websocket`` as the ``cartesia`` SDK uses it: the key as
``Authorization: Bearer`` (or ``?api_key=``), a ``Cartesia-Version`` header
(or ``?cartesia_version=``); JSON generation requests with ``context_id``,
``model_id``, ``transcript``, ``voice`` ``{"mode": "id", "id"}``,
``output_format`` ``{"container": "raw", "encoding", "sample_rate"}`` and
``continue``; ``{"context_id", "cancel": true}``. Chunks are ``chunk``
messages (base64 audio, status 206) and a context ends with ``done`` (200)
after its last input; a bad request gets ``type: error`` (400). A refused
key is a 401 on the handshake.

Contexts continue as Cartesia documents them: the transcripts of one
context are concatenated verbatim and spoken when flushed - a request with
``flush: true`` (chunks carry the ``flush_id``, then ``flush_done``), the
last input (``continue: false``), or ``max_buffer_delay_ms`` (3000 by
default) without either. Every input of a context must repeat its
``model_id``, ``voice``, ``output_format`` and ``language``; an input after
the context's last one, or more than ``context_expiry_s`` (1 s) after its
last audio, is an error. What each context was asked to say, as joined, is
kept (``ContextRecord``), with any two words the concatenation glued.

The same port answers ``GET /voices`` over plain HTTP (``http_url`` goes in
the SDK's ``base_url``): the library as ``{"data": [Voice], "has_more",
"next_page"}``, paged by ``limit`` (1-100, default 10) and
``starting_after``, with the same key and version checks and faults.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from calls.providers.emulators.base import DEFAULT_LIBRARY, EmulatedVoice, OfflineVoice, WebsocketEmulator

ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


# Fields every input of one context repeats (all but transcript, continue, duration and flush).
_CONTEXT_FIELDS = ("model_id", "voice", "output_format", "language")
_GLUED = re.compile(r"\w$")
_BUFFER_DELAY_MS = 3000


@dataclass(slots=True)
class ContextRecord:
    """One context: its transcript as joined, what was spoken at each flush, and words glued by a join."""

    context_id: str
    transcript: str = ""
    spoken: list[str] = field(default_factory=list)
    glued: list[str] = field(default_factory=list)
    inputs: int = 0
    ended: bool = False  # its last input came (``continue: false``)


@dataclass(slots=True)
class ConnectionRecord:
    """One websocket as the emulator saw it (the key itself is not kept)."""

    query: dict[str, str]
    headers: dict[str, str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0
    contexts: dict[str, ContextRecord] = field(default_factory=dict)


class _Context:
    """One context being spoken: its inputs, in order, for the task that speaks them."""

    def __init__(self, record: ContextRecord, first: dict[str, Any]) -> None:
        self.record = record
        self.fields = {name: first.get(name) for name in _CONTEXT_FIELDS}
        self.inputs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # ("text", t), ("flush", ""), ("end", "")
        self.task: asyncio.Task[None] | None = None
        self.buffer_delay_s = int(first.get("max_buffer_delay_ms") or _BUFFER_DELAY_MS) / 1000
        self.last_audio_at: float | None = None  # when its last audio went out; None while it has some to say
        self.finished = False


class CartesiaEmulator(WebsocketEmulator):
    """A loopback Cartesia TTS websocket; ``url`` goes in the SDK's ``websocket_base_url``.

    ``fault`` may change at any time: ``reject_key`` and ``http_500`` refuse
    the handshake, ``stall`` answers nothing, ``drop`` cuts the socket after
    the first chunk, ``slow_first_byte`` delays each context's first chunk.
    """

    name = "cartesia"

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("sk_car_test",),
        library: tuple[EmulatedVoice, ...] = DEFAULT_LIBRARY,
        voice: OfflineVoice | None = None,
        port: int = 0,
        slow_first_byte_s: float = 2.0,
        context_expiry_s: float = 1.0,
    ) -> None:
        super().__init__(port=port, slow_first_byte_s=slow_first_byte_s)
        self.context_expiry_s = context_expiry_s
        self.api_keys = set(api_keys)
        self.library = library
        self.voice_listings: list[dict[str, str]] = []  # the query of each voice listing
        self.voice = voice or OfflineVoice()
        self.connections: list[ConnectionRecord] = []
        self.refused: list[int] = []  # handshake statuses refused

    @property
    def http_url(self) -> str:
        """The same port over plain HTTP (``GET /voices``): what goes in the SDK's ``base_url``."""
        return self.url.replace("ws://", "http://", 1)

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, message: str) -> Response:
        self.refused.append(int(status))
        response = connection.respond(status, json.dumps({"error": message}) + "\n")
        response.headers["Content-Type"] = "application/json"
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        query = dict(parse_qsl(split.query))
        if self.fault == "http_500":
            return self._refuse(connection, HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        if split.path not in ("/tts/websocket", "/voices"):
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "Not Found")
        authorization = request.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else query.get("api_key")
        if self.fault == "reject_key" or key not in self.api_keys:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "Invalid API key")
        if not (request.headers.get("Cartesia-Version") or query.get("cartesia_version")):
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "Cartesia-Version header is required")
        if split.path == "/voices":
            return self._voices(connection, query)
        return None

    def _voices(self, connection: ServerConnection, query: dict[str, str]) -> Response:
        """One page of the voice library, as ``GET /voices`` answers it."""
        self.voice_listings.append({k: v for k, v in query.items() if k != "api_key"})
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "limit must be between 1 and 100")
        ids = [voice.voice_id for voice in self.library]
        after = query.get("starting_after")
        start = ids.index(after) + 1 if after in ids else 0
        page = self.library[start : start + limit]
        has_more = start + limit < len(self.library)
        body = {
            "data": [
                {
                    "id": voice.voice_id,
                    "access": "public",
                    "created_at": "2025-01-01T00:00:00Z",
                    "description": voice.description,
                    "is_owner": False,
                    "language": voice.language,
                    "locales": [{"locale": f"{voice.language}-US", "is_native": True}],
                    "name": voice.name,
                    "tagline": "",
                    "visibility": "all",
                    "gender": "feminine" if voice.gender == "female" else "masculine",
                }
                for voice in page
            ],
            "has_more": has_more,
            "next_page": page[-1].voice_id if has_more and page else None,
        }
        response = connection.respond(HTTPStatus.OK, json.dumps(body))
        del response.headers["Content-Type"]  # respond() says text/plain
        response.headers["Content-Type"] = "application/json"
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        record = ConnectionRecord(
            query={k: v for k, v in parse_qsl(urlsplit(request.path).query) if k != "api_key"},
            headers={k.lower(): v for k, v in request.headers.raw_items() if k.lower() != "authorization"},
        )
        self.connections.append(record)
        contexts: dict[str, _Context] = {}
        try:
            async for message in ws:
                if self.fault == "stall":
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    await self._error(ws, None, "Invalid JSON")
                    continue
                record.requests.append(data)
                context_id = data.get("context_id")
                if not isinstance(context_id, str) or not context_id:
                    await self._error(ws, None, "context_id is required")
                    continue
                if data.get("cancel") is True:
                    cancelled = contexts.pop(context_id, None)
                    if cancelled is not None and cancelled.task is not None:
                        cancelled.task.cancel()
                    continue
                problem = self._invalid(data)
                if problem:
                    await self._error(ws, context_id, problem)
                    continue
                context = contexts.get(context_id)
                if context is not None and (problem := self._continuation_problem(context, data)):
                    await self._error(ws, context_id, problem)
                    continue
                if context is None:
                    if context_id in record.contexts:
                        ended = record.contexts[context_id].ended
                        await self._error(ws, context_id, f"context {context_id} {'has ended' if ended else 'expired'}")
                        continue
                    context = contexts[context_id] = _Context(ContextRecord(context_id), data)
                    record.contexts[context_id] = context.record
                    output = data["output_format"]
                    context.task = asyncio.create_task(
                        self._speak(ws, record, context_id, context, output["encoding"], int(output["sample_rate"]))
                    )
                self._take(context, data)
        except ConnectionClosed:
            pass
        finally:
            for context in contexts.values():
                if context.task is not None:
                    context.task.cancel()

    @staticmethod
    def _invalid(data: dict[str, Any]) -> str:
        if not isinstance(data.get("model_id"), str) or not data["model_id"]:
            return "model_id is required"
        if not isinstance(data.get("transcript"), str):
            return "transcript is required"
        voice = data.get("voice")
        if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
            return "voice must be {mode: id, id}"
        output = data.get("output_format")
        if (
            not isinstance(output, dict)
            or output.get("container") != "raw"
            or output.get("encoding") not in ENCODINGS
            or output.get("sample_rate") not in SAMPLE_RATES
        ):
            return "output_format must be raw with a supported encoding and sample_rate"
        if output["encoding"] == "pcm_mulaw" and output["sample_rate"] != 8000:
            return "pcm_mulaw is only available at 8000 Hz"
        return ""

    async def _error(self, ws: ServerConnection, context_id: str | None, message: str) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "context_id": context_id,
                    "done": True,
                    "status_code": 400,
                    "title": "Invalid request",
                    "message": message,
                    "error_code": "invalid_request",
                }
            )
        )

    def _continuation_problem(self, context: _Context, data: dict[str, Any]) -> str:
        if context.record.ended:
            return f"context {context.record.context_id} has ended: no input may follow continue=false"
        expired = context.last_audio_at is not None and time.monotonic() - context.last_audio_at > self.context_expiry_s
        if context.finished or expired:
            return f"context {context.record.context_id} expired"
        changed = [name for name in _CONTEXT_FIELDS if data.get(name) != context.fields[name]]
        if changed:
            return f"inputs on one context must keep the same {', '.join(changed)}"
        return ""

    @staticmethod
    def _take(context: _Context, data: dict[str, Any]) -> None:
        record = context.record
        transcript = data["transcript"]
        record.inputs += 1
        if transcript:
            if record.transcript and _GLUED.search(record.transcript) and transcript[0].isalnum():
                # Cartesia joins inputs verbatim: "help?" + "Thanks" is fine, "Hello" + "there" is "Hellothere".
                record.glued.append(record.transcript.split()[-1] + transcript.split()[0])
            record.transcript += transcript
            context.inputs.put_nowait(("text", transcript))
        context.last_audio_at = None
        if data.get("flush") is True:
            context.inputs.put_nowait(("flush", ""))
        if data.get("continue") is not True:
            record.ended = True
            context.inputs.put_nowait(("end", ""))

    async def _speak(
        self,
        ws: ServerConnection,
        record: ConnectionRecord,
        context_id: str,
        context: _Context,
        encoding: str,
        rate: int,
    ) -> None:
        first = True
        flush_id = 1
        buffered = ""

        async def say(text: str) -> bool:
            nonlocal first
            context.record.spoken.append(text)
            async for audio in self.voice.speak(text, encoding=encoding, sample_rate=rate):
                started = time.monotonic()
                if first:
                    await self.first_byte_delay()
                first = False
                message = {
                    "type": "chunk",
                    "context_id": context_id,
                    "data": base64.b64encode(audio).decode(),
                    "done": False,
                    "status_code": 206,
                    "step_time": round((time.monotonic() - started) * 1000, 3),
                    "flush_id": flush_id,
                }
                await ws.send(json.dumps(message))
                record.audio_bytes += len(audio)
                if self.fault == "drop":
                    ws.transport.abort()
                    return False
            return True

        with contextlib.suppress(ConnectionClosed):
            while True:
                # Text waits for a flush at most the buffer delay; a context with nothing to say
                # expires ``context_expiry_s`` after its last audio.
                wait_s = context.buffer_delay_s if buffered else self.context_expiry_s
                try:
                    kind, text = await asyncio.wait_for(context.inputs.get(), wait_s)
                except TimeoutError:
                    if not buffered:
                        context.finished = True  # expired: later inputs on it are refused
                        return
                    kind, text = ("buffer_delay", "")
                if kind == "text":
                    buffered += text
                    continue
                if buffered.strip() and not await say(buffered.strip()):
                    return
                buffered = ""
                context.last_audio_at = time.monotonic()
                if kind == "flush":
                    await ws.send(
                        json.dumps({"type": "flush_done", "context_id": context_id, "flush_done": True,
                                    "flush_id": flush_id, "done": False, "status_code": 206})
                    )  # fmt: skip
                    flush_id += 1
                if kind == "end":
                    break
            await ws.send(json.dumps({"type": "done", "context_id": context_id, "done": True, "status_code": 200}))
        context.finished = True
