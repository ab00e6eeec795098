"""The carrier's webhooks: verify, find the tenant, answer with TwiML.

``/twilio/voice`` answers a new call with its media stream. When the stream
ends, ``/twilio/stream-ended`` puts a caller the agent is transferring
through to the business's number with ``<Dial>``, offers a stream refused
for lack of room to another voice process or says the lines are busy, or
hangs up; ``/twilio/dial-ended`` records how the transfer went.
"""

from __future__ import annotations

import re

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from calls.hooks import call_access_for
from calls.models import Call, TransferStatus
from calls.services import (
    BUSY_REASONS,
    CallTransferError,
    call_admit,
    call_start,
    call_stream_ended,
    call_transfer_update,
)
from calls.transports.twilio import twiml
from tenants.models import Tenant
from tenants.selectors import tenant_for_phone_number

logger = structlog.get_logger(__name__)

# Twilio's call SIDs are "CA" and 32 hex digits; the column holds 64 characters.
_CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# PostgreSQL text cannot hold NUL, and no phone number holds a control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _signed_params(request: HttpRequest) -> dict[str, str] | None:
    """The posted parameters when ``X-Twilio-Signature`` signs them with our auth token, else None."""
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    params = {key: request.POST.get(key, "") for key in request.POST}
    if not token or not RequestValidator(token).validate(request.build_absolute_uri(), params, signature):
        logger.warning("twilio_signature_invalid", path=request.path)
        return None
    return params


def _xml(document: str) -> HttpResponse:
    return HttpResponse(document, content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_voice_webhook(request: HttpRequest) -> HttpResponse:
    params = _signed_params(request)
    if params is None:
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
            business_name=tenant.name, busy=admission.reason in BUSY_REASONS, caller_known=bool(from_number)
        )
        return _xml(document)
    stream_url = settings.TWILIO_STREAM_URL or _stream_url_for(request)
    logger.info("twilio_call_accepted", tenant=tenant.schema_name, call_id=call.pk, call_sid=call_sid)
    return _xml(twiml.connect_stream(stream_url, tenant=tenant, call=call))


def _stream_url_for(request: HttpRequest) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/{twiml.STREAM_PATH}"


def _call_of(params: dict[str, str]) -> tuple[Tenant, Call] | None:
    """The call a signed callback is about: the dialled number's business, then the call SID in its schema."""
    call_sid, to_number = params.get("CallSid", ""), params.get("To", "")
    if not _CALL_SID.fullmatch(call_sid) or not to_number or _CONTROL.search(to_number):
        return None
    tenant = tenant_for_phone_number(number=to_number)
    if tenant is None:
        return None
    with tenant_context(tenant):
        call = Call.objects.filter(carrier=Call.Carrier.TWILIO, carrier_call_id=call_sid).first()
    return (tenant, call) if call is not None else None


@csrf_exempt
@require_POST
def twilio_stream_ended(request: HttpRequest) -> HttpResponse:
    """``<Connect action>``: the call's media stream ended; put it through, hang up, offer it elsewhere, or say busy.

    A caller the agent is transferring is dialled through to the business's
    number. A stream every voice process refused for lack of room leaves the
    call ringing; it is offered to the next of ``TWILIO_STREAM_RETRY_URLS``,
    then turned away with the busy message. ``call_stream_ended`` decides.
    """
    params = _signed_params(request)
    if params is None:
        return HttpResponseForbidden("Invalid signature.")
    call_sid, to_number = params.get("CallSid", ""), params.get("To", "")
    if not _CALL_SID.fullmatch(call_sid) or _CONTROL.search(to_number):
        return HttpResponseBadRequest("Malformed call parameters.")
    found = _call_of(params)
    if found is None:
        return _xml(twiml.hangup())
    tenant, call = found
    end = call_stream_ended(tenant=tenant, call_id=call.pk, retry_urls=settings.TWILIO_STREAM_RETRY_URLS)
    if end.action == "dial":
        logger.info("twilio_transfer_dialing", tenant=tenant.schema_name, call_id=call.pk)
        return _xml(twiml.dial_person(end.dial_to))
    if end.action == "retry":
        return _xml(twiml.connect_stream(end.retry_url, tenant=tenant, call=call))
    if end.action == "turned_away":
        document = twiml.turned_away(
            business_name=tenant.name, busy=end.reason in BUSY_REASONS, caller_known=bool(call.from_number)
        )
        return _xml(document)
    return _xml(twiml.hangup())


# Twilio's DialCallStatus, as our transfer statuses.
DIAL_STATUSES = {
    "completed": TransferStatus.ANSWERED,
    "answered": TransferStatus.ANSWERED,
    "busy": TransferStatus.BUSY,
    "no-answer": TransferStatus.NO_ANSWER,
    "failed": TransferStatus.FAILED,
    "canceled": TransferStatus.FAILED,
}


@csrf_exempt
@require_POST
def twilio_dial_ended(request: HttpRequest) -> HttpResponse:
    """How the ``<Dial>`` to a person went (``<Dial action>``): recorded; a failed one has the caller told.

    A busy, unanswered or failed transfer queues a high-priority callback
    (the transfer hooks) and the caller hears that the team will call back;
    a repeated report changes nothing.
    """
    params = _signed_params(request)
    if params is None:
        return HttpResponseForbidden("Invalid signature.")
    dial_status = params.get("DialCallStatus", "")
    status = DIAL_STATUSES.get(dial_status)
    if status is None:
        return HttpResponseBadRequest("Unknown DialCallStatus.")
    found = _call_of(params)
    if found is None:
        return _xml(twiml.hangup())
    tenant, call = found
    with tenant_context(tenant):
        try:
            call_transfer_update(call_id=call.pk, status=status)
        except CallTransferError:
            logger.warning("twilio_dial_without_transfer", tenant=tenant.schema_name, call_id=call.pk)
            return _xml(twiml.hangup())
    logger.info("twilio_transfer_ended", tenant=tenant.schema_name, call_id=call.pk, status=str(status))
    if status == TransferStatus.ANSWERED:
        return _xml(twiml.hangup())
    return _xml(twiml.transfer_failed(status))
