"""The carrier's voice webhook: verify, find the tenant, answer with TwiML."""

from __future__ import annotations

import re

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from calls.hooks import call_access_for
from calls.services import OVER_CAPACITY, call_admit, call_start
from calls.transports.twilio import twiml
from tenants.selectors import tenant_for_phone_number

logger = structlog.get_logger(__name__)

# Twilio's call SIDs are "CA" and 32 hex digits; the column holds 64 characters.
_CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# PostgreSQL text cannot hold NUL, and no phone number holds a control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@csrf_exempt
@require_POST
def twilio_voice_webhook(request: HttpRequest) -> HttpResponse:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    params = {key: request.POST.get(key, "") for key in request.POST}
    if not token or not RequestValidator(token).validate(request.build_absolute_uri(), params, signature):
        logger.warning("twilio_signature_invalid", path=request.path)
        return HttpResponseForbidden("Invalid signature.")

    call_sid, from_number, to_number = params.get("CallSid", ""), params.get("From", ""), params.get("To", "")
    if (call_sid and not _CALL_SID.fullmatch(call_sid)) or _CONTROL.search(from_number + to_number):
        # Signed, so from Twilio (or its key leaked), but not a call it would
        # describe: say so rather than store it.
        logger.warning("twilio_call_malformed", call_sid_length=len(call_sid))
        return HttpResponseBadRequest("Malformed call parameters.")
    tenant = tenant_for_phone_number(number=to_number) if to_number else None
    if tenant is None or not call_sid:
        logger.info("twilio_call_rejected", to=to_number, call_sid=call_sid)
        return HttpResponse(twiml.unknown_number(), content_type="text/xml")

    call = call_start(
        tenant=tenant, carrier="twilio", carrier_call_id=call_sid, from_number=from_number, to_number=to_number
    )
    # Decided once, here: a call turned away never opens a media stream.
    admission = call_admit(tenant=tenant, call_id=call.pk, access=call_access_for(tenant))
    if not admission.admitted:
        logger.info("twilio_call_turned_away", tenant=tenant.schema_name, call_id=call.pk, reason=admission.reason)
        document = twiml.turned_away(
            business_name=tenant.name, busy=admission.reason == OVER_CAPACITY, caller_known=bool(from_number)
        )
        return HttpResponse(document, content_type="text/xml")
    stream_url = settings.TWILIO_STREAM_URL or _stream_url_for(request)
    logger.info("twilio_call_accepted", tenant=tenant.schema_name, call_id=call.pk, call_sid=call_sid)
    return HttpResponse(twiml.connect_stream(stream_url, tenant=tenant, call=call), content_type="text/xml")


def _stream_url_for(request: HttpRequest) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/{twiml.STREAM_PATH}"
