"""Make LiveKit's SIP dispatch rules match our phone numbers, and list each difference fixed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from livekit import api

from calls.transports.livekit.rules import LiveKitNotConfiguredError
from calls.transports.livekit.services import livekit_rules_sync


class Command(BaseCommand):
    help = "Re-sync LiveKit SIP dispatch rules with the registered phone numbers; prints what was fixed."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            differences = livekit_rules_sync()
        except LiveKitNotConfiguredError as exc:
            raise CommandError(str(exc)) from exc
        except (api.ServerError, OSError) as exc:
            raise CommandError(f"LiveKit: {exc}") from exc
        if not differences:
            self.stdout.write("LiveKit's dispatch rules match our numbers.")
            return
        for difference in differences:
            self.stdout.write(str(difference))
        self.stdout.write(f"{len(differences)} difference{'s' if len(differences) != 1 else ''} fixed.")
