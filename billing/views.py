"""Stripe's webhook endpoint on the public host."""

from __future__ import annotations

import stripe
import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services import stripe_event_receive

logger = structlog.get_logger(__name__)

# Stripe's events are a few kilobytes; anything this large is not one.
MAX_WEBHOOK_BYTES = 512 * 1024


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify the signature on the raw body, store the event once, answer at once; a worker applies it."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return JsonResponse({"error": "Billing is not configured."}, status=404)
    if int(request.headers.get("Content-Length") or 0) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "Payload too large."}, status=413)
    try:
        _event, created = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except (stripe.SignatureVerificationError, ValueError):
        logger.warning("stripe_webhook_rejected")
        return JsonResponse({"error": "Invalid signature or payload."}, status=400)
    return JsonResponse({"received": True, "duplicate": not created})
