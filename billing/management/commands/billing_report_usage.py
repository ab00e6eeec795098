"""Send unreported call minutes to Stripe's meter now, as the quarter-hourly job does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import usage_report_tenant, usage_report_tenant_ids
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Send each business's unreported call minutes to Stripe's meter (one event per call, with an identifier "
        "Stripe deduplicates); safe to run again after a crash."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="only this business (its schema name)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"]:
            tenant = Tenant.objects.filter(schema_name=options["tenant"], is_template=False).first()
            if tenant is None:
                raise CommandError(f"No business {options['tenant']!r}.")
            tenants = [tenant]
        else:
            tenants = list(Tenant.objects.filter(pk__in=usage_report_tenant_ids()).order_by("schema_name"))
        total = 0
        for tenant in tenants:
            sent = usage_report_tenant(tenant=tenant)
            total += sent
            self.stdout.write(f"{tenant.schema_name}: {sent} events")
        self.stdout.write(f"{total} events sent.")
