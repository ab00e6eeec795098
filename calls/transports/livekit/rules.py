"""SIP dispatch rules at LiveKit, through the official ``livekit-api`` client: one rule per phone number.

Each rule takes calls to one number (``inbound_numbers``), puts each caller
in a room of their own (``dispatch_rule_individual``) and dispatches our
agent with the tenant's schema in the job metadata. The rule's name marks it
as ours, so a sync never touches rules someone else made on the project.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from livekit import api
from livekit.protocol import agent_dispatch, sip
from livekit.protocol import room as room_pb

RULE_NAME_PREFIX = "voicedesk:"
ROOM_PREFIX = "call-"
# The rule's attributes are inherited by the SIP participant, so webhooks name the tenant too.
TENANT_ATTRIBUTE = "voicedesk.tenant"
# A room with nobody left closes after this long.
ROOM_EMPTY_TIMEOUT_S = 30

T = TypeVar("T")


class LiveKitNotConfiguredError(Exception):
    """``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` or ``LIVEKIT_API_SECRET`` is missing."""


@dataclass(frozen=True, slots=True)
class OurRule:
    """A dispatch rule we made: its id, number and the tenant schema it dispatches for."""

    rule_id: str
    e164: str
    schema_name: str


def livekit_configured() -> bool:
    return bool(settings.LIVEKIT_URL and settings.LIVEKIT_API_KEY and settings.LIVEKIT_API_SECRET)


def job_metadata(schema_name: str) -> str:
    return json.dumps({"tenant": schema_name})


def dispatch_rule_for(*, e164: str, schema_name: str) -> sip.SIPDispatchRuleInfo:
    """The rule that sends calls to ``e164`` to our agent for ``schema_name``'s business."""
    return sip.SIPDispatchRuleInfo(
        name=f"{RULE_NAME_PREFIX}{e164}",
        inbound_numbers=[e164],
        rule=sip.SIPDispatchRule(dispatch_rule_individual=sip.SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX)),
        metadata=job_metadata(schema_name),
        attributes={TENANT_ATTRIBUTE: schema_name},
        room_config=room_pb.RoomConfiguration(
            empty_timeout=ROOM_EMPTY_TIMEOUT_S,
            # The room carries the business too: ``room_finished`` has no participant to read it from.
            metadata=job_metadata(schema_name),
            agents=[
                agent_dispatch.RoomAgentDispatch(
                    agent_name=settings.LIVEKIT_AGENT_NAME, metadata=job_metadata(schema_name)
                )
            ],
        ),
    )


def _with_api(work: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
    """Run one batch of API calls on a fresh client (actors and commands are synchronous)."""
    if not livekit_configured():
        raise LiveKitNotConfiguredError("set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET")

    async def run() -> T:
        async with api.LiveKitAPI(settings.LIVEKIT_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET) as lk:
            return await work(lk)

    return asyncio.run(run())


def _ours(info: sip.SIPDispatchRuleInfo) -> OurRule | None:
    if not info.name.startswith(RULE_NAME_PREFIX):
        return None
    try:
        schema_name = str(json.loads(info.metadata or "{}").get("tenant", ""))
    except (json.JSONDecodeError, AttributeError):
        schema_name = ""
    return OurRule(
        rule_id=info.sip_dispatch_rule_id, e164=info.name.removeprefix(RULE_NAME_PREFIX), schema_name=schema_name
    )


def rules_list() -> list[OurRule]:
    """Our dispatch rules at LiveKit (others on the project are left out)."""

    async def work(lk: api.LiveKitAPI) -> list[OurRule]:
        response = await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())
        return [rule for info in response.items if (rule := _ours(info)) is not None]

    return _with_api(work)


def rule_create(*, e164: str, schema_name: str) -> str:
    """Create the number's rule; returns its id. ``api.ServerError`` when LiveKit refuses."""

    async def work(lk: api.LiveKitAPI) -> str:
        request = sip.CreateSIPDispatchRuleRequest(dispatch_rule=dispatch_rule_for(e164=e164, schema_name=schema_name))
        info = await lk.sip.create_dispatch_rule(request)
        return str(info.sip_dispatch_rule_id)

    return _with_api(work)


def rules_delete(rule_ids: list[str]) -> list[str]:
    """Delete rules by id; returns those LiveKit had (a rule already gone is not an error)."""

    async def work(lk: api.LiveKitAPI) -> list[str]:
        deleted = []
        for rule_id in rule_ids:
            try:
                await lk.sip.delete_dispatch_rule(sip.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
            except api.ServerError as exc:
                if exc.code != "not_found":
                    raise
            else:
                deleted.append(rule_id)
        return deleted

    return _with_api(work)
