"""Cloud streaming speech-to-text: AssemblyAI Universal Streaming v3, through the official SDK.

The carrier's 8 kHz μ-law goes to AssemblyAI as it is (``encoding=pcm_mulaw``,
``sample_rate=8000``): the session hands us the decoded PCM and G.711 coding
of decoded samples gives back the very bytes the carrier sent, so nothing is
resampled or re-quantised on the way. Audio is sent in 60 ms binary frames
(the API wants 50-1000 ms each).

Each ``Turn`` message becomes an event: partials while the turn grows, then
one final and ``END_OF_TURN`` when AssemblyAI ends the turn (with
``format_turns``, on the formatted copy of it). The tenant's words, the
business name and the expected answer go out as ``keyterms_prompt`` and are
updated mid-stream when the agent asks a new question.

A rejected key, a 5xx on connect, a dropped socket or a server ``Error``
ends ``events`` with an ``EngineError``; the call's ``TurnStream`` then
records the switch and the batch chain (Whisper) takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from calls.audio import mulaw_encode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16, SttEvent, SttEventKind, SttHints, Transcript
from calls.providers.sdk import KeyCheck, sdk_load

if TYPE_CHECKING:
    # The SDK takes a third of a second to import: processes that never stream never pay it.
    from assemblyai.streaming.v3 import (
        AsyncStreamingClient,
        BeginEvent,
        StreamingError,
        StreamingParameters,
        TerminationEvent,
        TurnEvent,
    )

SAMPLE_RATE = 8000
# 60 ms of μ-law per websocket frame: inside the API's 50-1000 ms window.
FRAME_BYTES = SAMPLE_RATE * 60 // 1000
# The API takes at most 100 key terms of at most 50 characters each.
MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 50
# How long ``open`` waits for the session's ``Begin``: past this the vendor is
# treated as down, and the batch engine hears the call from the start.
BEGIN_TIMEOUT_S = 1.0


def keyterms_for(hints: SttHints) -> list[str]:
    """The key terms that bias recognition towards ``hints``: the expected answer first, then the tenant's words."""
    terms = [hints.answer_hint, hints.business_name, *hints.vocabulary]
    cleaned = [t.strip() for t in terms if t and t.strip() and len(t.strip()) <= MAX_KEYTERM_CHARS]
    return list(dict.fromkeys(cleaned))[:MAX_KEYTERMS]


def transcript_of(turn: TurnEvent) -> Transcript:
    """A ``Transcript`` from a ``Turn``: its text, words and their mean confidence."""
    text = turn.transcript.strip()
    words = tuple(w.text for w in turn.words)
    confidences = [min(1.0, max(0.0, float(w.confidence))) for w in turn.words]
    confidence = sum(confidences) / len(confidences) if confidences and text else 0.0
    return Transcript(text=text, confidence=confidence, words=words if text else ())


class AssemblyAIStream:
    """One call's AssemblyAI session. Built by ``AssemblyAISpeechToText.open``."""

    def __init__(self, client: AsyncStreamingClient, *, name: str, format_turns: bool) -> None:
        self._client = client
        self._name = name
        self._format_turns = format_turns
        self._events: asyncio.Queue[SttEvent | EngineError | None] = asyncio.Queue()
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending = bytearray()
        # Set by the first of Begin, Error and Termination; ``_failure`` says which.
        self._settled = asyncio.Event()
        self._failure: EngineError | None = None
        self._closed = False
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.session_id = ""
        self.audio_seconds = 0.0  # sent to the vendor: what it bills
        from assemblyai.streaming.v3 import StreamingEvents

        client.on(StreamingEvents.Begin, self._on_begin)
        client.on(StreamingEvents.Turn, self._on_turn)
        client.on(StreamingEvents.Termination, self._on_termination)
        client.on(StreamingEvents.Error, self._on_error)

    async def start(self, params: StreamingParameters, *, begin_timeout_s: float) -> None:
        await self._client.connect(params)
        # The SDK reports a refused handshake through the error handler, not by raising.
        try:
            await asyncio.wait_for(self._settled.wait(), begin_timeout_s)
        except TimeoutError:
            self._failure = EngineError(self._name, "deadline", f"no session within {begin_timeout_s} s")
        if self._failure is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect(terminate=False)
            raise self._failure
        self._sender = asyncio.create_task(self._client.stream(self._frames()), name="assemblyai-audio")

    async def _frames(self) -> AsyncIterator[bytes]:
        while (frame := await self._audio.get()) is not None:
            yield frame

    # -- SpeechStream ---------------------------------------------------------
    def feed(self, pcm: Pcm16) -> None:
        if self._closed:
            return
        self._pending += mulaw_encode(pcm)
        while len(self._pending) >= FRAME_BYTES:
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            self.audio_seconds += len(frame) / SAMPLE_RATE
            self._audio.put_nowait(frame)

    def update_hints(self, hints: SttHints) -> None:
        if self._closed:
            return
        from assemblyai.streaming.v3 import StreamingSessionParameters

        task = asyncio.ensure_future(
            self._client.set_params(StreamingSessionParameters(keyterms_prompt=keyterms_for(hints)))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def events(self) -> AsyncIterator[SttEvent]:
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, EngineError):
                raise item
            yield item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if len(self._pending) >= FRAME_BYTES // 2:
            # The API refuses frames under 50 ms: pad the tail with μ-law silence.
            self._audio.put_nowait(bytes(self._pending).ljust(FRAME_BYTES, b"\xff"))
        self._audio.put_nowait(None)
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sender, 1.0)
        with contextlib.suppress(Exception):
            await self._client.disconnect(terminate=True)
        self._events.put_nowait(None)

    # -- SDK handlers (run on the SDK's read task) -----------------------------
    def _on_begin(self, _client: object, event: BeginEvent) -> None:
        self.session_id = event.id
        self._settled.set()

    def _on_turn(self, _client: object, turn: TurnEvent) -> None:
        transcript = transcript_of(turn)
        if not turn.end_of_turn:
            if transcript.text:
                self._events.put_nowait(SttEvent(SttEventKind.PARTIAL, transcript))
            return
        if self._format_turns and not turn.turn_is_formatted:
            # The formatted copy of this turn follows; it is the final one.
            self._events.put_nowait(SttEvent(SttEventKind.PARTIAL, transcript))
            return
        self._events.put_nowait(SttEvent(SttEventKind.FINAL, transcript))
        self._events.put_nowait(SttEvent(SttEventKind.END_OF_TURN))

    def _on_termination(self, _client: object, _event: TerminationEvent) -> None:
        if not self._settled.is_set():
            self._failure = EngineError(self._name, "error", "the session ended before it began")
            self._settled.set()
        self._events.put_nowait(None)

    def _on_error(self, _client: object, error: StreamingError) -> None:
        failure = EngineError(self._name, "error", f"code {getattr(error, 'code', None)}: {error}")
        if not self._settled.is_set():
            self._failure = failure
            self._settled.set()
        self._events.put_nowait(failure)


