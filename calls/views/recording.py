"""The call recording, streamed to members of the call's tenant only.

Recordings are personal data, so they are never served from a public media
URL. Browsers seek in ``<audio>`` with HTTP Range requests; a single byte
range is answered with 206 so "jump to this utterance" works.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from calls.models import Call
from calls.selectors import call_recording_get
from calls.views.history import TenantRequest
from tenants.models import Membership
from tenants.permissions import role_required

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


@require_GET
@role_required(Membership.Role.AGENT)
def call_recording(request: TenantRequest, pk: int) -> HttpResponseBase:
    try:
        call = call_recording_get(tenant=request.tenant, call_id=pk)
    except Call.DoesNotExist as exc:
        raise Http404("No such call.") from exc
    if not call.recording:
        raise Http404("This call has no recording.")
    try:
        handle = call.recording.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This call has no recording.") from exc
    size = call.recording.size
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match is None or size == 0:
        response = FileResponse(handle, content_type="audio/wav")
        response["Accept-Ranges"] = "bytes"
        response["Cache-Control"] = "private, max-age=3600"
        return response
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    elif last_text:  # the last N bytes
        first, last = max(size - int(last_text), 0), size - 1
    else:
        first, last = 0, size - 1
    if first > last or first >= size:
        handle.close()
        unsatisfiable = HttpResponse(status=416)
        unsatisfiable["Content-Range"] = f"bytes */{size}"
        return unsatisfiable
    handle.seek(first)

    def chunks(remaining: int = last - first + 1) -> Iterator[bytes]:
        try:
            while remaining > 0:
                data = handle.read(min(CHUNK, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data
        finally:
            handle.close()

    partial = StreamingHttpResponse(chunks(), status=206, content_type="audio/wav")
    partial["Content-Range"] = f"bytes {first}-{last}/{size}"
    partial["Content-Length"] = str(last - first + 1)
    partial["Accept-Ranges"] = "bytes"
    partial["Cache-Control"] = "private, max-age=3600"
    return partial
