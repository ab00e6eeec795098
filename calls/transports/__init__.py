"""Transports: how calls reach the pipeline.

Each transport is one package here (``twilio/``, ``livekit/``, ``browser/``) and one entry below; the
websocket routing (``calls.routing``) mounts every registered transport.
"""

from __future__ import annotations

from calls.transports.base import Transport
from calls.transports.browser import BROWSER
from calls.transports.livekit.transport import LIVEKIT
from calls.transports.twilio import TWILIO

TRANSPORTS: dict[str, Transport] = {transport.name: transport for transport in (TWILIO, LIVEKIT, BROWSER)}

__all__ = ["TRANSPORTS", "Transport"]
