"""The one place that builds the ``stripe`` SDK client from the settings."""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def stripe_client() -> stripe.StripeClient:
    """A client for the configured Stripe account (or the server at ``STRIPE_API_BASE``)."""
    if not settings.STRIPE_SECRET_KEY:
        raise ImproperlyConfigured("Billing needs STRIPE_SECRET_KEY.")
    options: dict[str, Any] = {"max_network_retries": 2}
    if settings.STRIPE_API_BASE:
        options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **options)


def stripe_event_verify(payload: bytes, signature: str) -> stripe.Event:
    """The event in ``payload`` if ``signature`` is Stripe's for it, signed within the tolerance.

    Raises ``stripe.SignatureVerificationError`` otherwise (forged, stale, unsigned).
    """
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise ImproperlyConfigured("Stripe webhooks need STRIPE_WEBHOOK_SECRET.")
    return stripe.Webhook.construct_event(
        payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_S
    )
