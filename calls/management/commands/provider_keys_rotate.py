"""Re-encrypt every business's stored provider keys with the first of VOICEDESK_SECRET_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_public_schema_name, tenant_context

from calls.services import provider_keys_rotate
from tenants.models import Tenant
from voicedesk.core.secrets import SecretsUnavailableError, SecretUnreadableError


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider key with the first key of VOICEDESK_SECRET_KEYS. Put the new key "
        "first, run this, then drop the old key. Businesses whose keys no configured key opens are listed "
        "and left as they were; the command then fails."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        unreadable: list[str] = []
        for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
            with tenant_context(tenant):
                try:
                    rotated += provider_keys_rotate()
                except SecretUnreadableError:
                    unreadable.append(tenant.schema_name)
                except SecretsUnavailableError as exc:
                    raise CommandError(str(exc)) from exc
        self.stdout.write(f"{rotated} key{'s' if rotated != 1 else ''} re-encrypted with the first key.")
        if unreadable:
            raise CommandError(
                "No configured key opens the stored keys of: "
                + ", ".join(unreadable)
                + ". They were left as they were."
            )
