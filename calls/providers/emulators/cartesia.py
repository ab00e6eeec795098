"""Cartesia's TTS websocket on loopback, speaking with piper (or espeak-ng).

Speaks ``/tts/websocket`` as the ``cartesia`` SDK uses it: the key as
``Authorization: Bearer`` (or ``?api_key=``), a ``Cartesia-Version`` header
(or ``?cartesia_version=``); JSON generation requests with ``context_id``,
``model_id``, ``transcript``, ``voice`` ``{"mode": "id", "id"}``,
``output_format`` ``{"container": "raw", "encoding", "sample_rate"}`` and
``continue``; ``{"context_id", "cancel": true}``. Each context's text is
spoken as it arrives (``continue: true`` pieces in order) and answered with
``chunk`` messages (base64 audio, status 206) and a ``done`` (200) after the
last input; a bad request gets ``type: error`` (400). A refused key is a 401
on the handshake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from calls.providers.emulators.base import LOOPBACK, Fault, LoopThread, OfflineVoice

ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


@dataclass(slots=True)
class ConnectionRecord:
    """One websocket as the emulator saw it (the key itself is not kept)."""

    query: dict[str, str]
    headers: dict[str, str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0


def _forget(contexts: dict[str, _Context], context_id: str, _task: object) -> None:
    contexts.pop(context_id, None)


class _Context:
    def __init__(self) -> None:
        self.pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class CartesiaEmulator:
    """A loopback Cartesia TTS websocket; ``url`` goes in the SDK's ``websocket_base_url``.

    ``fault`` may change at any time: ``reject_key`` and ``http_500`` refuse
    the handshake, ``stall`` answers nothing, ``drop`` cuts the socket after
    the first chunk, ``slow_first_byte`` delays each context's first chunk.
    """

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("sk_car_test",),
        voice: OfflineVoice | None = None,
        port: int = 0,
        slow_first_byte_s: float = 2.0,
    ) -> None:
        self.api_keys = set(api_keys)
        self.voice = voice or OfflineVoice()
        self.fault: Fault | None = None
        self.slow_first_byte_s = slow_first_byte_s
        self.connections: list[ConnectionRecord] = []
        self.refused: list[int] = []  # handshake statuses refused
        self._port = port
        self._loop: LoopThread | None = None
        self._server: Server | None = None
        self.url = ""

    def start(self) -> CartesiaEmulator:
        self._loop = LoopThread("cartesia-emulator")
        self._server = self._loop.run(self._serve())
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{LOOPBACK}:{port}"
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        server = self._server

        async def close() -> None:
            if server is not None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 3)

        self._loop.run(close())
        self._loop.stop()
        self._loop = None

    def __enter__(self) -> CartesiaEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def _serve(self) -> Server:
        return await serve(
            self._handle,
            LOOPBACK,
            self._port,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=0.5,
        )

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
        if split.path != "/tts/websocket":
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "Not Found")
        authorization = request.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else query.get("api_key")
        if self.fault == "reject_key" or key not in self.api_keys:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "Invalid API key")
        if not (request.headers.get("Cartesia-Version") or query.get("cartesia_version")):
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "Cartesia-Version header is required")
        return None

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
                if context is None:
                    context = contexts[context_id] = _Context()
                    output = data["output_format"]
                    context.task = asyncio.create_task(
                        self._speak(ws, record, context_id, context, output["encoding"], int(output["sample_rate"]))
                    )
                    # Until its audio is all sent, a context can still be cancelled.
                    context.task.add_done_callback(functools.partial(_forget, contexts, context_id))
                if data["transcript"]:
                    context.pieces.put_nowait(data["transcript"])
                if data.get("continue") is False:
                    context.pieces.put_nowait(None)
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
        with contextlib.suppress(ConnectionClosed):
            while (piece := await context.pieces.get()) is not None:
                async for audio in self.voice.speak(piece, encoding=encoding, sample_rate=rate):
                    started = time.monotonic()
                    if first and self.fault == "slow_first_byte":
                        await asyncio.sleep(self.slow_first_byte_s)
                    first = False
                    message = {
                        "type": "chunk",
                        "context_id": context_id,
                        "data": base64.b64encode(audio).decode(),
                        "done": False,
                        "status_code": 206,
                        "step_time": round((time.monotonic() - started) * 1000, 3),
                    }
                    await ws.send(json.dumps(message))
                    record.audio_bytes += len(audio)
                    if self.fault == "drop":
                        ws.transport.abort()
                        return
            await ws.send(json.dumps({"type": "done", "context_id": context_id, "done": True, "status_code": 200}))
