"""ElevenLabs text-to-speech HTTP streaming on loopback, speaking with piper (or espeak-ng).

Speaks ``POST /v1/text-to-speech/{voice_id}/stream?output_format=...`` as the
``elevenlabs`` SDK sends it: the key in ``xi-api-key``, a JSON body with
``text`` and ``model_id`` (``voice_settings`` and the rest are accepted),
and a chunked body of raw audio in the requested format: ``ulaw_8000`` or
``pcm_<rate>`` (16-bit little-endian mono). MP3 and Opus formats are refused
with 422: the emulator has no encoder for them. Errors are ElevenLabs'
JSON ``{"detail": {"status", "message"}}``: 401 ``invalid_api_key``, 404
``voice_not_found``, 500 on the ``http_500`` fault.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from calls.providers.emulators.base import LOOPBACK, Fault, OfflineVoice

_STREAM_PATH = re.compile(r"^/v1/text-to-speech/([A-Za-z0-9_-]+)/stream$")
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


class ElevenLabsEmulator:
    """A loopback ElevenLabs API; ``url`` goes in the SDK's ``base_url``.

    ``voices`` are the voice ids that exist (None: any). ``fault`` may change
    at any time: ``drop`` cuts the connection after the first audio chunk,
    ``stall`` answers 200 and then sends nothing for ``stall_s``.
    """

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("el-test-key",),
        voices: tuple[str, ...] | None = None,
        voice: OfflineVoice | None = None,
        port: int = 0,
        stall_s: float = 30.0,
        slow_first_byte_s: float = 2.0,
    ) -> None:
        self.api_keys = set(api_keys)
        self.voices = set(voices) if voices is not None else None
        self.voice = voice or OfflineVoice()
        self.fault: Fault | None = None
        self.stall_s = stall_s
        self.slow_first_byte_s = slow_first_byte_s
        self.requests: list[RequestRecord] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ElevenLabsEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._server = ThreadingHTTPServer((LOOPBACK, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="elevenlabs-emulator", daemon=True)
        self._thread.start()
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ElevenLabsEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: ElevenLabsEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry nothing a test needs; keep test output clean

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"detail": {"status": code, "message": message}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        owner = self.owner
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        key = self.headers.get("xi-api-key", "")
        record = RequestRecord(
            path=split.path,
            query=query,
            body=body if isinstance(body, dict) else {},
            key_ok=key in owner.api_keys,
            headers={k.lower(): v for k, v in self.headers.items() if k.lower() != "xi-api-key"},
        )
        owner.requests.append(record)
        match = _STREAM_PATH.match(split.path)
        if owner.fault == "http_500":
            record.status = 500
            return self._error(500, "internal_error", "An internal error occurred.")
        if match is None:
            record.status = 404
            return self._error(404, "not_found", "Not Found")
        if owner.fault == "reject_key" or not record.key_ok:
            record.status = 401
            return self._error(401, "invalid_api_key", "Invalid API key")
        if owner.voices is not None and match.group(1) not in owner.voices:
            record.status = 404
            return self._error(404, "voice_not_found", f"A voice with voice_id {match.group(1)} was not found.")
        text = record.body.get("text")
        output_format = query.get("output_format", DEFAULT_FORMAT)
        if not isinstance(text, str) or not text.strip() or output_format not in _FORMATS:
            record.status = 422
            detail = "text is required" if not isinstance(text, str) or not text.strip() else "unsupported format"
            return self._error(422, "invalid_request", f"{detail} (emulator: ulaw_8000 and pcm_<rate> only)")
        encoding, rate = _FORMATS[output_format]
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "audio/basic" if encoding == "pcm_mulaw" else "audio/pcm")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-character-count", str(len(text)))
        self.send_header("request-id", f"req_{time.monotonic_ns():x}")
        self.end_headers()
        self.wfile.flush()
        if owner.fault == "stall":
            time.sleep(owner.stall_s)
            return
        if owner.fault == "slow_first_byte":
            time.sleep(owner.slow_first_byte_s)
        asyncio.run(self._stream(text, encoding, rate, record))

    async def _stream(self, text: str, encoding: str, rate: int, record: RequestRecord) -> None:
        try:
            async for data in self.owner.voice.speak(text, encoding=encoding, sample_rate=rate):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                record.audio_bytes += len(data)
                if self.owner.fault == "drop":
                    # Cut without the terminating chunk: the client sees a broken body.
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
