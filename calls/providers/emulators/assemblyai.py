"""AssemblyAI Universal Streaming v3 on loopback, hearing real audio with the offline Whisper.

Speaks the documented protocol as the ``assemblyai`` SDK uses it: a
websocket at ``/v3/ws?<session parameters>`` (booleans arrive as ``True``,
lists as JSON), the key in the ``Authorization`` header (no "Bearer") or a
temporary ``token`` query parameter; binary frames of raw audio of 50-1000 ms;
JSON ``UpdateConfiguration``, ``ForceEndpoint``, ``KeepAlive`` and
``Terminate`` from the client; ``Begin``, ``Turn`` and ``Termination`` from
the server; on an error an ``Error`` frame and a close with the same code
(1008 for a refused key, 3006 for a bad message, 3007 for a frame outside
50-1000 ms).

Turns are found by frame energy: speech, then ``min_turn_silence`` ms of
quiet (400 by default, ``ForceEndpoint`` at once) ends the turn. The turn's
audio is transcribed with Whisper, biased by the key terms; the final comes
unformatted (lower case, no punctuation) and, with ``format_turns``, again
formatted. While a turn grows a partial is sent every ``partial_every_s``
seconds of audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from calls.audio import mulaw_decode, resample
from calls.pipeline.protocols import Pcm16, SpeechToText, SttHints
from calls.providers.emulators.base import WebsocketEmulator, offline_listener

SPEECH_MODELS = (
    "universal-streaming-english",
    "universal-streaming-multilingual",
    "u3-rt-pro",
    "whisper-rt",
)
ENCODINGS = {"pcm_s16le": 2, "pcm_mulaw": 1}  # bytes per sample
FRAME_S = 0.02
# Frames above this RMS (int16) are speech; phone-line silence and piper's pauses are far below.
SPEECH_RMS = 300.0
_PUNCTUATION = re.compile(r"[^\w\s'-]")


def _boolean(value: str) -> bool:
    # The Python SDK sends True/False, other clients true/false.
    return value.strip().lower() in ("true", "1")


def unformatted(text: str) -> str:
    """How an unformatted turn reads: lower case, no punctuation."""
    return " ".join(_PUNCTUATION.sub(" ", text).lower().split())


class SessionRefusedError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class SessionConfig:
    sample_rate: int
    encoding: str
    speech_model: str
    format_turns: bool = False
    keyterms: list[str] = field(default_factory=list)
    min_turn_silence_ms: int = 400
    max_turn_silence_ms: int = 1280

    @classmethod
    def from_query(cls, query: dict[str, str]) -> SessionConfig:
        try:
            sample_rate = int(query.get("sample_rate", ""))
        except ValueError:
            raise SessionRefusedError(3006, "Invalid Message: sample_rate must be a positive integer") from None
        encoding = query.get("encoding", "pcm_s16le")
        if sample_rate <= 0 or encoding not in ENCODINGS:
            raise SessionRefusedError(3006, f"Invalid Message: unsupported audio {encoding} at {sample_rate}")
        speech_model = query.get("speech_model", "")
        if speech_model not in SPEECH_MODELS:
            raise SessionRefusedError(3006, f"Invalid Message: speech_model {speech_model!r} is required")
        config = cls(sample_rate=sample_rate, encoding=encoding, speech_model=speech_model)
        config.update(query)
        return config

    def update(self, values: dict[str, Any]) -> None:
        if "format_turns" in values:
            value = values["format_turns"]
            self.format_turns = value if isinstance(value, bool) else _boolean(str(value))
        if "keyterms_prompt" in values:
            terms = values["keyterms_prompt"]
            terms = json.loads(terms) if isinstance(terms, str) else terms
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise SessionRefusedError(3006, "Invalid Message: keyterms_prompt must be a list of strings")
            self.keyterms = list(terms)
        silence = values.get("min_turn_silence", values.get("min_end_of_turn_silence_when_confident"))
        if silence is not None:
            self.min_turn_silence_ms = int(silence)
        if values.get("max_turn_silence") is not None:
            self.max_turn_silence_ms = int(values["max_turn_silence"])


@dataclass(slots=True)
class SessionRecord:
    """What one session saw, for tests: how it authenticated, its parameters and what it sent."""

    query: dict[str, str]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    frames: int = 0
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Seconds each final took to transcribe: the emulator's own recognition time.
    decode_s: list[float] = field(default_factory=list)
    closed_code: int | None = None


class _Session:
    def __init__(
        self, emulator: AssemblyAIEmulator, ws: ServerConnection, config: SessionConfig, record: SessionRecord
    ):
        self.emulator = emulator
        self.ws = ws
        self.config = config
        self.record = record
        self.started = time.monotonic()
        self.audio_s = 0.0
        self.turn_order = 0
        self.turn_audio: list[Pcm16] = []
        self.turn_start_s = 0.0
        self.silence_s = 0.0
        self.since_partial_s = 0.0
        self.partial_task: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.emulator.fault == "stall":
            return
        self.record.sent.append(message)
        await self.ws.send(json.dumps(message))

    async def run(self) -> None:
        await self.emulator.first_byte_delay()
        expires = datetime.now(UTC) + timedelta(hours=3)
        await self.send({"type": "Begin", "id": str(uuid.uuid4()), "expires_at": int(expires.timestamp())})
        async for message in self.ws:
            if isinstance(message, bytes):
                if self.emulator.fault == "drop":
                    self.ws.transport.abort()
                    return
                await self.audio(message)
            else:
                if not await self.control(message):
                    return

    async def control(self, text: str) -> bool:
        try:
            message = json.loads(text)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            await self.fail(3006, f"Invalid JSON: {text[:80]}")
            return False
        if kind == "Terminate":
            await self.end_turn()
            await self.send(
                {
                    "type": "Termination",
                    "audio_duration_seconds": int(self.audio_s),
                    "session_duration_seconds": int(time.monotonic() - self.started),
                }
            )
            await self.ws.close(1000)
            return False
        if kind == "ForceEndpoint":
            await self.end_turn()
        elif kind == "UpdateConfiguration":
            update = {k: v for k, v in message.items() if k != "type"}
            self.record.updates.append(update)
            try:
                self.config.update(update)
            except SessionRefusedError as exc:
                await self.fail(exc.code, exc.message)
                return False
        elif kind != "KeepAlive":
            await self.fail(3006, f"Invalid Message Type: {kind}")
            return False
        return True

    async def fail(self, code: int, message: str) -> None:
        await self.send({"type": "Error", "error_code": code, "error": message})
        await self.ws.close(code, message[:120])

    async def audio(self, data: bytes) -> None:
        width = ENCODINGS[self.config.encoding]
        duration_ms = len(data) / width / self.config.sample_rate * 1000
        if not 50 <= round(duration_ms) <= 1000:
            await self.fail(3007, f"Input duration violation: {duration_ms:.0f} ms. Expected between 50 and 1000 ms")
            return
        self.record.audio += data
        self.record.frames += 1
        pcm = mulaw_decode(data) if self.config.encoding == "pcm_mulaw" else np.frombuffer(data, dtype="<i2")
        frame = max(1, int(self.config.sample_rate * FRAME_S))
        for start in range(0, len(pcm), frame):
            await self.frame(pcm[start : start + frame])

    async def frame(self, pcm: Pcm16) -> None:
        duration = len(pcm) / self.config.sample_rate
        voiced = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > SPEECH_RMS
        if voiced and not self.turn_audio:
            self.turn_start_s = self.audio_s
        self.audio_s += duration
        if voiced:
            self.silence_s = 0.0
        elif self.turn_audio:
            self.silence_s += duration
        if not self.turn_audio and not voiced:
            return
        self.turn_audio.append(pcm)
        self.since_partial_s += duration
        if self.silence_s * 1000 >= self.config.min_turn_silence_ms:
            await self.end_turn()
        elif self.since_partial_s >= self.emulator.partial_every_s and self.partial_task is None:
            self.since_partial_s = 0.0
            self.partial_task = asyncio.create_task(self.partial(np.concatenate(self.turn_audio)))

    async def partial(self, audio: Pcm16) -> None:
        try:
            text = await self.transcribe(audio)
            if text and self.turn_audio:
                await self.send(self.turn(unformatted(text), end_of_turn=False, formatted=False, audio=audio))
        finally:
            self.partial_task = None

    async def end_turn(self) -> None:
        if not self.turn_audio:
            return
        audio = np.concatenate(self.turn_audio)
        self.turn_audio, self.silence_s, self.since_partial_s = [], 0.0, 0.0
        if self.partial_task is not None:
            self.partial_task.cancel()
            self.partial_task = None
        started = time.monotonic()
        text = await self.transcribe(audio)
        self.record.decode_s.append(round(time.monotonic() - started, 3))
        if not text:
            return
        await self.send(self.turn(unformatted(text), end_of_turn=True, formatted=False, audio=audio))
        if self.config.format_turns:
            await self.send(self.turn(text, end_of_turn=True, formatted=True, audio=audio))
        self.turn_order += 1

    async def transcribe(self, audio: Pcm16) -> str:
        stt = self.emulator.stt
        wide = resample(audio, self.config.sample_rate, stt.sample_rate)
        hints = SttHints(vocabulary=tuple(self.config.keyterms))
        return (await stt.transcribe(wide, hints=hints)).text.strip()

    def turn(self, text: str, *, end_of_turn: bool, formatted: bool, audio: Pcm16) -> dict[str, Any]:
        tokens = text.split()
        start_ms = int(self.turn_start_s * 1000)
        span_ms = max(1, int(len(audio) / self.config.sample_rate * 1000))
        step = span_ms / max(1, len(tokens))
        words = [
            {
                "start": start_ms + int(i * step),
                "end": start_ms + int((i + 1) * step),
                "text": token,
                "confidence": self.emulator.word_confidence,
                "word_is_final": True,
            }
            for i, token in enumerate(tokens)
        ]
        return {
            "type": "Turn",
            "turn_order": self.turn_order,
            "turn_is_formatted": formatted,
            "end_of_turn": end_of_turn,
            "transcript": text,
            "utterance": text if end_of_turn else "",
            "end_of_turn_confidence": 0.9 if end_of_turn else 0.1,
            "words": words,
        }


class AssemblyAIEmulator(WebsocketEmulator):
    """A loopback AssemblyAI streaming server; ``url`` goes in the SDK's ``api_host``.

    ``api_keys`` are accepted in the ``Authorization`` header; ``token()``
    issues a temporary token for ``?token=``. ``fault`` may change at any
    time and applies to sessions in progress and new ones.
    """

    name = "assemblyai"

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("aai-test-key",),
        stt: SpeechToText | None = None,
        port: int = 0,
        partial_every_s: float = 1.0,
        word_confidence: float = 0.93,
        slow_first_byte_s: float = 2.0,
    ) -> None:
        super().__init__(port=port, slow_first_byte_s=slow_first_byte_s)
        self.api_keys = set(api_keys)
        self.stt = offline_listener(stt)
        self.partial_every_s = partial_every_s
        self.word_confidence = word_confidence
        self.sessions: list[SessionRecord] = []
        self._tokens: set[str] = set()

    def token(self) -> str:
        """A temporary token, as ``GET /v3/token`` hands out."""
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return token

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.fault == "http_500":
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        if urlsplit(request.path).path != "/v3/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        query = dict(parse_qsl(urlsplit(request.path).query))
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        record = SessionRecord(query=query, headers=headers)
        self.sessions.append(record)
        authorization = headers.get("authorization", "")
        token = query.get("token", "")
        authorized = authorization in self.api_keys or (token != "" and token in self._tokens)
        try:
            if self.fault == "reject_key" or not authorized:
                reason = "Missing Authorization header" if not (authorization or token) else "Invalid API key"
                raise SessionRefusedError(1008, f"Unauthorized Connection: {reason}")
            config = SessionConfig.from_query(query)
        except SessionRefusedError as exc:
            message = {"type": "Error", "error_code": exc.code, "error": exc.message}
            record.sent.append(message)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(message))
                await ws.close(exc.code, exc.message[:120])
            record.closed_code = exc.code
            return
        session = _Session(self, ws, config, record)
        with contextlib.suppress(ConnectionClosed):
            await session.run()
        record.closed_code = ws.close_code
