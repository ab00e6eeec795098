"""Cloud text-to-speech: ElevenLabs HTTP streaming, through the official SDK.

Each sentence the agent says is one ``POST /v1/text-to-speech/{voice}/stream``
(``text_to_speech.stream`` in the SDK): the audio streams back while it is
made. ``ulaw_8000`` (the default) is the carrier's own format, so the
pipeline's PCM is exactly what ElevenLabs made; ``pcm_<rate>`` gives raw
16-bit PCM at that rate. Either way chunks come out as ``Pcm16`` at
``sample_rate``, the format's rate.

The SDK's own retries are off: a failing request must reach the fallback
chain at once, which moves the call to the next engine. Failures surface as
``EngineError`` with the HTTP status, never the key.

With ``input_streaming`` the sentences of one reply (the session's
``ReplyScope``) go through one websocket instead, ElevenLabs' input
streaming (``/v1/text-to-speech/{voice}/stream-input``): the voice hears
the reply as one text that arrives in pieces. The socket opens with the
first sentence (the "beginning of stream": a single space, the voice
settings and a short chunk schedule), each sentence is sent ending in a
space with ``flush`` so it is spoken at once, and the reply's end sends the
"end of stream" (empty text); the server answers with ``isFinal`` and
closes. A sentence's audio ends where the audio messages' ``alignment``
has covered its characters, with the tail that comes right after (audio
aligned to no letter); a message that starts on new letters is the next
sentence's. A reply cut short closes the socket. The SDK's
only client for this endpoint is synchronous (a thread per reply, 10 ms
polling, no flush), so the documented protocol is spoken here with the
``websockets`` client the SDK itself uses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import re
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from calls.audio import mulaw_decode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16
from calls.pipeline.reply_scope import ReplyScope, current_reply
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice, sdk_load, websocket_opening

if TYPE_CHECKING:
    from elevenlabs.client import AsyncElevenLabs

# Formats the pipeline can play without a decoder: μ-law at 8 kHz and raw PCM.
_FORMAT = re.compile(r"^(ulaw_8000|pcm_(8000|16000|22050|24000|32000|44100|48000))$")
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", one of ElevenLabs' default voices
DEFAULT_MODEL = "eleven_flash_v2_5"
# After the audio of a sentence's last letter, how long its tail (audio with no letters) may take to come.
TAIL_S = 0.05


def format_rate(output_format: str) -> int:
    """The sample rate of an ElevenLabs ``output_format`` the pipeline can play; ValueError for others."""
    if not _FORMAT.match(output_format):
        raise ValueError(f"output_format {output_format!r}: use ulaw_8000 or pcm_<rate>")
    return int(output_format.rsplit("_", 1)[1])


class AudioDecoder:
    """Bytes of one streamed response to ``Pcm16``; a sample split across two chunks is kept for the next."""

    def __init__(self, output_format: str) -> None:
        self.mulaw = output_format.startswith("ulaw")
        self._carry = b""

    def decode(self, data: bytes) -> Pcm16:
        if self.mulaw:
            return mulaw_decode(data)
        data = self._carry + data
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2").astype(np.int16)


def _letters(text: str) -> int:
    """Characters that count when audio is matched to text: spacing may differ between what was sent and aligned."""
    return sum(1 for c in text if not c.isspace())


class _InputStream:
    """One reply's input-streaming websocket: characters sent, characters the audio has covered so far."""

    def __init__(self, ws: Any, decoder: AudioDecoder) -> None:
        self.ws = ws
        self.decoder = decoder
        self.sent = 0
        self.covered = 0
        self.carry: dict[str, Any] | None = None  # a message read ahead: the next sentence's first audio
        self.broken = False
        self.closed = False


