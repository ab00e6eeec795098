"""Warm transfer on LiveKit: a caller asking for a person is put through with ``TransferSIPParticipant``.

The whole call runs through the agent worker, the emulated room and the real
session (offline speech): the caller asks for a person, the agent says so,
the ticket is written, and the emulator answers the transfer as the test
chose. Each case ends with the ticket and the callback it should have.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django_tenants.utils import tenant_context

from calls.audio import resample
from calls.models import AgentConfig, Call
from calls.transports.livekit import rules
from calls.transports.livekit.agent import AgentWorker
from calls.transports.livekit.emulator import EmulatedRoom, EmulatedRoomConnector, LiveKitEmulator
from calls.transports.livekit.transfer import transfer_status_for
from tickets.models import Callback, Ticket, TicketChange
from tickets.services import ticket_create_from_call
from voicedesk.simulator.caller import SpeechModels

from .conftest import API_KEY, API_SECRET
from .room_line import ring_in

TRANSFER_NUMBER = "+15550100199"
ASKS_FOR_A_PERSON = "Hello, my water heater is leaking. Can I speak to a person, please?"
SILENCE_20MS = np.zeros(48000 // 50, dtype=np.int16)


async def _until(predicate, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


async def _quiet_after(room: EmulatedRoom, timeout: float) -> None:
    """The caller listens (their line carries silence) until the agent has stopped talking."""

    async def listen() -> None:
        await _until(lambda: len(room.state.published) > 0, timeout)
        heard = 0
        while len(room.state.published) != heard:
            heard = len(room.state.published)
            await room.caller_say(np.tile(SILENCE_20MS, 40))  # 0.8 s

    await asyncio.wait_for(listen(), timeout)


def _transfer_number_set(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        # No business hours: open around the clock, so the test does not depend on the time it runs.
        AgentConfig.objects.update(transfer_number=TRANSFER_NUMBER, business_hours={})


def _stored(tenant_a, room_name: str) -> tuple[Call, Ticket, Callback | None, list[tuple[str, str, str]]]:
    """The call, its ticket (made again as the call-finished worker would) and its callback."""
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get(carrier="livekit", carrier_call_id=room_name)
        ticket = ticket_create_from_call(call_id=call.pk)
        callback = Callback.objects.filter(ticket=ticket).first()
        changes = list(TicketChange.objects.filter(ticket=ticket).values_list("field", "old_value", "new_value"))
        return call, ticket, callback, changes


async def _call_asking_for_a_person(livekit: LiveKitEmulator, tenant_a, *, after_transfer) -> str:
    """Dial in, ask for a person, let ``after_transfer(room)`` play the rest; the room's name."""
    await database_sync_to_async(_transfer_number_set)(tenant_a)
    await database_sync_to_async(rules.rule_create)(e164="+15550001001", schema_name="alpha")
    connector = EmulatedRoomConnector(livekit)
    worker = AgentWorker(
        url=livekit.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        agent_name=settings.LIVEKIT_AGENT_NAME,
        capacity=1,
        connector=connector,
    )
    running = asyncio.create_task(worker.run_once())
    caller_voice = SpeechModels()
    try:
        room_name, room = await ring_in(worker, connector, livekit)
        await room.wait_for_sip_participant()
        await _quiet_after(room, 120)  # the greeting (the first call of a process loads the engines)
        chunks = [chunk async for chunk in caller_voice.tts.synthesize(ASKS_FOR_A_PERSON)]
        await room.caller_say(resample(np.concatenate(chunks), caller_voice.tts.sample_rate, 48000))
        await room.caller_say(np.tile(SILENCE_20MS, 50))  # 1 s: the caller has finished
        # The agent says it is putting them through, then transfers.
        await asyncio.wait_for(_keep_line_open_until(room, lambda: bool(livekit.transfers)), 90)
        await after_transfer(room, room_name)
        await _until(lambda: worker.results, 30)
    finally:
        running.cancel()
        await asyncio.gather(running, *worker.jobs.values(), return_exceptions=True)
    [result] = worker.results
    assert result.status == "answered"
    return room_name


