"""Provision a tenant from the command line, with the same service as sign-up."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import User
from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a business (tenant) with its owner."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Subdomain and schema name, e.g. acme")
        parser.add_argument("--name", required=True, help="Business name")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", help="Only when the owner does not exist yet")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["owner_email"].lower()
        owner = User.objects.filter(email=email).first()
        if owner is None:
            if not options["owner_password"]:
                raise CommandError(f"No user {email}; pass --owner-password to create one.")
            owner = User.objects.create_user(email=email, password=options["owner_password"])
        try:
            tenant = tenant_create(name=options["name"], slug=options["slug"], owner=owner)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        domain = tenant.get_primary_domain()
        self.stdout.write(self.style.SUCCESS(f"Created {tenant.name} at {domain.domain if domain else '?'}"))