class ElevenLabsTextToSpeech:
    """``TextToSpeech`` over ElevenLabs; shared by every call in the process.

    ``api_key`` comes from the tenant's ``key_ref``. ``base_url`` points at
    another server with ElevenLabs' API (the loopback emulator). ``stability``,
    ``similarity_boost`` and ``speed`` are the voice settings of each request;
    unset, the voice's stored settings apply.
    """

    name = "elevenlabs"

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str = DEFAULT_VOICE,
        model_id: str = DEFAULT_MODEL,
        output_format: str = "ulaw_8000",
        base_url: str = "",
        optimize_streaming_latency: int | None = None,
        stability: float | None = None,
        similarity_boost: float | None = None,
        speed: float | None = None,
        timeout_s: float = 10.0,
        input_streaming: bool = False,
    ) -> None:
        if not api_key:
            raise ValueError("ElevenLabs needs an API key (key_ref)")
        self.sample_rate = format_rate(output_format)
        sdk_load("elevenlabs.client", "elevenlabs.types")
        self._api_key = api_key
        self.voice_id = voice_id
        self.model_id = model_id
        self.output_format = output_format
        self.base_url = base_url
        self.optimize_streaming_latency = optimize_streaming_latency
        self.stability = stability
        self.similarity_boost = similarity_boost
        self.speed = speed
        self.timeout_s = timeout_s
        self.input_streaming = input_streaming
        # One client (and its connection pool) per event loop: httpx pools are bound to their loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncElevenLabs] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> AsyncElevenLabs:
        from elevenlabs.client import AsyncElevenLabs

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = AsyncElevenLabs(
                api_key=self._api_key, base_url=self.base_url or None, timeout=self.timeout_s
            )
        return client

    def _voice_settings(self) -> dict[str, float]:
        voice = {"stability": self.stability, "similarity_boost": self.similarity_boost, "speed": self.speed}
        return {k: v for k, v in voice.items() if v is not None}

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Stream ``text`` as PCM chunks at ``sample_rate``; with input streaming, as part of its reply."""
        scope = current_reply() if self.input_streaming else None
        chunks = self._sentence(text) if scope is None else self._streamed(scope, text)
        async for chunk in chunks:
            yield chunk

    def _stream_input_url(self) -> str:
        base = (self.base_url or "https://api.elevenlabs.io").rstrip("/")
        scheme, _, rest = base.partition("://")
        query = f"model_id={self.model_id}&output_format={self.output_format}"
        return f"{'ws' if scheme == 'http' else 'wss'}://{rest}/v1/text-to-speech/{self.voice_id}/stream-input?{query}"

    async def _open(self) -> _InputStream:
        from websockets.asyncio.client import connect

        async with websocket_opening(self.name, timeout_s=self.timeout_s, refused="request failed"):
            ws = await connect(
                self._stream_input_url(),
                additional_headers={"xi-api-key": self._api_key},
                ping_interval=None,
                close_timeout=0.5,
            )
        beginning: dict[str, Any] = {"text": " ", "generation_config": {"chunk_length_schedule": [50]}}
        if self._voice_settings():
            beginning["voice_settings"] = self._voice_settings()
        stream = _InputStream(ws, AudioDecoder(self.output_format))
        await self._send(stream, beginning)
        return stream

    async def _send(self, stream: _InputStream, message: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await stream.ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            stream.broken = True
            raise EngineError(self.name, "error", _closed_detail(exc)) from None

    async def _streamed(self, scope: ReplyScope, text: str) -> AsyncIterator[Pcm16]:
        """One sentence of a reply on the reply's input stream: sent with a flush, its audio until aligned."""

        stream: _InputStream | None = scope.state(self)
        if stream is None or stream.broken or stream.closed:
            stream = await self._open()
            scope.state_set(self, stream, functools.partial(self._stream_end, stream))
        piece = text.strip() + " "  # ElevenLabs wants every chunk to end in a space
        stream.sent += _letters(piece)
        finished = False
        try:
            await self._send(stream, {"text": piece, "flush": True})
            carried, stream.carry = stream.carry, None
            while True:
                covered = stream.covered >= stream.sent
                # Once its letters are covered, the sentence's audio may still have a tail of
                # messages with no letters: they come at once after the last lettered one.
                message = carried or await self._receive(stream, TAIL_S if covered else self.timeout_s)
                carried = None
                if message is None:
                    break  # no tail (or none left)
                letters = sum(_letters(c) for c in (message.get("alignment") or {}).get("chars") or [])
                if covered and letters:
                    stream.carry = message  # the next sentence's first audio
                    break
                stream.covered += letters
                if message.get("audio"):
                    pcm = stream.decoder.decode(base64.b64decode(message["audio"]))
                    if pcm.size:
                        yield pcm
                if message.get("isFinal"):
                    break
            finished = True
        finally:
            if not finished:
                stream.broken = True
                await self._stream_end(stream, completed=False)

    async def _receive(self, stream: _InputStream, wait_s: float) -> dict[str, Any] | None:
        """The next message of the stream; None when ``wait_s`` passes on a sentence already covered."""
        from websockets.exceptions import ConnectionClosed

        try:
            async with asyncio.timeout(wait_s):
                raw = await stream.ws.recv()
        except TimeoutError:
            if wait_s == TAIL_S:
                return None
            raise EngineError(self.name, "deadline", f"no audio within {self.timeout_s} s") from None
        except ConnectionClosed as exc:
            raise EngineError(self.name, "error", _closed_detail(exc)) from None
        message: dict[str, Any] = json.loads(raw)
        if message.get("error") or (message.get("message") and not message.get("audio")):
            what = "key rejected" if message.get("error") == "invalid_api_key" else "request failed"
            raise EngineError(self.name, "error", f"{what} ({message.get('error') or 'error'})")
        return message

    async def _stream_end(self, stream: _InputStream, completed: bool) -> None:
        """The reply is over: the end of stream when all was said (the server then closes), else a close now."""
        if stream.closed:
            return
        stream.closed = True
        with contextlib.suppress(Exception):
            if completed and not stream.broken:
                await stream.ws.send(json.dumps({"text": ""}))
                # The server says isFinal and closes; nothing more is needed from it.
                task = asyncio.get_running_loop().create_task(_drain(stream.ws))
                _DRAINING.add(task)  # held until done: a task nobody references may be collected mid-flight
                task.add_done_callback(_DRAINING.discard)
                return
            await stream.ws.close()

    async def _sentence(self, text: str) -> AsyncIterator[Pcm16]:
        """One sentence over HTTP streaming."""
        from elevenlabs.core.api_error import ApiError
        from elevenlabs.types import VoiceSettings

        # Unset options stay off the request, so the voice's stored settings apply.
        optional: dict[str, Any] = {}
        voice: dict[str, Any] = {
            "stability": self.stability,
            "similarity_boost": self.similarity_boost,
            "speed": self.speed,
        }
        if any(v is not None for v in voice.values()):
            optional["voice_settings"] = VoiceSettings(**{k: v for k, v in voice.items() if v is not None})
        if self.optimize_streaming_latency is not None:
            optional["optimize_streaming_latency"] = self.optimize_streaming_latency
        decoder = AudioDecoder(self.output_format)
        try:
            chunks = self._client().text_to_speech.stream(
                self.voice_id,
                text=text,
                model_id=self.model_id,
                output_format=self.output_format,
                request_options={"max_retries": 0, "chunk_size": 1600},
                **optional,
            )
            async for data in chunks:
                pcm = decoder.decode(data)
                if pcm.size:
                    yield pcm
        except ApiError as exc:
            status = exc.status_code
            what = "key rejected" if status in (401, 403) else "request failed"
            raise EngineError(self.name, "error", f"{what} (HTTP {status})") from None
        except httpx.TimeoutException as exc:
            raise EngineError(self.name, "deadline", f"{type(exc).__name__} after {self.timeout_s} s") from None
        except httpx.HTTPError as exc:
            raise EngineError(self.name, "error", f"{type(exc).__name__}: {exc}") from None