class AssemblyAISpeechToText:
    """``StreamingSpeechToText`` over AssemblyAI Universal Streaming v3; shared by every call.

    ``api_key`` comes from the tenant's ``key_ref``; ``api_host`` may be a
    ``ws://host:port`` (the loopback emulator) or the EU host.
    ``min_turn_silence`` and ``max_turn_silence`` (ms) and
    ``end_of_turn_confidence_threshold`` tune AssemblyAI's endpointing.
    """

    name = "assemblyai"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        api_key: str,
        api_host: str = "streaming.assemblyai.com",
        speech_model: str = "universal-streaming-english",
        format_turns: bool = True,
        end_of_turn_confidence_threshold: float | None = None,
        min_turn_silence: int | None = None,
        max_turn_silence: int | None = None,
        connect_timeout_s: float = 1.0,
        begin_timeout_s: float = BEGIN_TIMEOUT_S,
    ) -> None:
        if not api_key:
            raise ValueError("AssemblyAI needs an API key (key_ref)")
        sdk_load("assemblyai.streaming.v3")
        self._api_key = api_key
        self.api_host = api_host
        self.speech_model = speech_model
        self.format_turns = format_turns
        self.end_of_turn_confidence_threshold = end_of_turn_confidence_threshold
        self.min_turn_silence = min_turn_silence
        self.max_turn_silence = max_turn_silence
        self.connect_timeout_s = connect_timeout_s
        self.begin_timeout_s = begin_timeout_s

    def parameters(self, hints: SttHints) -> StreamingParameters:
        """The session parameters the SDK puts on the connection URL."""
        from assemblyai.streaming.v3 import Encoding, SpeechModel, StreamingParameters

        keyterms = keyterms_for(hints)
        return StreamingParameters(
            sample_rate=SAMPLE_RATE,
            encoding=Encoding.pcm_mulaw,
            speech_model=SpeechModel(self.speech_model),
            format_turns=self.format_turns,
            keyterms_prompt=keyterms or None,
            end_of_turn_confidence_threshold=self.end_of_turn_confidence_threshold,
            min_turn_silence=self.min_turn_silence,
            max_turn_silence=self.max_turn_silence,
            # A pydantic ``Field`` default the type checker cannot see; None is left off the URL.
            speaker_labels_revision_interval_ms=None,
        )

    async def open(self, hints: SttHints) -> AssemblyAIStream:
        """Connect one call's session; raises ``EngineError`` if AssemblyAI refuses or does not answer."""
        from assemblyai.streaming.v3 import AsyncStreamingClient, StreamingClientOptions

        client = AsyncStreamingClient(
            StreamingClientOptions(
                api_key=self._api_key,
                api_host=self.api_host,
                connect_timeout=self.connect_timeout_s,
                # A call cannot wait for retries: the batch engine takes over at once.
                max_connection_retries=0,
                terminate_timeout=1.0,
            )
        )
        stream = AssemblyAIStream(client, name=self.name, format_turns=self.format_turns)
        await stream.start(self.parameters(hints), begin_timeout_s=self.begin_timeout_s)
        return stream


async def assemblyai_key_check(*, api_key: str, api_host: str = "", timeout_s: float = 3.0) -> KeyCheck:
    """Open a streaming session with ``api_key`` and end it at once (no audio is sent).

    AssemblyAI refuses a wrong key on the handshake with close code 1008; a
    session that begins means the key works.
    """
    engine = AssemblyAISpeechToText(
        api_key=api_key,
        api_host=api_host or "streaming.assemblyai.com",
        connect_timeout_s=timeout_s,
        begin_timeout_s=timeout_s,
    )
    try:
        stream = await engine.open(SttHints())
    except EngineError as exc:
        if exc.reason == "deadline":
            return KeyCheck("unreachable", f"AssemblyAI did not answer within {timeout_s:g} s.")
        if "1008" in exc.detail or "401" in exc.detail or "403" in exc.detail:
            return KeyCheck("refused", "AssemblyAI refused the key.")
        return KeyCheck("failed", f"AssemblyAI could not start a session ({exc.detail}).")
    except OSError as exc:
        return KeyCheck("unreachable", f"AssemblyAI could not be reached ({type(exc).__name__}).")
    await stream.close()
    return KeyCheck("ok", "AssemblyAI accepted the key.")
