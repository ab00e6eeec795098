"""Webhooks cloud speech vendors post to on the public host, for a tenant's call."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_tenants.utils import tenant_context

from calls.selectors import call_post_call_webhook_matches
from calls.services import POST_CALL_WEBHOOK_HEADER
from calls.tasks import call_transcript_store_job
from tenants.models import Tenant
from tenants.services import RESERVED_SCHEMAS


@csrf_exempt
@require_POST
def post_call_transcript_webhook(request: HttpRequest, schema: str, call_id: int) -> HttpResponse:
    """AssemblyAI says a call's post-call transcript is done: fetch and store it in the background.

    The post must carry the call's own token in ``X-VoiceDesk-Webhook`` and
    the id of the transcript requested for it; an unknown business or call, a
    wrong token or id are all a 404 and change nothing. Answered at once with
    a 2xx, as AssemblyAI retries anything slower than 10 s.
    """
    try:
        body = json.loads(request.body)
        transcript_id = body["transcript_id"]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("expected JSON with transcript_id")
    if not isinstance(transcript_id, str) or not transcript_id:
        return HttpResponseBadRequest("expected JSON with transcript_id")
    tenant = Tenant.objects.filter(schema_name=schema).exclude(schema_name__in=RESERVED_SCHEMAS).first()
    if tenant is None:
        raise Http404
    token = request.headers.get(POST_CALL_WEBHOOK_HEADER, "")
    with tenant_context(tenant):
        if not call_post_call_webhook_matches(tenant=tenant, call_id=call_id, transcript_id=transcript_id, token=token):
            raise Http404
        # Sent inside the tenant's schema: the message runs there.
        call_transcript_store_job.send(call_id, transcript_id)
    return HttpResponse(status=204)
