"""Every shared scenario through the LiveKit transport: SIP into a room, our agent worker, the expected ticket.

The simulator's caller (its brain, voice and ear) talks on a LiveKit line
(``room_line.RoomLine``) instead of Twilio Media Streams; the agent worker
takes the job from the emulator and runs the same session. Like ``make
test``'s scenario step, a scenario that misses is called once more.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django_tenants.utils import tenant_context

from calls.transports.livekit import rules
from calls.transports.livekit.agent import AgentWorker
from calls.transports.livekit.emulator import EmulatedRoomConnector, LiveKitEmulator
from tenants.models import Tenant
from tickets.services import ticket_create_from_call
from voicedesk.simulator import provision_tenant, shared_speech_models
from voicedesk.simulator.caller import CallerBrain
from voicedesk.simulator.expect import check_expectations, load_stored_call
from voicedesk.simulator.scenario import Scenario, load_scenarios

from .conftest import API_KEY, API_SECRET
from .room_line import LiveKitCaller

SHARED = Path(settings.BASE_DIR).parent / "shared" / "scenarios"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/scenarios")
SCENARIOS = load_scenarios([SHARED]) if SHARED.is_dir() else []


async def _call_once(livekit: LiveKitEmulator, scenario: Scenario) -> list[str]:
    connector = EmulatedRoomConnector(livekit)
    worker = AgentWorker(
        url=livekit.url, api_key=API_KEY, api_secret=API_SECRET, agent_name=settings.LIVEKIT_AGENT_NAME,
        capacity=2, connector=connector,
    )  # fmt: skip
    running = asyncio.create_task(worker.run_once())
    models = shared_speech_models()
    await models.warm_up()
    await models.prepare(sorted({line.spoken for line in CallerBrain(scenario.caller).predictable_lines()}))
    try:
        await asyncio.wait_for(worker.registered.wait(), 10)
        caller = LiveKitCaller(
            scenario.caller, scenario_id=scenario.id, to_number=scenario.tenant.phone_number,
            base_url="", auth_token="", models=models, emulator=livekit, connector=connector,
        )  # fmt: skip
        conversation = await caller.run()
        assert conversation.error is None, conversation.error
        deadline = asyncio.get_running_loop().time() + 30
        while not worker.results and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)
    [result] = worker.results
    assert result.call_id is not None
    tenant = await database_sync_to_async(Tenant.objects.get)(schema_name=scenario.tenant.slug.replace("-", "_"))

    def make_ticket() -> None:  # what the call-finished hook's worker runs
        with tenant_context(tenant):
            ticket_create_from_call(call_id=result.call_id)

    await database_sync_to_async(make_ticket)()
    stored = await database_sync_to_async(load_stored_call)(scenario.tenant.slug, caller.room_name)
    return check_expectations(scenario.expect, stored, call_sid=caller.room_name)


@pytest.mark.skipif(not SCENARIOS, reason="the shared scenarios are not beside this checkout")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_shared_scenario_through_livekit_makes_the_expected_ticket(
    livekit: LiveKitEmulator, tenant_a, scenario: Scenario
) -> None:
    await database_sync_to_async(provision_tenant)(scenario.tenant)
    schema = scenario.tenant.slug.replace("-", "_")
    await database_sync_to_async(rules.rule_create)(e164=scenario.tenant.phone_number, schema_name=schema)
    mismatches = await _call_once(livekit, scenario)
    if mismatches:
        mismatches = await _call_once(livekit, scenario)
    assert mismatches == []
