"""Run a LiveKit agent worker: take dispatched calls, up to a capacity, in this process."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.pipeline.factory import engines_warm_up
from calls.transports.livekit.agent import AgentWorker
from calls.transports.livekit.room import RtcRoomConnector
from calls.transports.livekit.rules import livekit_configured


class Command(BaseCommand):
    help = "Register with LiveKit as the receptionist agent and answer the calls it dispatches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--capacity", type=int, default=None, help="Calls at once (default: LIVEKIT_AGENT_CAPACITY)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not livekit_configured():
            raise CommandError("Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET.")
        capacity = options["capacity"] or settings.LIVEKIT_AGENT_CAPACITY
        if capacity < 1:
            raise CommandError("--capacity must be at least 1.")
        engines_warm_up()
        worker = AgentWorker(
            url=settings.LIVEKIT_URL,
            api_key=settings.LIVEKIT_API_KEY,
            api_secret=settings.LIVEKIT_API_SECRET,
            agent_name=settings.LIVEKIT_AGENT_NAME,
            capacity=capacity,
            connector=RtcRoomConnector(),
        )
        self.stdout.write(
            f"LiveKit agent {settings.LIVEKIT_AGENT_NAME!r} at {settings.LIVEKIT_URL}, {capacity} calls at once."
        )
        asyncio.run(worker.run_forever())
