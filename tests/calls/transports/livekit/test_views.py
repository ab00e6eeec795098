"""LiveKit's webhook: signed as LiveKit signs it, stale and replayed events refused, calls opened and closed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context
from google.protobuf import json_format
from livekit.protocol import models

from calls.models import Call
from calls.services import call_answer
from calls.transports.livekit.emulator import LiveKitEmulator
from calls.transports.livekit.rules import TENANT_ATTRIBUTE
from calls.transports.livekit.tasks import livekit_call_finish_overdue_job

pytestmark = pytest.mark.django_db

ROOM = "call-+15557654321_ab12cd34"


def _post(body: bytes, auth: str | None) -> Any:
    headers = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    return Client(HTTP_HOST="localhost").post(
        "/livekit/webhook", data=body, content_type="application/webhook+json", **headers
    )


def _sip_participant(**attributes: str) -> models.ParticipantInfo:
    attrs = {"sip.phoneNumber": "+15557654321", "sip.trunkPhoneNumber": "+15550001001", "sip.callID": "SCL_1"}
    attrs.update(attributes)
    return models.ParticipantInfo(identity="sip_+15557654321", kind=models.ParticipantInfo.SIP, attributes=attrs)


def _event(livekit: LiveKitEmulator, kind: str, *, age_s: int = 0, metadata: str = "", **fields: Any) -> bytes:
    room = models.Room(name=ROOM, sid="RM_1", metadata=metadata)
    event = livekit.webhook_event(kind, room_info=room, **fields)
    event.created_at = int(time.time()) - age_s
    return json_format.MessageToJson(event).encode()


def _calls(tenant) -> list[Call]:
    with tenant_context(tenant):
        return list(Call.objects.filter(carrier="livekit"))


def test_the_sip_caller_joining_opens_one_call_for_the_business_the_rule_names(
    livekit: LiveKitEmulator, tenant_a, tenant_b
) -> None:
    # The rule's tenant attribute wins over the dialled number.
    body = _event(livekit, "participant_joined", participant=_sip_participant(**{TENANT_ATTRIBUTE: "beta"}))

    response = _post(body, livekit.webhook_sign(body))

    assert response.status_code == 200
    [call] = _calls(tenant_b.tenant)
    assert (call.carrier_call_id, call.from_number, call.to_number, call.status) == (
        ROOM, "+15557654321", "+15550001001", "ringing"
    )  # fmt: skip
    assert _calls(tenant_a.tenant) == []


def test_without_the_tenant_attribute_the_dialled_number_finds_the_business(livekit: LiveKitEmulator, tenant_a) -> None:
    body = _event(livekit, "participant_joined", participant=_sip_participant())
    assert _post(body, livekit.webhook_sign(body)).status_code == 200
    assert [c.carrier_call_id for c in _calls(tenant_a.tenant)] == [ROOM]


@pytest.mark.parametrize(
    "case",
    ["unsigned", "other secret", "body changed", "expired token", "stale event"],
)
def test_unsigned_forged_and_stale_webhooks_are_refused_and_change_nothing(
    livekit: LiveKitEmulator, tenant_a, case: str
) -> None:
    body = _event(
        livekit, "participant_joined", participant=_sip_participant(), age_s=600 if case == "stale event" else 0
    )
    auth: str | None = livekit.webhook_sign(body)
    if case == "unsigned":
        auth = None
    elif case == "other secret":
        auth = livekit.webhook_sign(body, api_secret="another-secret-another-secret-0000")
    elif case == "body changed":
        body = body.replace(b"+15557654321", b"+15557654329")
    elif case == "expired token":
        auth = livekit.webhook_sign(body, ttl_s=-120)

    response = _post(body, auth)

    assert response.status_code == 403
    assert _calls(tenant_a.tenant) == []


def test_a_replayed_event_is_refused(livekit: LiveKitEmulator, tenant_a) -> None:
    joined = _event(livekit, "participant_joined", participant=_sip_participant())
    assert _post(joined, livekit.webhook_sign(joined)).status_code == 200
    # The same event id again, freshly signed: a replay.
    assert _post(joined, livekit.webhook_sign(joined)).status_code == 409
    assert len(_calls(tenant_a.tenant)) == 1


def test_a_caller_who_leaves_before_the_agent_answers_finishes_the_call(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks
) -> None:
    joined = _event(livekit, "participant_joined", participant=_sip_participant())
    _post(joined, livekit.webhook_sign(joined))
    left = _event(livekit, "participant_left", participant=_sip_participant())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert _post(left, livekit.webhook_sign(left)).status_code == 200

    [call] = _calls(tenant_a.tenant)
    assert (call.status, call.end_reason) == ("abandoned", "caller_hangup_before_answer")
    assert len(callbacks) == 2  # the call-finished hooks (ticket, usage) and the dashboards' push


def test_a_call_in_progress_is_left_to_its_agent_and_finished_after_the_grace_if_it_never_does(
    livekit: LiveKitEmulator, tenant_a, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    joined = _event(livekit, "participant_joined", participant=_sip_participant())
    _post(joined, livekit.webhook_sign(joined))
    [call] = _calls(tenant_a.tenant)
    with tenant_context(tenant_a.tenant):
        call_answer(call_id=call.pk, stream_id="AJ_1")
    scheduled: list[tuple[str, int, str]] = []
    monkeypatch.setattr(
        "calls.transports.livekit.views.livekit_call_finish_later", lambda *args: scheduled.append(args)
    )
    # Our rules put the business in the room's metadata: room_finished names no participant.
    finished = _event(livekit, "room_finished", metadata='{"tenant": "alpha"}')

    with django_capture_on_commit_callbacks(execute=True):
        assert _post(finished, livekit.webhook_sign(finished)).status_code == 200

    assert scheduled == [("alpha", call.pk, "room_finished")]
    [still] = _calls(tenant_a.tenant)
    assert still.status == "in_progress"
    with tenant_context(tenant_a.tenant):
        livekit_call_finish_overdue_job.fn(call.pk, "room_finished")
    [done] = _calls(tenant_a.tenant)
    assert (done.status, done.end_reason) == ("abandoned", "room_finished_agent_lost")
