"""Serve the Stripe emulator on loopback, delivering webhooks to this product."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.stripe_emulator import StripeEmulator


class Command(BaseCommand):
    help = "Serve Stripe's API on loopback (development and benchmarks), signing webhooks with STRIPE_WEBHOOK_SECRET."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=12111)
        parser.add_argument("--webhook-url", default="http://localhost:8000/stripe/webhook")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.STRIPE_SECRET_KEY or not settings.STRIPE_WEBHOOK_SECRET:
            raise CommandError("Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (the development settings do).")
        emulator = StripeEmulator(
            api_key=settings.STRIPE_SECRET_KEY,
            webhook_url=options["webhook_url"],
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
            port=options["port"],
        ).start()
        self.stdout.write(f"Stripe emulator on {emulator.url}, webhooks to {options['webhook_url']}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        emulator.stop()
