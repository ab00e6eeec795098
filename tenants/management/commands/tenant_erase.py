"""Erase a business completely (the platform owner's command): schema, recordings and public rows."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant, User
from tenants.services import TenantErasureReport, tenant_erase


class Command(BaseCommand):
    help = (
        "Erase a business: its schema, recordings, numbers, keys, memberships, members who belong nowhere else, "
        "domains, usage and subscription rows. Shows what would go unless --confirm names the business again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schema", help="The business's schema name, e.g. acme")
        parser.add_argument("--by", required=True, help="Email of the superuser erasing it (kept in the audit row)")
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be erased.")
        parser.add_argument("--confirm", default="", help="The schema name again: erase without asking.")

    def handle(self, *args: Any, **options: Any) -> None:
        schema = options["schema"]
        actor = User.objects.filter(email__iexact=options["by"]).first()
        if actor is None:
            raise CommandError(f"No user {options['by']}.")
        tenant = Tenant.objects.filter(schema_name=schema).first()
        if tenant is None:
            raise CommandError(f"No business with schema {schema!r}.")
        try:
            report = tenant_erase(tenant=tenant, actor=actor, dry_run=True)
            self._show(report)
            if report.blockers:
                raise CommandError("Not erased: " + " ".join(report.blockers))
            if options["dry_run"]:
                return
            confirmation = options["confirm"] or (
                input(f"Type {schema} to erase it for good: ") if options.get("interactive", True) else ""
            )
            if confirmation != schema:
                raise CommandError("Not erased: the confirmation did not match.")
            report = tenant_erase(tenant=tenant, actor=actor, dry_run=False)
        except (PermissionDenied, ValidationError) as exc:
            raise CommandError(str(exc)) from exc
        if not report.erased:
            raise CommandError("Not erased: " + " ".join(report.blockers))
        self.stdout.write(self.style.SUCCESS(f"Erased {schema}."))

    def _show(self, report: TenantErasureReport) -> None:
        self.stdout.write(f"{report.schema_name}:")
        for kind, count in sorted(report.counts.items()):
            self.stdout.write(f"  {kind}: {count}")
        for name, value in sorted(report.kept.items()):
            self.stdout.write(f"  kept for accounting: {name} = {value}")
