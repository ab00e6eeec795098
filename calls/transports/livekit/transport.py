"""The LiveKit transport as the registry sees it: wire audio, no playback marks, the webhook URL."""

from __future__ import annotations

from django.urls import path

from calls.audio import AudioFormat
from calls.transports.base import Transport
from calls.transports.livekit.views import livekit_webhook

# Rooms carry 48 kHz audio; the agent publishes 20 ms frames.
AUDIO = AudioFormat(encoding="pcm16", sample_rate=48000, frame_ms=20)

LIVEKIT = Transport(
    name="livekit",
    audio=AUDIO,
    # No playback marks: the session keeps time on its own clock.
    reports_playback=False,
    http_urls=(path("livekit/webhook", livekit_webhook, name="livekit-webhook"),),
)
