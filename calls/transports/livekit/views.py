"""LiveKit's webhook: verify the signed token and the body's hash, refuse stale and replayed events, apply."""

from __future__ import annotations

import jwt
import structlog
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from livekit.api import TokenVerifier, WebhookReceiver

from calls.transports.livekit.services import livekit_webhook_apply, webhook_is_stale
from calls.transports.livekit.tasks import livekit_call_finish_later

logger = structlog.get_logger(__name__)

MAX_BODY_BYTES = 65_536
SEEN_KEY = "livekit-webhook-seen:{}"


@csrf_exempt
@require_POST
def livekit_webhook(request: HttpRequest) -> HttpResponse:
    key, secret = settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
    auth = request.headers.get("Authorization", "")
    if not (key and secret) or not auth:
        logger.warning("livekit_webhook_unsigned")
        return HttpResponseForbidden("Unsigned.")
    if len(request.body) > MAX_BODY_BYTES:
        return HttpResponseBadRequest("Too large.")
    try:
        event = WebhookReceiver(TokenVerifier(key, secret)).receive(request.body.decode("utf-8"), auth)
    except (jwt.PyJWTError, ValueError, UnicodeDecodeError) as exc:
        logger.warning("livekit_webhook_invalid", error=type(exc).__name__)
        return HttpResponseForbidden("Invalid signature.")
    except Exception as exc:  # noqa: BLE001 - the receiver raises a bare Exception for a missing or wrong body hash
        logger.warning("livekit_webhook_invalid", error=str(exc)[:60])
        return HttpResponseForbidden("Invalid signature.")
    if not event.id or webhook_is_stale(event):
        logger.warning("livekit_webhook_stale", event_id=event.id)
        return HttpResponseForbidden("Stale event.")
    # Remembered for longer than an event stays fresh, so a replay is always caught by one check or the other.
    if not cache.add(SEEN_KEY.format(event.id), 1, timeout=settings.LIVEKIT_WEBHOOK_MAX_AGE_S * 2 + 60):
        logger.warning("livekit_webhook_replayed", event_id=event.id)
        return HttpResponse("Replayed event.", status=409)
    try:
        outcome = livekit_webhook_apply(event, finish_later=livekit_call_finish_later)
    except Exception:
        cache.delete(SEEN_KEY.format(event.id))  # LiveKit's retry of this event must get through
        raise
    logger.info("livekit_webhook_applied", webhook_event=event.event, event_id=event.id, outcome=outcome)
    return HttpResponse("OK")
