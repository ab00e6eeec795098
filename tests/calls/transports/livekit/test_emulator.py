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

from calls.transports.livekit.emulator import LiveKitEmulator
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