async def _keep_line_open_until(room: EmulatedRoom, condition) -> None:
    while not condition():
        await room.caller_say(np.tile(SILENCE_20MS, 10))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_answered_transfer_puts_the_caller_through_with_the_ticket_written_first(
    livekit: LiveKitEmulator, tenant_a
) -> None:
    async def caller_is_put_through(room: EmulatedRoom, room_name: str) -> None:
        return None  # the emulator takes the caller out of the room; the agent's job ends

    room_name = await _call_asking_for_a_person(livekit, tenant_a, after_transfer=caller_is_put_through)

    [transfer] = livekit.transfers
    assert (transfer.room_name, transfer.transfer_to, transfer.play_dialtone) == (
        room_name,
        f"tel:{TRANSFER_NUMBER}",
        True,
    )
    assert transfer.participant_identity == "sip_+15557654321"
    call, ticket, callback, _ = await database_sync_to_async(_stored)(tenant_a, room_name)
    assert (call.transfer_to, call.transfer_status, call.end_reason, call.status) == (
        TRANSFER_NUMBER,
        "answered",
        "transferred",
        "completed",
    )
    assert call.transfer_started_at <= ticket.created_at <= call.transfer_ended_at
    assert (ticket.priority, ticket.callback_number, ticket.status) == ("high", "+15557654321", "new")
    assert "water heater" in ticket.summary.lower()
    assert ticket.summary.endswith("asked to speak to a person and was put through.")
    assert callback is None
    assert call.captured["transfer"] == "answered"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("busy", "Transfer to a person failed: the line was busy"),
        ("no_answer", "Transfer to a person failed: nobody answered"),
    ],
)
async def test_a_busy_or_unanswered_transfer_brings_the_caller_back_with_a_priority_callback(
    livekit: LiveKitEmulator, tenant_a, outcome: str, reason: str
) -> None:
    livekit.transfer_outcomes[f"tel:{TRANSFER_NUMBER}"] = outcome
    spoken: dict[str, int] = {}

    async def caller_hears_the_agent_again(room: EmulatedRoom, room_name: str) -> None:
        spoken["at_transfer"] = len(room.state.published)
        await asyncio.wait_for(
            _keep_line_open_until(room, lambda: len(room.state.published) > spoken["at_transfer"]), 30
        )
        await _quiet_after(room, 60)  # "I'm sorry, ... call you back as a priority. Could I have your name?"
        spoken["after"] = len(room.state.published)
        await asyncio.to_thread(livekit.sip_call_hangup, room_name)

    room_name = await _call_asking_for_a_person(livekit, tenant_a, after_transfer=caller_hears_the_agent_again)

    # The conversation went on in the room: the agent spoke again (several seconds of it).
    assert spoken["after"] - spoken["at_transfer"] > 150
    call, ticket, callback, changes = await database_sync_to_async(_stored)(tenant_a, room_name)
    assert (call.transfer_to, call.transfer_status, call.end_reason, call.status) == (
        TRANSFER_NUMBER,
        outcome,
        "caller_hangup",
        "abandoned",
    )
    assert call.transfer_started_at <= ticket.created_at <= call.transfer_ended_at
    assert callback is not None
    assert (callback.priority, callback.reason, callback.phone, callback.completed_at) == (
        "high",
        reason,
        "+15557654321",
        None,
    )
    assert ticket.priority == "high"
    assert ("created", "", "new") in changes
    assert "call back as a priority" in ticket.summary
    assert await database_sync_to_async(_callbacks_count)(tenant_a) == 1
    utterances = await database_sync_to_async(_agent_lines)(tenant_a, call.pk)
    assert any("call you back as a priority" in line for line in utterances)


def _callbacks_count(tenant_a) -> int:
    with tenant_context(tenant_a.tenant):
        return Callback.objects.count()


def _agent_lines(tenant_a, call_id: int) -> list[str]:
    with tenant_context(tenant_a.tenant):
        return list(Call.objects.get(pk=call_id).utterances.filter(speaker="agent").values_list("text", flat=True))


@pytest.mark.parametrize(
    ("sip_code", "reason", "status"),
    [
        (486, "STR_REJECTED", "busy"),
        (603, None, "busy"),
        (408, "STR_RINGING_TIMEOUT", "no_answer"),
        (480, None, "no_answer"),
        (None, "STR_RINGING_TIMEOUT", "no_answer"),
        (503, "STR_REJECTED", "failed"),
        (None, None, "failed"),
    ],
)
def test_the_sip_status_of_a_failed_transfer_says_how_it_ended(sip_code, reason, status) -> None:
    assert transfer_status_for(sip_code=sip_code, reason=reason) == status
