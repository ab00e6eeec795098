"""Compare our reported call minutes with Stripe's meter, per business, for one month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import billing_reconcile


class Command(BaseCommand):
    help = "Our reported minutes against Stripe's meter summaries for --period YYYY-MM (UTC); differences listed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="the month, e.g. 2026-11")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start = datetime.strptime(options["period"], "%Y-%m").replace(tzinfo=UTC)
        except ValueError as exc:
            raise CommandError("--period must look like 2026-11.") from exc
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        rows = billing_reconcile(start=start, end=end)
        differing = [row for row in rows if row.difference]
        for row in rows:
            mark = "  DIFFERS" if row.difference else ""
            self.stdout.write(f"{row.tenant}: ours {row.ours} min, Stripe {row.stripe:g} min{mark}")
        self.stdout.write(f"{len(rows)} businesses, {len(differing)} differ.")
        if differing:
            raise CommandError(f"{len(differing)} businesses differ from Stripe.")
