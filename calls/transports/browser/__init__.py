"""The browser test call: the dashboard's microphone over our own websocket, signed in by the session."""

from __future__ import annotations

from calls.transports.base import Transport
from calls.transports.browser.consumer import AUDIO, REPORTS_PLAYBACK, WEBSOCKET_PATH, BrowserTestCallConsumer

BROWSER = Transport(
    name="browser",
    audio=AUDIO,
    reports_playback=REPORTS_PLAYBACK,
    websocket_path=WEBSOCKET_PATH,
    consumer=BrowserTestCallConsumer,
    session_auth=True,
)
