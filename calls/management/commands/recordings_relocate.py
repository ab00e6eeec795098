"""Move recordings made before they were kept per tenant into their tenant's folder."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import get_public_schema_name, tenant_context

from calls.services import call_recordings_relocate
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Move every business's recordings under recordings/<schema>/ (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only report what would move.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        tenants = Tenant.objects.filter(is_template=False).exclude(schema_name=get_public_schema_name())
        for tenant in tenants.order_by("schema_name"):
            with tenant_context(tenant):
                result = call_recordings_relocate(dry_run=dry_run)
            self.stdout.write(
                f"{tenant.schema_name}: {'would move' if dry_run else 'moved'} {len(result.moved)}, "
                f"relinked {len(result.relinked)}, missing {len(result.missing)}, conflicts {len(result.conflicts)}"
            )
            if result.conflicts:
                self.stderr.write(f"{tenant.schema_name}: calls {result.conflicts} left in place (a different file "
                                  "is already at their new name)")  # fmt: skip
