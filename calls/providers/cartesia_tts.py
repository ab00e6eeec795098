"""Cloud text-to-speech: Cartesia's TTS websocket, through the official SDK.

One websocket per event loop is kept open and shared by every call's
sentences, and the SDK's connection multiplexes their contexts. The
sentences of one reply (the session's ``ReplyScope``) continue one context,
so the voice carries its prosody from one to the next: each sentence is an
input with ``continue: true`` followed by a flush, whose ``flush_done`` ends
that sentence's audio; the reply's end sends the last input (an empty
transcript with ``continue: false``). A context left idle longer than
``CONTEXT_IDLE_S`` is not continued (Cartesia expires a context a second
after its last audio): the next sentence opens a new one. A sentence
outside any reply is a context of its own, ``continue: false``. Audio comes
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
import functools
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np

from calls.audio import mulaw_decode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16
from calls.pipeline.reply_scope import ReplyScope, current_reply
from calls.providers.sdk import KeyCheck, ProviderCallError, ProviderVoice, sdk_load, websocket_opening

if TYPE_CHECKING:
    from cartesia import AsyncCartesia
    from cartesia.lib._tts import AsyncTTSResourceConnection
    from cartesia.types.websocket_response import WebsocketResponse

DEFAULT_VOICE = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"  # the SDK's own default voice
DEFAULT_MODEL = "sonic-3"
ENCODINGS = ("pcm_mulaw", "pcm_s16le")
# Cartesia expires a context one second after its last audio; past this, a reply's next sentence opens a new one.
CONTEXT_IDLE_S = 0.8


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
                elif event.type == "error" and not getattr(event, "context_id", None):
                    # An error for no context concerns them all (one for a context already
                    # given up, such as a reply's last input after it expired, concerns nobody).
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


class _ReplyContext:
    """One reply's context on one connection, continued from sentence to sentence."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.context_id, self.queue = link.open_context()
        self.sentences = 0
        self.last_audio_at = time.monotonic()
        self.broken = False  # a sentence failed or was cut: never continue it
        self.closed = False

    def usable(self, link: _Link) -> bool:
        idle = time.monotonic() - self.last_audio_at
        return self.link is link and not self.broken and not self.closed and idle <= CONTEXT_IDLE_S


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
        manager = self._client().tts.websocket_connect()
        async with websocket_opening(self.name, timeout_s=self.connect_timeout_s, refused="handshake refused"):
            return await manager.enter()

    def request(self, context_id: str, text: str, *, continues: bool = False, flush: bool = False) -> dict[str, Any]:
        """A generation request on ``context_id``; ``continues``: more input follows on the same context."""
        request: dict[str, Any] = {
            "context_id": context_id,
            "model_id": self.model_id,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {"container": "raw", "encoding": self.encoding, "sample_rate": self.sample_rate},
            "language": self.language,
            "continue": continues,
        }
        if flush:
            request["flush"] = True
        config = {k: v for k, v in (("speed", self.speed), ("volume", self.volume)) if v is not None}
        if config:
            request["generation_config"] = config
        return request

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Stream ``text`` as PCM chunks at ``sample_rate``; inside a reply, continuing its context."""
        scope = current_reply()
        chunks = self._alone(text) if scope is None else self._continued(scope, text)
        async for chunk in chunks:
            yield chunk

    async def _continued(self, scope: ReplyScope, text: str) -> AsyncIterator[Pcm16]:
        """One sentence of a reply: an input on the reply's context, then a flush that ends its audio."""
        from websockets.exceptions import ConnectionClosed

        link = await self._link()
        state: _ReplyContext | None = scope.state(self)
        if state is None or not state.usable(link):
            if state is not None:
                await self._reply_end(state, completed=True)
            state = _ReplyContext(link)
            scope.state_set(self, state, functools.partial(self._reply_end, state))
        # Cartesia joins a context's transcripts verbatim: the space between sentences is ours to send.
        piece = text.strip() if state.sentences == 0 else " " + text.strip()
        state.sentences += 1
        finished = False
        try:
            try:
                await link.connection.send(self.request(state.context_id, piece, continues=True))  # type: ignore[arg-type]
                await link.connection.send(self.request(state.context_id, "", continues=True, flush=True))  # type: ignore[arg-type]
            except ConnectionClosed as exc:
                raise EngineError(self.name, "error", "connection closed") from exc
            while True:
                event = await state.queue.get()
                if isinstance(event, EngineError):
                    raise event
                if event.type == "chunk":
                    audio = event.audio
                    if audio:
                        yield self._decode(audio)
                elif event.type in ("flush_done", "done"):
                    finished = True
                    state.last_audio_at = time.monotonic()
                    return
                elif event.type == "error":
                    finished = True
                    raise EngineError(self.name, "error", _error_detail(event))
        finally:
            if not finished:
                # Cut short (a barge-in, a deadline): this context is not continued.
                state.broken = True
                await self._reply_end(state, completed=False)
            elif state.broken or link.failure is not None:
                await self._reply_end(state, completed=False)

    async def _reply_end(self, state: _ReplyContext, completed: bool) -> None:
        """The reply's context is over: its last input when all was said, else a cancel. Nothing is awaited back."""
        if state.closed:
            return
        state.closed = True
        state.link.contexts.pop(state.context_id, None)
        if state.link.failure is not None:
            return
        with contextlib.suppress(Exception):
            if completed and not state.broken:
                await state.link.connection.send(self.request(state.context_id, ""))  # type: ignore[arg-type]
            else:
                await state.link.connection.send({"context_id": state.context_id, "cancel": True})

    async def _alone(self, text: str) -> AsyncIterator[Pcm16]:
        """A sentence outside any reply: a context of its own, with no more input after it."""
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


# A page of the voice library, and how many voices a listing shows at most.
VOICES_PAGE = 100
VOICES_MAX = 500


def cartesia_voices(*, api_key: str, base_url: str = "", timeout_s: float = 3.0) -> list[ProviderVoice]:
    """The voices the key's organisation may use (``GET /voices``, page by page), by name.

    Also what "Test this key" asks: a refused key, an error status or no
    answer within ``timeout_s`` raise ``ProviderCallError``.
    """
    sdk_load("cartesia")
    import cartesia

    client = cartesia.Cartesia(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=0)
    voices: list[ProviderVoice] = []
    try:
        for voice in client.voices.list(limit=VOICES_PAGE):
            voices.append(
                ProviderVoice(
                    voice_id=voice.id, name=voice.name, description=voice.description, language=str(voice.language)
                )
            )
            if len(voices) >= VOICES_MAX:
                break
    except (cartesia.AuthenticationError, cartesia.PermissionDeniedError) as exc:
        raise ProviderCallError(KeyCheck("refused", f"Cartesia refused the key (HTTP {exc.status_code}).")) from None
    except cartesia.APIStatusError as exc:
        raise ProviderCallError(
            KeyCheck("failed", f"Cartesia answered with an error (HTTP {exc.status_code}).")
        ) from None
    except cartesia.APIConnectionError as exc:  # also a timeout
        raise ProviderCallError(
            KeyCheck("unreachable", f"Cartesia was not reached within {timeout_s:g} s ({type(exc).__name__}).")
        ) from None
    finally:
        client.close()
    return sorted(voices, key=lambda v: (v.name.lower(), v.voice_id))
