"""The emulator speaks LiveKit's Twirp API to the official client, and checks its tokens as the server does."""

from __future__ import annotations

import asyncio
import datetime
import json

import aiohttp
import pytest
from livekit import api
from livekit.protocol import room as room_pb
from livekit.protocol import sip

from calls.transports.livekit.emulator import LiveKitEmulator, TransferRecord
from calls.transports.livekit.rules import dispatch_rule_for

from .conftest import API_KEY, API_SECRET


def _run(coro):
    return asyncio.run(coro)


async def _with_client(emulator: LiveKitEmulator, work, *, secret: str = API_SECRET):
    async with api.LiveKitAPI(emulator.url, API_KEY, secret) as lk:
        return await work(lk)


def test_the_official_client_creates_lists_and_deletes_dispatch_rules(livekit: LiveKitEmulator) -> None:
    async def work(lk: api.LiveKitAPI):
        created = await lk.sip.create_dispatch_rule(
            sip.CreateSIPDispatchRuleRequest(dispatch_rule=dispatch_rule_for(e164="+15550001001", schema_name="alpha"))
        )
        listed = await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())
        deleted = await lk.sip.delete_dispatch_rule(
            sip.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
        )
        after = await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())
        return created, listed, deleted, after

    created, listed, deleted, after = _run(_with_client(livekit, work))
    assert created.sip_dispatch_rule_id.startswith("SDR_")
    assert list(created.inbound_numbers) == ["+15550001001"]
    assert created.rule.dispatch_rule_individual.room_prefix == "call-"
    assert [(a.agent_name, json.loads(a.metadata)) for a in created.room_config.agents] == [
        ("voicedesk-receptionist", {"tenant": "alpha"})
    ]
    assert dict(created.attributes) == {"voicedesk.tenant": "alpha"}
    assert [r.sip_dispatch_rule_id for r in listed.items] == [created.sip_dispatch_rule_id]
    assert deleted.sip_dispatch_rule_id == created.sip_dispatch_rule_id
    assert list(after.items) == []


def test_a_second_rule_for_the_same_number_is_refused(livekit: LiveKitEmulator) -> None:
    async def work(lk: api.LiveKitAPI):
        request = sip.CreateSIPDispatchRuleRequest(
            dispatch_rule=dispatch_rule_for(e164="+15550001001", schema_name="a")
        )
        await lk.sip.create_dispatch_rule(request)
        await lk.sip.create_dispatch_rule(request)

    with pytest.raises(api.ServerError) as caught:
        _run(_with_client(livekit, work))
    assert (caught.value.code, caught.value.status) == ("invalid_argument", 400)
    assert len(livekit.rules) == 1


def test_a_token_signed_with_another_secret_is_refused(livekit: LiveKitEmulator) -> None:
    async def work(lk: api.LiveKitAPI):
        return await lk.sip.create_dispatch_rule(
            sip.CreateSIPDispatchRuleRequest(dispatch_rule=dispatch_rule_for(e164="+15550001001", schema_name="a"))
        )

    with pytest.raises(api.ServerError) as caught:
        _run(_with_client(livekit, work, secret="not-the-secret-not-the-secret-0000"))
    assert (caught.value.code, caught.value.status) == ("unauthenticated", 401)
    assert livekit.rules == {}


