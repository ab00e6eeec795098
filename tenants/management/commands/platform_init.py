"""Create the public tenant, its domains and the tenant template. Safe to rerun."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import get_public_schema_name

from tenants.models import Domain, Tenant
from tenants.services import tenant_template_ensure


class Command(BaseCommand):
    help = "Create the public tenant, its domains and the template new tenants are cloned from."

    def handle(self, *args: Any, **options: Any) -> None:
        public, _ = Tenant.objects.get_or_create(schema_name=get_public_schema_name(), defaults={"name": "VoiceDesk"})
        for host in {settings.VOICEDESK_BASE_DOMAIN, "127.0.0.1"}:
            Domain.objects.get_or_create(
                domain=host, defaults={"tenant": public, "is_primary": host == settings.VOICEDESK_BASE_DOMAIN}
            )
        tenant_template_ensure()
        self.stdout.write("Platform ready: public site and tenant template.")
