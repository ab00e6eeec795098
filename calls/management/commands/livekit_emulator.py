"""Serve the LiveKit emulator on loopback (Twirp API, agent socket), delivering webhooks to this product."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.transports.livekit.emulator import LiveKitEmulator


class Command(BaseCommand):
    help = "Serve LiveKit's server API on loopback (development), checking tokens signed with LIVEKIT_API_KEY/SECRET."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=7880)
        parser.add_argument("--webhook-url", default="http://localhost:8000/livekit/webhook")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.LIVEKIT_API_KEY or not settings.LIVEKIT_API_SECRET:
            raise CommandError("Set LIVEKIT_API_KEY and LIVEKIT_API_SECRET.")
        emulator = LiveKitEmulator(
            api_key=settings.LIVEKIT_API_KEY,
            api_secret=settings.LIVEKIT_API_SECRET,
            webhook_url=options["webhook_url"],
            port=options["port"],
        ).start()
        self.stdout.write(f"LiveKit emulator on {emulator.url}, webhooks to {options['webhook_url']}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        emulator.stop()
