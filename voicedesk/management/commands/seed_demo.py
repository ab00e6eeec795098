"""Seed the demo business ``acme`` with a month of activity and print how to sign in. Safe to rerun."""

import secrets
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tenants.models import Tenant, User
from tenants.services import phone_number_register, tenant_create
from voicedesk.demo.build import demo_data_build

OWNER_EMAIL = "owner@voicedesk.localhost"
DEMO_SLUG = "acme"
DEMO_EMAIL = "admin@acme.localhost"
DEMO_NUMBER = "+15550100100"
DEMO_AGENT: dict[str, Any] = {
    "greeting": "Thanks for calling Acme Plumbing and Heating, this is the virtual receptionist. How can I help?",
    "categories": ["leak", "heating", "drains", "installation", "billing", "general"],
    "urgent_keywords": ["flood", "flooding", "gas", "no heat", "sparks"],
    "vocabulary": ["Acme", "boiler", "plumber", "drain", "leak"],
    "faqs": [
        {
            "q": "What are your opening hours?",
            "a": "We are open Monday to Friday from 8 am to 6 pm, and Saturday from 9 am to 1 pm.",
        },
        {
            "q": "Do you offer emergency service?",
            "a": "Yes, we have a plumber on call 24 hours a day for emergencies like floods and gas leaks.",
        },
        {
            "q": "How much is a call-out?",
            "a": "Our standard call-out fee is 89 dollars, which includes the first half hour of work.",
        },
        {"q": "Which areas do you cover?", "a": "We cover Springfield and every town within 25 miles of it."},
        {"q": "Which payment methods do you accept?", "a": "We accept cash, all major credit cards and bank transfer."},
    ],
}


class Command(BaseCommand):
    help = (
        "Create the demo tenant acme with an admin, a phone number and an agent, fill it with a month of"
        " calls and tickets, then print the sign-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-file", default=str(Path(settings.BASE_DIR) / "var" / "demo-password"))

    def handle(self, *args: Any, **options: Any) -> None:
        secret_file = Path(options["credentials_file"])
        user, password = _user_with_password(DEMO_EMAIL, secret_file, superuser=False)
        _, owner_password = _user_with_password(
            OWNER_EMAIL, secret_file.with_name(secret_file.name + "-owner"), superuser=True
        )

        tenant = Tenant.objects.filter(schema_name=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenant_create(
                name="Acme Plumbing & Heating", slug=DEMO_SLUG, owner=user, agent_defaults=DEMO_AGENT
            )
        phone_number_register(tenant=tenant, number=DEMO_NUMBER, label="Main line")
        demo = demo_data_build(tenant=tenant, admin=user)

        port = "8000"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "VoiceDesk demo is ready.",
                    f"  Dashboard:  http://{DEMO_SLUG}.{settings.VOICEDESK_BASE_DOMAIN}:{port}/",
                    f"  Sign in:    {DEMO_EMAIL}",
                    f"  Password:   {password}",
                    f"  Phone line: {DEMO_NUMBER} (Twilio webhook: http://{settings.VOICEDESK_BASE_DOMAIN}:{port}/twilio/voice)",
                    f"  Owner admin: http://{settings.VOICEDESK_BASE_DOMAIN}:{port}/admin/"
                    f"  ({OWNER_EMAIL} / {owner_password}; it asks for an authenticator app code)",
                    f"  Demo data:  {demo.calls} calls, {demo.tickets} tickets, {demo.callbacks} callbacks"
                    f"{'' if demo.created else ' (already there)'}",
                    "",
                ]
            )
        )


def _user_with_password(email: str, secret_file: Path, *, superuser: bool) -> tuple[User, str]:
    """The user ``email`` with a verified address; its password is kept in ``secret_file``."""
    user = User.objects.filter(email=email).first()
    if user is None or not secret_file.exists():
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            if user is None:
                create = User.objects.create_superuser if superuser else User.objects.create_user
                user = create(email=email, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(password)
        secret_file.chmod(0o600)
    return user, secret_file.read_text().strip()
