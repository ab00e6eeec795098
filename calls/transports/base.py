"""What every transport declares: its wire audio and whether it reports playback."""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import URLPattern

from calls.audio import AudioFormat


@dataclass(frozen=True, slots=True)
class Transport:
    """One carrier or client connection type, as the pipeline sees it.

    The transport owns everything carrier-specific: its webhooks
    (``http_urls``, mounted on the public host), its media websocket
    (``consumer`` at ``websocket_path``) and the coding of
    ``audio`` to and from the pipeline's PCM. ``reports_playback`` says
    whether the far end echoes marks when playback reaches them; without it
    the session keeps time on its own clock. A carrier authenticates each
    stream itself (a signed token); a transport used from our own pages
    (``session_auth``) is reached through the dashboards' checks instead: the
    page's origin, the tenant of the Host header and the signed-in session.
    A transport whose media does not reach us over a websocket of ours
    (LiveKit: the agent joins the room) has no ``consumer``.
    """

    name: str
    audio: AudioFormat
    reports_playback: bool
    websocket_path: str = ""
    consumer: type[AsyncWebsocketConsumer] | None = None
    http_urls: tuple[URLPattern, ...] = field(default=())
    session_auth: bool = False
