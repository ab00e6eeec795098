"""Twilio Media Streams: the voice webhook, TwiML, the stream token and the media websocket."""

from __future__ import annotations

from calls.transports.base import Transport
from calls.transports.twilio.consumer import AUDIO, REPORTS_PLAYBACK, TwilioMediaStreamConsumer
from calls.transports.twilio.twiml import STREAM_PATH

TWILIO = Transport(
    name="twilio",
    audio=AUDIO,
    reports_playback=REPORTS_PLAYBACK,
    websocket_path=STREAM_PATH,
    consumer=TwilioMediaStreamConsumer,
)
