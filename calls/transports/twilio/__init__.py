"""Twilio Media Streams: the voice webhook, TwiML, the stream token and the media websocket."""

from __future__ import annotations

from django.urls import path

from calls.transports.base import Transport
from calls.transports.twilio.consumer import AUDIO, REPORTS_PLAYBACK, TwilioMediaStreamConsumer
from calls.transports.twilio.twiml import DIAL_ENDED_PATH, STREAM_ENDED_PATH, STREAM_PATH
from calls.transports.twilio.views import twilio_dial_ended, twilio_stream_ended, twilio_voice_webhook

TWILIO = Transport(
    name="twilio",
    audio=AUDIO,
    reports_playback=REPORTS_PLAYBACK,
    websocket_path=STREAM_PATH,
    consumer=TwilioMediaStreamConsumer,
    # Carriers post here for every number; the dialled number picks the tenant.
    http_urls=(
        path("twilio/voice", twilio_voice_webhook, name="twilio-voice"),
        path(STREAM_ENDED_PATH.lstrip("/"), twilio_stream_ended, name="twilio-stream-ended"),
        path(DIAL_ENDED_PATH.lstrip("/"), twilio_dial_ended, name="twilio-dial-ended"),
    ),
)
