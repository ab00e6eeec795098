"""The agent worker against the emulator: dispatch, capacity and load, and a whole call through a room."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from livekit.protocol import agent as agent_pb

from calls.audio import resample
from calls.transports.livekit import rules
from calls.transports.livekit.agent import AgentWorker
from calls.transports.livekit.emulator import EmulatedRoomConnector, LiveKitEmulator
from calls.transports.livekit.room import AgentRoom
from tenants.models import Tenant
from tests.factories import SubscriptionFactory
from tickets.services import ticket_create_from_call
from voicedesk.simulator import provision_tenant
from voicedesk.simulator.caller import SpeechModels
from voicedesk.simulator.expect import check_expectations, load_stored_call
from voicedesk.simulator.scenario import load_scenario

from .conftest import API_KEY, API_SECRET
from .room_line import ring_in

# ../shared/scenarios, relative to the repository root.
SCENARIOS = Path(settings.BASE_DIR).parent / "shared" / "scenarios"


def _worker(emulator: LiveKitEmulator, connector: Any, capacity: int = 2) -> AgentWorker:
    return AgentWorker(
        url=emulator.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        agent_name=settings.LIVEKIT_AGENT_NAME,
        capacity=capacity,
        connector=connector,
    )


def _deliver_webhooks_to_django(emulator: LiveKitEmulator) -> None:
    def deliver(body: bytes, auth: str) -> int:
        response = Client(HTTP_HOST="localhost").post(
            "/livekit/webhook", data=body, content_type="application/webhook+json", HTTP_AUTHORIZATION=auth
        )
        return int(response.status_code)

    emulator.webhook_deliver = deliver


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


class HeldConnector:
    """Joins rooms only when released: keeps a job busy without a conversation."""

    def __init__(self, emulator: LiveKitEmulator) -> None:
        self.inner = EmulatedRoomConnector(emulator)
        self.release = asyncio.Event()

    async def connect(self, url: str, token: str) -> AgentRoom:
        await self.release.wait()
        return await self.inner.connect(url, token)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_full_worker_refuses_jobs_and_reports_its_load(livekit: LiveKitEmulator, tenant_a) -> None:
    await database_sync_to_async(rules.rule_create)(e164="+15550001001", schema_name="alpha")
    connector = HeldConnector(livekit)
    worker = _worker(livekit, connector, capacity=1)
    running = asyncio.create_task(worker.run_once())
    try:
        await asyncio.wait_for(worker.registered.wait(), 10)
        first = await asyncio.to_thread(livekit.sip_call_inbound, from_number="+15557654321", to_number="+15550001001")
        await _until(lambda: len(worker.jobs) == 1)
        await _until(lambda: livekit.workers[worker.worker_id].load == 1.0)
        assert livekit.workers[worker.worker_id].status == agent_pb.WS_FULL

        second = await asyncio.to_thread(livekit.sip_call_inbound, from_number="+15557654322", to_number="+15550001001")

        records = {r.job.room.name: r for r in livekit.jobs.values()}
        assert records[first].worker_id == worker.worker_id
        assert (records[second].worker_id, records[second].refused_by) == ("", [])  # a full worker is not asked
        assert worker.refused == 0
        # Asked anyway (a status update in flight), it says no.
        livekit.workers[worker.worker_id].status = agent_pb.WS_AVAILABLE
        third = await asyncio.to_thread(livekit.sip_call_inbound, from_number="+15557654323", to_number="+15550001001")
        records = {r.job.room.name: r for r in livekit.jobs.values()}
        assert (records[third].worker_id, records[third].refused_by) == ("", [worker.worker_id])
        assert worker.refused == 1
    finally:
        running.cancel()
        for task in list(worker.jobs.values()):
            task.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_shared_scenario_through_the_livekit_transport_makes_the_right_ticket(
    livekit: LiveKitEmulator, tenant_a
) -> None:
    # tenant_a: the public host exists, so the webhooks reach the product.
    scenario = load_scenario(SCENARIOS / "acme-hangs-up-early.yaml")
    await database_sync_to_async(provision_tenant)(scenario.tenant)
    await database_sync_to_async(rules.rule_create)(e164=scenario.tenant.phone_number, schema_name="acme")
    _deliver_webhooks_to_django(livekit)
    connector = EmulatedRoomConnector(livekit)
    worker = _worker(livekit, connector)
    running = asyncio.create_task(worker.run_once())
    caller_voice = SpeechModels()
    try:
        await asyncio.wait_for(worker.registered.wait(), 10)
        room_name = await asyncio.to_thread(
            livekit.sip_call_inbound, from_number=scenario.caller.phone, to_number=scenario.tenant.phone_number
        )
        room = await asyncio.wait_for(connector.joined.get(), 10)
        await room.wait_for_sip_participant()
        silence = np.zeros(48000 // 50, dtype=np.int16)

        # The caller listens to the greeting (their line carries silence), then says why they call.
        async def greeting_done() -> None:
            await _until(lambda: len(room.state.published) > 0, 30)
            heard = 0
            while len(room.state.published) != heard or heard == 0:
                heard = len(room.state.published)
                await room.caller_say(np.tile(silence, 40))  # 0.8 s

        await asyncio.wait_for(greeting_done(), 60)
        greeting_frames = len(room.state.published)
        # The simulator's caller voice, at the TTS's own rate, resampled to the room's 48 kHz.
        chunks = [chunk async for chunk in caller_voice.tts.synthesize(scenario.caller.says_first)]
        line = resample(np.concatenate(chunks), caller_voice.tts.sample_rate, 48000)
        await room.caller_say(line, sample_rate=48000)
        await room.caller_say(np.tile(silence, 75))  # 1.5 s: the caller has finished
        await _until(lambda: len(room.state.published) > greeting_frames, 30)  # the agent answers...
        await asyncio.to_thread(livekit.sip_call_hangup, room_name)  # ...and the caller hangs up (after 1 line)
        await _until(lambda: worker.results, 30)
    finally:
        running.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)

    [result] = worker.results
    assert result.status == "answered"
    tenant = await database_sync_to_async(Tenant.objects.get)(schema_name="acme")

    def make_ticket() -> None:
        with tenant_context(tenant):
            ticket_create_from_call(call_id=result.call_id)

    await database_sync_to_async(make_ticket)()
    stored = await database_sync_to_async(load_stored_call)("acme", room_name)
    assert stored is not None
    assert (stored.status, stored.end_reason) == ("abandoned", "caller_hangup")
    assert stored.utterances[0][0] == "agent"
    assert ("caller", stored.utterances[1][1]) == stored.utterances[1]
    assert check_expectations(scenario.expect, stored, call_sid=room_name) == []
    # LiveKit's webhooks opened the same call and, with it finished by the agent, changed nothing more.
    assert [event for event, status in livekit.webhooks_sent if status != 200] == []
    assert ("participant_joined", 200) in livekit.webhooks_sent
    # Every frame published is 20 ms at 48 kHz mono.
    assert {(f.sample_rate, f.num_channels, f.samples_per_channel) for f in room.state.published} == {(48000, 1, 960)}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_caller_talking_over_the_greeting_clears_the_agents_queued_audio(
    livekit: LiveKitEmulator, tenant_a
) -> None:
    await database_sync_to_async(rules.rule_create)(e164="+15550001001", schema_name="alpha")
    connector = EmulatedRoomConnector(livekit)
    worker = _worker(livekit, connector)
    running = asyncio.create_task(worker.run_once())
    caller_voice = SpeechModels()
    try:
        room_name, room = await ring_in(worker, connector, livekit)
        await room.wait_for_sip_participant()
        await _until(lambda: len(room.state.published) > 5, 30)
        assert room.state.clears == 0
        chunks = [chunk async for chunk in caller_voice.tts.synthesize("Hello, I have a leak under my kitchen sink.")]
        await room.caller_say(resample(np.concatenate(chunks), caller_voice.tts.sample_rate, 48000))
        await _until(lambda: room.state.clears > 0, 10)
        await asyncio.to_thread(livekit.sip_call_hangup, room_name)
        await _until(lambda: worker.results, 30)
    finally:
        running.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)

    [result] = worker.results
    stored = await database_sync_to_async(load_stored_call)("alpha", room_name)
    assert stored is not None
    assert stored.call_id == result.call_id
    assert stored.utterances[0][0] == "agent"
    assert "Thanks for calling Alpha Plumbing. How can I help?".startswith(stored.utterances[0][1])
    assert len(stored.utterances[0][1]) < len("Thanks for calling Alpha Plumbing. How can I help?")


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_business_not_taking_calls_has_the_caller_told_and_the_call_finished_unanswered(
    livekit: LiveKitEmulator, tenant_a
) -> None:
    await database_sync_to_async(SubscriptionFactory)(tenant=tenant_a.tenant, status="canceled")
    await database_sync_to_async(rules.rule_create)(e164="+15550001001", schema_name="alpha")
    connector = EmulatedRoomConnector(livekit)
    worker = _worker(livekit, connector)
    running = asyncio.create_task(worker.run_once())
    try:
        room_name, room = await ring_in(worker, connector, livekit)
        await _until(lambda: worker.results, 60)
    finally:
        running.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)

    [result] = worker.results
    assert result.status == "turned_away"
    assert room.disconnected is True
    # Several seconds of the short message, as 20 ms frames at 48 kHz.
    assert len(room.state.published) > 150
    assert {(f.sample_rate, f.samples_per_channel) for f in room.state.published} == {(48000, 960)}
    stored = await database_sync_to_async(load_stored_call)("alpha", room_name)
    assert stored is not None
    assert (stored.status, stored.end_reason) == ("abandoned", "turned_away:canceled")
