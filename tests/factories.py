"""Factories for tenant-schema models. Use them inside a tenant context."""

from typing import Any

import factory

from calls.models import Call


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    carrier = Call.Carrier.TWILIO
    carrier_call_id = factory.Sequence(lambda n: f"CA{n:032d}")
    from_number = "+15557654321"
    to_number = "+15550001001"
    status = Call.Status.COMPLETED


def outcome(**overrides: Any) -> dict[str, Any]:
    """A captured-call outcome as the session stores it on ``Call.captured``."""
    base: dict[str, Any] = {
        "fields": {"name": "Maria Gonzalez", "callback_number": "+15552013344", "reason": "my kitchen sink is leaking"},
        "reason": "my kitchen sink is leaking",
        "category": "leak",
        "priority": "normal",
        "faq_answered": ["What are your opening hours?"],
        "unanswered_questions": [],
        "wants_human": False,
        "callback_requested": True,
        "confirmed": True,
        "completed": True,
        "resolved": False,
        "summary": "Leak: my kitchen sink is leaking.",
    }
    return base | overrides