async def _post(url: str, token: str | None, body: bytes, content_type: str) -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def _token() -> api.AccessToken:
    return api.AccessToken(API_KEY, API_SECRET)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, (401, "unauthenticated")),
        # Video grants are not SIP admin.
        (
            _token().with_grants(api.VideoGrants(room_admin=True, room_create=True, room_list=True)).to_jwt(),
            (403, "permission_denied"),
        ),
        (_token().with_sip_grants(api.SIPGrants(call=True)).to_jwt(), (403, "permission_denied")),
        # Expired two minutes ago.
        (
            _token().with_sip_grants(api.SIPGrants(admin=True)).with_ttl(datetime.timedelta(seconds=-120)).to_jwt(),
            (401, "unauthenticated"),
        ),
    ],
)
def test_sip_methods_need_a_valid_token_with_the_sip_admin_grant(livekit: LiveKitEmulator, token, expected) -> None:
    body = json.dumps({"dispatch_rule": {"name": "x", "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}}}})
    url = f"{livekit.url}/twirp/livekit.SIP/CreateSIPDispatchRule"
    status, error = _run(_post(url, token, body.encode(), "application/json"))
    assert (status, error["code"]) == expected
    assert livekit.rules == {}


def test_json_bodies_are_answered_in_json(livekit: LiveKitEmulator) -> None:
    token = _token().with_sip_grants(api.SIPGrants(admin=True)).to_jwt()
    body = json.dumps(
        {"dispatch_rule": {"name": "voicedesk:+15550001009", "inboundNumbers": ["+15550001009"],
                           "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}}}}
    )  # fmt: skip
    status, created = _run(
        _post(f"{livekit.url}/twirp/livekit.SIP/CreateSIPDispatchRule", token, body.encode(), "application/json")
    )
    assert status == 200
    assert created["inboundNumbers"] == ["+15550001009"]
    assert created["sipDispatchRuleId"] in livekit.rules


def test_room_methods_check_the_room_grants(livekit: LiveKitEmulator) -> None:
    async def work(lk: api.LiveKitAPI):
        await lk.room.create_room(room_pb.CreateRoomRequest(name="call-1"))
        return await lk.room.list_rooms(room_pb.ListRoomsRequest())

    rooms = _run(_with_client(livekit, work))
    assert [r.name for r in rooms.rooms] == ["call-1"]
    # A token for another room may not list this one's participants.
    other = _token().with_grants(api.VideoGrants(room_admin=True, room="call-2")).to_jwt()
    status, error = _run(
        _post(
            f"{livekit.url}/twirp/livekit.RoomService/ListParticipants",
            other,
            b'{"room": "call-1"}',
            "application/json",
        )
    )
    assert (status, error["code"]) == (403, "permission_denied")


def _sip_caller_in_a_room(livekit: LiveKitEmulator) -> tuple[str, str]:
    """A phone caller in a room of their own, as a dispatch rule put them there: (room, identity)."""
    rule = sip.CreateSIPDispatchRuleRequest(dispatch_rule=dispatch_rule_for(e164="+15550001001", schema_name="alpha"))
    _run(_with_client(livekit, lambda lk: lk.sip.create_dispatch_rule(rule)))
    room_name = livekit.sip_call_inbound(from_number="+15557654321", to_number="+15550001001")
    return room_name, "sip_+15557654321"


def _transfer(livekit: LiveKitEmulator, room_name: str, identity: str, to: str):
    request = sip.TransferSIPParticipantRequest(
        participant_identity=identity, room_name=room_name, transfer_to=to, play_dialtone=True
    )
    return _run(_with_client(livekit, lambda lk: lk.sip.transfer_sip_participant(request)))


def test_an_answered_transfer_succeeds_and_the_sip_caller_leaves_the_room(livekit: LiveKitEmulator) -> None:
    room_name, identity = _sip_caller_in_a_room(livekit)
    response = _transfer(livekit, room_name, identity, "tel:+15550100199")
    assert response.status == sip.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL
    assert response.reason == sip.SIPTransferReason.STR_COMPLETED
    [record] = livekit.transfers
    assert record == TransferRecord(
        room_name=room_name,
        participant_identity=identity,
        transfer_to="tel:+15550100199",
        play_dialtone=True,
        outcome="answered",
    )
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=5)
    while identity in livekit.rooms[room_name].participants and datetime.datetime.now() < deadline:
        _run(asyncio.sleep(0.02))
    assert identity not in livekit.rooms[room_name].participants


@pytest.mark.parametrize(
    ("outcome", "code", "sip_code", "sip_status", "reason"),
    [
        ("busy", "resource_exhausted", 486, "Busy Here", "STR_REJECTED"),
        ("no_answer", "deadline_exceeded", 408, "Request Timeout", "STR_RINGING_TIMEOUT"),
        ("failed", "failed_precondition", 503, "Service Unavailable", "STR_REJECTED"),
    ],
)
def test_a_failed_transfer_is_the_twirp_error_livekit_answers_and_the_caller_stays(
    livekit: LiveKitEmulator, outcome, code, sip_code, sip_status, reason
) -> None:
    room_name, identity = _sip_caller_in_a_room(livekit)
    livekit.transfer_outcomes["tel:+15550100199"] = outcome
    with pytest.raises(api.SipCallError) as raised:
        _transfer(livekit, room_name, identity, "tel:+15550100199")
    error = raised.value
    assert (error.code, error.sip_status_code, error.sip_status, error.sip_transfer_reason) == (
        code, sip_code, sip_status, reason,
    )  # fmt: skip
    assert identity in livekit.rooms[room_name].participants


def test_a_transfer_needs_the_sip_call_grant_and_a_sip_participant(livekit: LiveKitEmulator) -> None:
    room_name, identity = _sip_caller_in_a_room(livekit)
    with pytest.raises(api.ServerError) as unknown:
        _transfer(livekit, room_name, "agent-1", "tel:+15550100199")
    assert (unknown.value.code, unknown.value.status) == ("not_found", 404)
    with pytest.raises(api.ServerError) as not_a_uri:
        _transfer(livekit, room_name, identity, "+15550100199")
    assert not_a_uri.value.code == "invalid_argument"
    # An admin token without the call grant (what a leaked provisioning key could do) is refused.
    token = api.AccessToken(API_KEY, API_SECRET).with_grants(api.VideoGrants(room_admin=True, room=room_name))
    request = sip.TransferSIPParticipantRequest(
        participant_identity=identity, room_name=room_name, transfer_to="tel:+1"
    )
    status, body = _run(_post(f"{livekit.url}/twirp/livekit.SIP/TransferSIPParticipant", token.to_jwt(),
                              request.SerializeToString(), "application/protobuf"))  # fmt: skip
    assert (status, body["code"]) == (403, "permission_denied")
    assert livekit.transfers == []
    assert identity in livekit.rooms[room_name].participants
