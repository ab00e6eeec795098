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
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from calls.audio import mulaw_decode
from calls.pipeline.fallback import EngineError
from calls.pipeline.protocols import Pcm16
from calls.providers.sdk import sdk_load

if TYPE_CHECKING:
    from elevenlabs.client import AsyncElevenLabs

# Formats the pipeline can play without a decoder: μ-law at 8 kHz and raw PCM.
_FORMAT = re.compile(r"^(ulaw_8000|pcm_(8000|16000|22050|24000|32000|44100|48000))$")
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", one of ElevenLabs' default voices
DEFAULT_MODEL = "eleven_flash_v2_5"


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

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Stream ``text`` as PCM chunks at ``sample_rate``."""
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
