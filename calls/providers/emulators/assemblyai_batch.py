"""AssemblyAI's pre-recorded transcription API on loopback, hearing the audio with the offline Whisper.

Speaks the REST API as the ``assemblyai`` SDK uses it, the key in the
``authorization`` header: ``POST /v2/upload`` (a binary body; answers
``{upload_url}``), ``POST /v2/transcript`` (``audio_url``, ``speech_models``,
``webhook_url``, ``webhook_auth_header_name`` and ``_value`` and the other
options; answers the transcript, ``status: queued``) and
``GET /v2/transcript/{id}`` (``queued``, ``processing``, then ``completed``
with ``text``, ``words``, ``confidence`` and ``audio_duration``, or
``error``). Audio is a WAV file (16-bit PCM, mono or stereo, any rate) that
was uploaded here; any other ``audio_url`` fails the transcript with a
download error, as an unreachable URL does.

When a transcript is done and has a ``webhook_url``, the emulator posts
``{"transcript_id", "status"}`` to it with the custom auth header; a 2xx
ends it, a 4xx stops the retries, anything else is retried (up to
``webhook_attempts`` times). Errors are ``{"error": "..."}``: 401 for a
wrong key, 500 on the ``http_500`` fault; ``stall`` leaves transcripts
processing, ``slow_first_byte`` delays them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import uuid
import wave
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from calls.audio import resample
from calls.pipeline.protocols import Pcm16, SpeechToText
from calls.providers.emulators.base import HttpEmulator, offline_listener

UPLOAD_URL = "https://cdn.assemblyai.com/upload/"


@dataclass(slots=True)
class WebhookDelivery:
    """One webhook post as the emulator made it: the body, the auth header sent and the answer's status."""

    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int | None  # None: the receiver could not be reached


@dataclass(slots=True)
class TranscriptJob:
    """One transcript: the request as received and the state the API reports."""

    id: str
    request: dict[str, Any]
    status: str = "queued"
    text: str | None = None
    words: list[dict[str, Any]] = field(default_factory=list)
    audio_duration: int | None = None
    error: str | None = None
    webhook_status_code: int | None = None

    def response(self) -> dict[str, Any]:
        hidden = {"webhook_auth_header_value"}  # the API never shows the secret back
        return {k: v for k, v in self.request.items() if k not in hidden} | {
            "id": self.id,
            "status": self.status,
            "text": self.text,
            "words": self.words if self.status == "completed" else None,
            "confidence": 0.93 if self.status == "completed" else None,
            "audio_duration": self.audio_duration,
            "error": self.error,
            "webhook_status_code": self.webhook_status_code,
            "webhook_auth": bool(self.request.get("webhook_auth_header_name")),
        }


class AssemblyAIBatchEmulator(HttpEmulator):
    """A loopback AssemblyAI REST API; ``url`` goes in the SDK's ``base_url``."""

    name = "assemblyai-batch"

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("aai-test-key",),
        stt: SpeechToText | None = None,
        port: int = 0,
        slow_first_byte_s: float = 2.0,
        webhook_attempts: int = 3,
        webhook_retry_s: float = 0.2,
    ) -> None:
        super().__init__(port=port, slow_first_byte_s=slow_first_byte_s)
        self.api_keys = set(api_keys)
        self.stt = offline_listener(stt)
        self.webhook_attempts = webhook_attempts
        self.webhook_retry_s = webhook_retry_s
        self.uploads: dict[str, bytes] = {}
        self.transcripts: dict[str, TranscriptJob] = {}
        self.webhooks: list[WebhookDelivery] = []
        self._jobs: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v2/upload", self._upload),
            web.post("/v2/transcript", self._create),
            web.get("/v2/transcript/{id}", self._get),
        ]

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.fault == "http_500":
            return web.json_response({"error": "Internal server error"}, status=500)
        if self.fault == "reject_key" or request.headers.get("authorization", "") not in self.api_keys:
            return web.json_response({"error": "Authentication error, API token missing/invalid"}, status=401)
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        upload_id = secrets.token_hex(16)
        self.uploads[upload_id] = await request.read()
        return web.json_response({"upload_url": UPLOAD_URL + upload_id})

    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "Invalid JSON"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("audio_url"), str):
            return web.json_response({"error": "audio_url is required"}, status=400)
        job = TranscriptJob(id=str(uuid.uuid4()), request=body)
        self.transcripts[job.id] = job
        task = asyncio.create_task(self._process(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return web.json_response(job.response())

    async def _get(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        job = self.transcripts.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "Transcript not found"}, status=404)
        return web.json_response(job.response())

    async def _process(self, job: TranscriptJob) -> None:
        await asyncio.sleep(0)  # the creation is answered first
        job.status = "processing"
        if self.fault == "stall":
            return
        await self.first_byte_delay()
        url = job.request["audio_url"]
        data = self.uploads.get(url.removeprefix(UPLOAD_URL)) if url.startswith(UPLOAD_URL) else None
        try:
            if data is None:
                raise ValueError(f"Download error, unable to download {url}")
            audio, rate = _wav_mono(data)
            wide = resample(audio, rate, self.stt.sample_rate)
            transcript = await self.stt.transcribe(wide)
            job.text = transcript.text.strip()
            job.audio_duration = round(len(audio) / rate)
            job.words = _words(job.text, len(audio) / rate)
            job.status = "completed"
        except (ValueError, wave.Error, EOFError) as exc:
            job.status, job.error = "error", str(exc)
        if job.request.get("webhook_url"):
            await self._webhook(job)

    async def _webhook(self, job: TranscriptJob) -> None:
        url = job.request["webhook_url"]
        headers = {"Content-Type": "application/json"}
        name = job.request.get("webhook_auth_header_name")
        if name:
            headers[name] = job.request.get("webhook_auth_header_value") or ""
        body = {"transcript_id": job.id, "status": job.status}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for attempt in range(self.webhook_attempts):
                status: int | None = None
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(url, json=body, headers=headers) as response:
                        status = response.status
                self.webhooks.append(WebhookDelivery(url=url, body=body, headers=headers, status=status))
                job.webhook_status_code = status
                if status is not None and status < 500 and not 300 <= status < 400:
                    return  # delivered, or refused for good (a 4xx stops the retries)
                if attempt + 1 < self.webhook_attempts:
                    await asyncio.sleep(self.webhook_retry_s)


def _wav_mono(data: bytes) -> tuple[Pcm16, int]:
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("Transcoding error: only 16-bit PCM WAV in the emulator")
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels, rate = wav.getnchannels(), wav.getframerate()
    if channels > 1:
        # Both sides of the call in one track, as a mono recording would have them.
        frames = frames.reshape(-1, channels).astype(np.int32).sum(axis=1).clip(-32768, 32767)
    return frames.astype(np.int16), rate


def _words(text: str, duration_s: float) -> list[dict[str, Any]]:
    tokens = text.split()
    step = duration_s * 1000 / max(1, len(tokens))
    return [
        {"text": t, "start": int(i * step), "end": int((i + 1) * step), "confidence": 0.93, "speaker": None}
        for i, t in enumerate(tokens)
    ]