_DRAINING: set[asyncio.Task[None]] = set()


def _closed_detail(exc: Exception) -> str:
    received = getattr(exc, "rcvd", None)
    code = received.code if received is not None else 1006
    reason = f": {received.reason}" if received is not None and received.reason else ""
    return f"connection closed (code {code}{reason})"


async def _drain(ws: Any) -> None:
    """Read what the server still sends after the end of stream until it closes, within a bound."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            async for _ in ws:
                pass
    with contextlib.suppress(Exception):
        await ws.close()


def elevenlabs_voices(*, api_key: str, base_url: str = "", timeout_s: float = 3.0) -> list[ProviderVoice]:
    """The voices the key's account may use (``GET /v1/voices``), by name.

    Also what "Test this key" asks: a refused key, an error status or no
    answer within ``timeout_s`` raise ``ProviderCallError``.
    """
    sdk_load("elevenlabs.client")
    from elevenlabs.client import ElevenLabs
    from elevenlabs.core.api_error import ApiError

    client = ElevenLabs(api_key=api_key, base_url=base_url or None, timeout=timeout_s)
    try:
        listing = client.voices.get_all(request_options={"max_retries": 0})
    except ApiError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise ProviderCallError(KeyCheck("refused", f"ElevenLabs refused the key (HTTP {status}).")) from None
        raise ProviderCallError(KeyCheck("failed", f"ElevenLabs answered with an error (HTTP {status}).")) from None
    except httpx.HTTPError as exc:
        raise ProviderCallError(
            KeyCheck("unreachable", f"ElevenLabs was not reached within {timeout_s:g} s ({type(exc).__name__}).")
        ) from None
    voices = [
        ProviderVoice(
            voice_id=voice.voice_id,
            name=voice.name or voice.voice_id,
            description=voice.description or ", ".join(sorted((voice.labels or {}).values())),
            language=(voice.labels or {}).get("language", ""),
        )
        for voice in listing.voices
    ]
    return sorted(voices, key=lambda v: (v.name.lower(), v.voice_id))
