"""Post-call transcription of a call's recording: AssemblyAI's pre-recorded API, through the official SDK.

The live transcript is made turn by turn under a deadline; once the call is
over the whole recording can be heard again by a slower, better model. The
recording (a WAV file) is uploaded (``POST /v2/upload``) and a transcript
requested with a webhook (``POST /v2/transcript``); AssemblyAI posts
``{"transcript_id", "status"}`` to the webhook with the auth header it was
given, and the text is then fetched (``GET /v2/transcript/{id}``). Nothing
here waits for the transcript: a worker submits, the webhook's handler
fetches. Blocking calls (the SDK's client is synchronous): run them in a
worker or a thread, never on an event loop.

Failures surface as ``EngineError`` with the HTTP status, never the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from calls.pipeline.fallback import EngineError
from calls.providers.sdk import sdk_load

DEFAULT_SPEECH_MODELS = ("universal-3-pro", "universal-2")


@dataclass(frozen=True, slots=True)
class RecordingTranscript:
    """A finished transcript of a whole recording."""

    transcript_id: str
    text: str
    confidence: float | None
    audio_duration_s: int | None
    words: tuple[str, ...]


class AssemblyAIRecordingTranscriber:
    """Submits recordings and fetches their transcripts; ``base_url`` points at the loopback emulator in tests."""

    name = "assemblyai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        speech_models: tuple[str, ...] = DEFAULT_SPEECH_MODELS,
        timeout_s: float = 30.0,
    ) -> None:
        if not api_key:
            raise ValueError("AssemblyAI needs an API key (key_ref)")
        sdk_load("assemblyai")
        self._api_key = api_key
        self.base_url = base_url
        self.speech_models = speech_models
        self.timeout_s = timeout_s

    def _client(self) -> Any:
        import assemblyai as aai

        settings = aai.Settings(api_key=self._api_key, http_timeout=self.timeout_s)
        if self.base_url:
            settings.base_url = self.base_url
        return aai.Client(settings=settings)

    def submit(self, recording: bytes, *, webhook_url: str, auth_header: tuple[str, str]) -> str:
        """Upload ``recording`` (WAV) and ask for its transcript; returns the transcript's id.

        ``auth_header`` (name, secret) comes back on the webhook, so its
        handler knows the post is AssemblyAI's answer to this request.
        """
        import assemblyai as aai

        config = aai.TranscriptionConfig(speech_models=list(self.speech_models)).set_webhook(
            webhook_url, auth_header[0], auth_header[1]
        )
        try:
            transcript = aai.Transcriber(client=self._client(), config=config).submit(recording)
        except aai.types.TranscriptError as exc:
            raise EngineError(self.name, "error", _detail(exc)) from None
        except httpx.HTTPError as exc:  # the service cannot be reached
            raise EngineError(self.name, "error", f"{type(exc).__name__}") from None
        if transcript.status == aai.TranscriptStatus.error or not transcript.id:
            raise EngineError(self.name, "error", f"transcript refused: {transcript.error}")
        return str(transcript.id)

    def fetch(self, transcript_id: str) -> RecordingTranscript | None:
        """The finished transcript; None while it is still queued or processing."""
        import assemblyai as aai
        from assemblyai.prerecorded.v2 import api as v2_api

        try:
            response = v2_api.get_transcript(self._client().http_client, transcript_id)
        except aai.types.TranscriptError as exc:
            raise EngineError(self.name, "error", _detail(exc)) from None
        except httpx.HTTPError as exc:  # the service cannot be reached
            raise EngineError(self.name, "error", f"{type(exc).__name__}") from None
        if response.status == aai.TranscriptStatus.error:
            raise EngineError(self.name, "error", f"transcription failed: {response.error}")
        if response.status != aai.TranscriptStatus.completed:
            return None
        return RecordingTranscript(
            transcript_id=transcript_id,
            text=(response.text or "").strip(),
            confidence=response.confidence,
            audio_duration_s=response.audio_duration,
            words=tuple(word.text for word in response.words or ()),
        )


def _detail(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    what = "key rejected" if status in (401, 403) else "request failed"
    return f"{what} (HTTP {status})"
