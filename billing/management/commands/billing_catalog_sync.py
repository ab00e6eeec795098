"""Create the usage meter and each plan's product and prices in Stripe (safe to rerun)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.services import billing_catalog_sync


class Command(BaseCommand):
    help = "Make sure Stripe has the call-minutes meter and every active plan's product and prices."

    def handle(self, *args: Any, **options: Any) -> None:
        for plan in billing_catalog_sync():
            self.stdout.write(f"{plan.code}: base {plan.stripe_base_price_id}, minutes {plan.stripe_metered_price_id}")
