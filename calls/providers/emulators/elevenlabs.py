"""ElevenLabs text-to-speech HTTP streaming on loopback, speaking with piper (or espeak-ng).

Speaks ``POST /v1/text-to-speech/{voice_id}/stream?output_format=...`` as the
``elevenlabs`` SDK sends it: the key in ``xi-api-key``, a JSON body with
``text`` and ``model_id`` (``voice_settings`` and the rest are accepted),
and a chunked body of raw audio in the requested format: ``ulaw_8000`` or
``pcm_<rate>`` (16-bit little-endian mono). MP3 and Opus formats are refused
with 422: the emulator has no encoder for them. Errors are ElevenLabs'
JSON ``{"detail": {"status", "message"}}``: 401 ``invalid_api_key``, 404
``voice_not_found``, 500 on the ``http_500`` fault.

Input streaming is there too: a websocket at
``/v1/text-to-speech/{voice_id}/stream-input?model_id=&output_format=``, the
key in ``xi-api-key`` (header or first message). The first message must be
the beginning of stream (``text`` a single space; ``voice_settings`` and
``generation_config.chunk_length_schedule`` taken); then text chunks, each
to end in a space, buffered until ``flush``, until the buffer reaches the
schedule's next length, or until the end of stream (``text`` empty). Each
generation comes back as messages with base64 ``audio`` and an
``alignment`` (``chars``, ``charStartTimesMs``, ``charDurationsMs``) of the
characters that audio speaks; after the end of stream, ``{"isFinal": true}``
and a close (1000). A wrong key or a bad first message is an error message
and a close (1008); ``inactivity_timeout`` seconds (20) without a message
close the socket too. What each stream was sent and spoke is kept
(``StreamRecord``), with any chunk that did not end in a space.

``GET /v1/voices`` lists the library as ``{"voices": [{"voice_id", "name",
"category", "labels", "description", "preview_url", ...}]}`` (the fields the
SDK's ``GetVoicesResponse`` reads), with the same key check and faults.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from calls.providers.emulators.base import DEFAULT_LIBRARY, EmulatedVoice, HttpEmulator, OfflineVoice

_STREAM_PATH = re.compile(r"^/v1/text-to-speech/([A-Za-z0-9_-]+)/stream$")
_SCHEDULE = (120, 160, 250, 290)  # ElevenLabs' default chunk_length_schedule
_ALIGN_CHUNK_S = 0.1  # audio per message, each with the alignment of the characters it speaks
_FORMATS = {"ulaw_8000": ("pcm_mulaw", 8000)} | {
    f"pcm_{rate}": ("pcm_s16le", rate) for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)
}
DEFAULT_FORMAT = "mp3_44100_128"  # ElevenLabs' own default, which the emulator cannot make


@dataclass(slots=True)
class RequestRecord:
    """One request as the emulator received it (the key itself is not kept)."""

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    key_ok: bool
    status: int = 0
    audio_bytes: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamRecord:
    """One input-streaming websocket: its query, what it was sent, what was spoken at each generation."""

    voice_id: str
    query: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)  # as sent, the key left out
    spoken: list[str] = field(default_factory=list)
    unspaced: list[str] = field(default_factory=list)  # text chunks that did not end in a space
    audio_bytes: int = 0
    final: bool = False
    close_code: int | None = None


class ElevenLabsEmulator(HttpEmulator):
    """A loopback ElevenLabs API; ``url`` goes in the SDK's ``base_url``.

    ``voices`` are the voice ids that exist (None: any); ``library`` is what
    the voice listing returns (default: ``voices`` by id, or three stock
    voices). ``fault`` may change
    at any time: ``drop`` cuts the connection after the first audio chunk,
    ``stall`` answers 200 and then sends nothing for ``stall_s``.
    """

    name = "elevenlabs"

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("el-test-key",),
        voices: tuple[str, ...] | None = None,
        library: tuple[EmulatedVoice, ...] | None = None,
        voice: OfflineVoice | None = None,
        port: int = 0,
        stall_s: float = 30.0,
        slow_first_byte_s: float = 2.0,
    ) -> None:
        super().__init__(port=port, slow_first_byte_s=slow_first_byte_s, stall_s=stall_s)
        self.api_keys = set(api_keys)
        self.voices = set(voices) if voices is not None else None
        if library is None:
            library = tuple(EmulatedVoice(v, v) for v in voices) if voices is not None else DEFAULT_LIBRARY
        self.library = library
        self.voice = voice or OfflineVoice()
        self.requests: list[RequestRecord] = []
        self.streams: list[StreamRecord] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/text-to-speech/{voice_id}/stream-input", self._stream_input),
            web.get("/{path:.*}", self._get),
            web.post("/{path:.*}", self._post),
        ]

    async def _stream_input(self, request: web.Request) -> web.StreamResponse:
        if self.fault == "http_500":
            return web.json_response({"detail": {"status": "internal_error", "message": "error"}}, status=500)
        voice_id = request.match_info["voice_id"]
        record = StreamRecord(voice_id=voice_id, query=dict(request.query))
        self.streams.append(record)
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        try:
            await self._input_stream(ws, request, record)
        finally:
            if not ws.closed:
                await ws.close()
            if record.close_code is None:  # the client closed first: its code
                record.close_code = ws.close_code
        return ws

    async def _input_stream(self, ws: web.WebSocketResponse, request: web.Request, record: StreamRecord) -> None:
        output_format = record.query.get("output_format", DEFAULT_FORMAT)
        timeout_s = float(record.query.get("inactivity_timeout", "20"))

        async def refuse(error: str, message: str) -> None:
            await ws.send_json({"message": message, "error": error, "code": 1008})
            # The code this side sent: aiohttp's ``close_code`` is the client's, when its own close
            # (on reading the error) crosses ours.
            record.close_code = 1008
            await ws.close(code=1008, message=message[:100].encode())

        key = request.headers.get("xi-api-key", "")
        schedule = list(_SCHEDULE)
        buffered = ""
        first = True
        while True:
            try:
                message = await ws.receive(timeout=timeout_s)
            except TimeoutError:
                return await refuse("input_timeout_exceeded", f"No input received for {timeout_s:g} s")
            if message.type != web.WSMsgType.TEXT:
                return  # closed by the client (a cut reply), or a frame this API never takes
            if self.fault == "stall":
                continue
            try:
                data = json.loads(message.data)
                text = data["text"]
            except (ValueError, KeyError, TypeError):
                return await refuse("invalid_message", "Every message needs a text field")
            key = data.pop("xi-api-key", data.pop("xi_api_key", key))
            record.messages.append(data)
            if first:
                first = False
                if self.fault == "reject_key" or key not in self.api_keys:
                    return await refuse("invalid_api_key", "Invalid API key")
                if text != " ":
                    return await refuse("invalid_message", "The first message must be a single space")
                if output_format not in _FORMATS:
                    return await refuse("invalid_request", "unsupported format (emulator: ulaw_8000 and pcm_<rate>)")
                if self.voices is not None and record.voice_id not in self.voices:
                    return await refuse("voice_not_found", f"A voice with voice_id {record.voice_id} was not found.")
                given = (data.get("generation_config") or {}).get("chunk_length_schedule")
                if given:
                    schedule = [int(n) for n in given]
                continue
            if text == "":  # the end of stream
                if buffered.strip() and not await self._generate(ws, request, record, buffered, output_format):
                    return
                await ws.send_json({"isFinal": True})
                record.final = True
                await ws.close(code=1000)
                return
            if not text.endswith(" "):
                record.unspaced.append(text)
            buffered += text
            due = schedule[0]  # the schedule's last length repeats
            if data.get("flush") is True or len(buffered) >= due:
                if schedule[1:]:
                    schedule.pop(0)
                if not await self._generate(ws, request, record, buffered, output_format):
                    return
                buffered = ""

    async def _generate(
        self, ws: web.WebSocketResponse, request: web.Request, record: StreamRecord, text: str, output_format: str
    ) -> bool:
        """Speak ``text`` as audio messages with their alignment; False when the socket was cut."""
        encoding, rate = _FORMATS[output_format]
        record.spoken.append(text.strip())
        audio = b"".join([chunk async for chunk in self.voice.speak(text.strip(), encoding=encoding, sample_rate=rate)])
        width = 1 if encoding == "pcm_mulaw" else 2
        step = int(rate * _ALIGN_CHUNK_S) * width
        pieces = [audio[i : i + step] for i in range(0, len(audio), step)] or [b""]
        chars = list(text)
        total_ms = len(audio) / width / rate * 1000
        per_char_ms = total_ms / max(1, len(chars))
        await self.first_byte_delay()
        sent_chars = 0
        for index, piece in enumerate(pieces):
            # The characters whose start falls in this piece (the last piece takes the rest).
            end_ms = (index + 1) * _ALIGN_CHUNK_S * 1000
            upto = len(chars) if index == len(pieces) - 1 else min(len(chars), int(end_ms / per_char_ms))
            mine = chars[sent_chars:upto]
            alignment = {
                "chars": mine,
                "charStartTimesMs": [int((sent_chars + i) * per_char_ms) for i in range(len(mine))],
                "charDurationsMs": [int(per_char_ms)] * len(mine),
            }
            sent_chars = upto
            await ws.send_json(
                {
                    "audio": base64.b64encode(piece).decode(),
                    "isFinal": None,
                    "alignment": alignment,
                    "normalizedAlignment": alignment,
                }
            )
            record.audio_bytes += len(piece)
            if self.fault == "drop":
                if request.transport is not None:
                    request.transport.abort()  # cut without a close frame
                return False
        return True

    async def _get(self, request: web.Request) -> web.StreamResponse:
        record = RequestRecord(
            path=request.path,
            query=dict(request.query),
            body={},
            key_ok=request.headers.get("xi-api-key", "") in self.api_keys,
            headers={k.lower(): v for k, v in request.headers.items() if k.lower() != "xi-api-key"},
        )
        self.requests.append(record)
        if self.fault == "stall":
            await asyncio.sleep(self.stall_s)
            return _error(record, 504, "timeout", "stalled")  # long after the client gave up
        if self.fault == "http_500":
            return _error(record, 500, "internal_error", "An internal error occurred.")
        if request.path != "/v1/voices":
            return _error(record, 404, "not_found", "Not Found")
        if self.fault == "reject_key" or not record.key_ok:
            return _error(record, 401, "invalid_api_key", "Invalid API key")
        record.status = 200
        voices = [
            {
                "voice_id": voice.voice_id,
                "name": voice.name,
                "category": "premade",
                "labels": {"gender": voice.gender, "language": voice.language},
                "description": voice.description or None,
                "preview_url": None,
                "available_for_tiers": [],
                "high_quality_base_model_ids": ["eleven_flash_v2_5"],
                "is_owner": False,
                "is_legacy": False,
            }
            for voice in self.library
        ]
        return web.json_response({"voices": voices})

    async def _post(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record = RequestRecord(
            path=request.path,
            query=dict(request.query),
            body=body if isinstance(body, dict) else {},
            key_ok=request.headers.get("xi-api-key", "") in self.api_keys,
            headers={k.lower(): v for k, v in request.headers.items() if k.lower() != "xi-api-key"},
        )
        self.requests.append(record)
        match = _STREAM_PATH.match(request.path)
        if self.fault == "http_500":
            return _error(record, 500, "internal_error", "An internal error occurred.")
        if match is None:
            return _error(record, 404, "not_found", "Not Found")
        if self.fault == "reject_key" or not record.key_ok:
            return _error(record, 401, "invalid_api_key", "Invalid API key")
        if self.voices is not None and match.group(1) not in self.voices:
            return _error(record, 404, "voice_not_found", f"A voice with voice_id {match.group(1)} was not found.")
        text = record.body.get("text")
        output_format = record.query.get("output_format", DEFAULT_FORMAT)
        if not isinstance(text, str) or not text.strip() or output_format not in _FORMATS:
            detail = "text is required" if not isinstance(text, str) or not text.strip() else "unsupported format"
            return _error(record, 422, "invalid_request", f"{detail} (emulator: ulaw_8000 and pcm_<rate> only)")
        encoding, rate = _FORMATS[output_format]
        record.status = 200
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "audio/basic" if encoding == "pcm_mulaw" else "audio/pcm",
                "x-character-count": str(len(text)),
                "request-id": f"req_{time.monotonic_ns():x}",
            },
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        if self.fault == "stall":
            await asyncio.sleep(self.stall_s)
            return response
        await self.first_byte_delay()
        async for data in self.voice.speak(text, encoding=encoding, sample_rate=rate):
            await response.write(data)
            record.audio_bytes += len(data)
            if self.fault == "drop":
                # Cut without the terminating chunk: the client sees a broken body.
                if request.transport is not None:
                    request.transport.abort()
                return response
        await response.write_eof()
        return response


def _error(record: RequestRecord, status: int, code: str, message: str) -> web.Response:
    record.status = status
    return web.json_response({"detail": {"status": code, "message": message}}, status=status)
