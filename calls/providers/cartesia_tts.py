"""Cloud text-to-speech: Cartesia's TTS websocket, through the official SDK.

One websocket per event loop is kept open and shared by every call's
sentences: each sentence is a context of its own (a generation request with
``continue: false``), and the SDK's connection multiplexes them. Audio comes
back as ``chunk`` messages in the requested raw format: ``pcm_mulaw`` at
8 kHz by default, the carrier's own, or ``pcm_s16le`` at any rate.

The connection's messages are read by one task here, through the SDK's
``recv``: a dropped socket then fails every sentence in flight at once
(the SDK's per-context helper would wait forever), and the next sentence
opens a fresh connection. A refused key, a 5xx on the handshake, a
``type: error`` message or a drop surface as ``EngineError``, never with
the key in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np

from calls.audio import mulaw_decode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16
from calls.providers.sdk import sdk_load

if TYPE_CHECKING:
    from cartesia import AsyncCartesia
    from cartesia.lib._tts import AsyncTTSResourceConnection
    from cartesia.types.websocket_response import WebsocketResponse

DEFAULT_VOICE = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"  # the SDK's own default voice
DEFAULT_MODEL = "sonic-3"
ENCODINGS = ("pcm_mulaw", "pcm_s16le")


class _Link:
    """One open websocket and the sentences (contexts) waiting on it."""

    def __init__(self, name: str, connection: AsyncTTSResourceConnection) -> None:
        self.name = name
        self.connection = connection
        self.contexts: dict[str, asyncio.Queue[WebsocketResponse | EngineError]] = {}
        self.failure: EngineError | None = None
        self.reader = asyncio.create_task(self._read(), name="cartesia-reader")

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        failure = EngineError(self.name, "error", "the connection closed")
        try:
            while True:
                event = await self.connection.recv()
                queue = self.contexts.get(getattr(event, "context_id", None) or "")
                if queue is not None:
                    queue.put_nowait(event)
                elif event.type == "error":
                    # An error for no context (or an unknown one) concerns them all.
                    failure = EngineError(self.name, "error", _error_detail(event))
                    break
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            failure = EngineError(self.name, "error", f"connection closed (code {code})")
        except Exception as exc:  # noqa: BLE001 - whatever breaks the socket fails its sentences
            failure = EngineError(self.name, "error", f"{type(exc).__name__}: {exc}")
        self.failure = failure
        for queue in self.contexts.values():
            queue.put_nowait(failure)
        with contextlib.suppress(Exception):
            await self.connection.close()

    def open_context(self) -> tuple[str, asyncio.Queue[WebsocketResponse | EngineError]]:
        context_id = str(uuid.uuid4())
        queue: asyncio.Queue[WebsocketResponse | EngineError] = asyncio.Queue()
        self.contexts[context_id] = queue
        return context_id, queue

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader
        with contextlib.suppress(Exception):
            await self.connection.close()


def _error_detail(event: Any) -> str:
    status = getattr(event, "status_code", None)
    title = getattr(event, "title", None) or getattr(event, "error_code", None) or "error"
    return f"{title} (status {status})"


class CartesiaTextToSpeech:
    """``TextToSpeech`` over Cartesia's websocket; shared by every call in the process.

    ``api_key`` comes from the tenant's ``key_ref``; ``base_url`` and
    ``websocket_url`` point at another server with Cartesia's API (the
    loopback emulator). ``sample_rate`` is the rate asked for (8000 with
    ``pcm_mulaw``); ``speed`` and ``volume`` go in the generation config.
    """

    name = "cartesia"

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str = DEFAULT_VOICE,
        model_id: str = DEFAULT_MODEL,
        encoding: str = "pcm_mulaw",
        sample_rate: int = 8000,
        language: str = "en",
        speed: float | None = None,
        volume: float | None = None,
        base_url: str = "",
        websocket_url: str = "",
        connect_timeout_s: float = 1.0,
    ) -> None:
        if not api_key:
            raise ValueError("Cartesia needs an API key (key_ref)")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
        if encoding == "pcm_mulaw" and sample_rate != 8000:
            raise ValueError("pcm_mulaw is 8000 Hz")
        sdk_load("cartesia", "websockets.asyncio.client")
        self._api_key = api_key
        self.voice_id = voice_id
        self.model_id = model_id
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.language = language
        self.speed = speed
        self.volume = volume
        self.base_url = base_url
        self.websocket_url = websocket_url
        self.connect_timeout_s = connect_timeout_s
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Link] = weakref.WeakKeyDictionary()
        self._connecting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> AsyncCartesia:
        from cartesia import AsyncCartesia

        return AsyncCartesia(
            api_key=self._api_key,
            base_url=self.base_url or None,
            websocket_base_url=self.websocket_url or None,
            max_retries=0,
        )

    async def _link(self) -> _Link:
        loop = asyncio.get_running_loop()
        lock = self._connecting.setdefault(loop, asyncio.Lock())
        async with lock:
            link = self._links.get(loop)
            if link is not None and link.failure is None and not link.reader.done():
                return link
            link = _Link(self.name, await self._connect())
            self._links[loop] = link
            return link

    async def _connect(self) -> AsyncTTSResourceConnection:
        from websockets.exceptions import InvalidStatus

        manager = self._client().tts.websocket_connect()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                return await manager.enter()
        except InvalidStatus as exc:
            status = exc.response.status_code
            what = "key rejected" if status in (401, 403) else "handshake refused"
            raise EngineError(self.name, "error", f"{what} (HTTP {status})") from None
        except TimeoutError:
            raise EngineError(self.name, "deadline", f"no connection within {self.connect_timeout_s} s") from None
        except OSError as exc:
            raise EngineError(self.name, "error", f"{type(exc).__name__}: {exc}") from None

    def request(self, context_id: str, text: str) -> dict[str, Any]:
        """The generation request for one sentence: its own context, and no more input after it."""
        request: dict[str, Any] = {
            "context_id": context_id,
            "model_id": self.model_id,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {"container": "raw", "encoding": self.encoding, "sample_rate": self.sample_rate},
            "language": self.language,
            "continue": False,
        }
        config = {k: v for k, v in (("speed", self.speed), ("volume", self.volume)) if v is not None}
        if config:
            request["generation_config"] = config
        return request

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Stream ``text`` as PCM chunks at ``sample_rate``."""
        from websockets.exceptions import ConnectionClosed

        link = await self._link()
        context_id, queue = link.open_context()
        finished = False
        try:
            try:
                await link.connection.send(self.request(context_id, text))  # type: ignore[arg-type]
            except ConnectionClosed as exc:
                raise EngineError(self.name, "error", "connection closed") from exc
            while True:
                event = await queue.get()
                if isinstance(event, EngineError):
                    raise event
                if event.type == "chunk":
                    audio = event.audio
                    if audio:
                        yield self._decode(audio)
                elif event.type == "done":
                    finished = True
                    return
                elif event.type == "error":
                    finished = True
                    raise EngineError(self.name, "error", _error_detail(event))
        finally:
            link.contexts.pop(context_id, None)
            if not finished and link.failure is None:
                # The caller barged in or the chain gave up: stop generating for this sentence.
                with contextlib.suppress(Exception):
                    await link.connection.send({"context_id": context_id, "cancel": True})

    def _decode(self, audio: bytes) -> Pcm16:
        if self.encoding == "pcm_mulaw":
            return mulaw_decode(audio)
        return np.frombuffer(audio[: len(audio) - len(audio) % 2], dtype="<i2").astype(np.int16)

    async def aclose(self) -> None:
        """Close this loop's connection (tests; a process shutting down)."""
        link = self._links.pop(asyncio.get_running_loop(), None)
        if link is not None:
            await link.close()
