"""Post-call transcription through AssemblyAI's pre-recorded API and the official SDK, against the loopback
emulator that hears the recording with the offline Whisper and answers on an authenticated webhook."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from calls.audio import resample
from calls.pipeline.fallback import EngineError
from calls.providers.assemblyai_batch import AssemblyAIRecordingTranscriber
from calls.providers.emulators.assemblyai_batch import AssemblyAIBatchEmulator
from calls.providers.piper_tts import PiperTextToSpeech, piper_available

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts speaks the recording")

KEY = "aai-test-key"
SECRET = "s3cret-header-value"


@pytest.fixture(scope="module")
def recording() -> bytes:
    """A call recording as the product stores one: 8 kHz 16-bit WAV, caller and agent channels."""

    async def speak() -> np.ndarray:
        voice = PiperTextToSpeech(variation=0)
        pcm = np.concatenate([c async for c in voice.synthesize("My kitchen sink is leaking all over the floor.")])
        return resample(pcm, voice.sample_rate, 8000)

    caller = asyncio.run(speak())
    stereo = np.stack([caller, np.zeros_like(caller)], axis=1)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(stereo.astype("<i2").tobytes())
    return out.getvalue()


class Receiver(BaseHTTPRequestHandler):
    """Where the webhook lands: notes each post and answers with ``status``."""

    posts: ClassVar[list[tuple[dict[str, Any], dict[str, str]]]] = []
    status: ClassVar[int] = 200

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posts.append((body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[Receiver]]]:
    class Here(Receiver):
        posts: ClassVar[list[tuple[dict[str, Any], dict[str, str]]]] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Here)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/assemblyai", Here
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[AssemblyAIBatchEmulator]:
    with AssemblyAIBatchEmulator(api_keys=(KEY,), webhook_retry_s=0.05) as running:
        yield running


def _until(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_recording_is_transcribed_and_the_webhook_carries_the_auth_header(
    emulator: AssemblyAIBatchEmulator, recording: bytes, webhook: tuple[str, type[Receiver]]
) -> None:
    url, receiver = webhook
    transcriber = AssemblyAIRecordingTranscriber(api_key=KEY, base_url=emulator.url)
    transcript_id = transcriber.submit(recording, webhook_url=url, auth_header=("X-VoiceDesk-Webhook", SECRET))
    _until(lambda: receiver.posts)
    transcript = transcriber.fetch(transcript_id)

    ((body, headers),) = receiver.posts
    assert body == {"transcript_id": transcript_id, "status": "completed"}
    assert headers["x-voicedesk-webhook"] == SECRET
    assert transcript is not None
    assert transcript.transcript_id == transcript_id
    assert "kitchen sink" in transcript.text.lower()
    with wave.open(io.BytesIO(recording)) as wav:
        assert transcript.audio_duration_s == round(wav.getnframes() / 8000)
    assert len(transcript.words) == len(transcript.text.split())
    request = emulator.transcripts[transcript_id].request
    assert request["speech_models"] == ["universal-3-pro", "universal-2"]
    assert request["audio_url"].startswith("https://cdn.assemblyai.com/upload/")
    assert emulator.transcripts[transcript_id].response().get("webhook_auth_header_value") is None


def test_a_refused_key_is_an_engine_error(emulator: AssemblyAIBatchEmulator, recording: bytes) -> None:
    transcriber = AssemblyAIRecordingTranscriber(api_key="wrong", base_url=emulator.url)
    before = len(emulator.transcripts)
    with pytest.raises(EngineError) as raised:
        transcriber.submit(recording, webhook_url="http://127.0.0.1:9/x", auth_header=("X-Hook", SECRET))

    assert (raised.value.reason, raised.value.detail) == ("error", "key rejected (HTTP 401)")
    assert len(emulator.transcripts) == before


def test_a_transcript_not_done_is_none_and_a_refused_webhook_is_not_retried(
    emulator: AssemblyAIBatchEmulator, recording: bytes, webhook: tuple[str, type[Receiver]]
) -> None:
    url, receiver = webhook
    receiver.status = 403
    transcriber = AssemblyAIRecordingTranscriber(api_key=KEY, base_url=emulator.url)
    emulator.fault = "stall"
    try:
        stalled = transcriber.submit(recording, webhook_url=url, auth_header=("X-Hook", SECRET))
        assert transcriber.fetch(stalled) is None
    finally:
        emulator.fault = None
    refused = transcriber.submit(recording, webhook_url=url, auth_header=("X-Hook", "wrong"))
    _until(lambda: emulator.transcripts[refused].webhook_status_code is not None)
    time.sleep(0.3)  # longer than the retry delay: a retry would have come

    assert [body["transcript_id"] for body, _ in receiver.posts] == [refused]
    assert emulator.transcripts[refused].webhook_status_code == 403
