"""kill -9 of the voice process in the middle of calls: each call still ends, keeps what it had, and gets one ticket."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from calls.models import Call
from tests.faults.conftest import Phones, running_fault_stack
from tests.live_stack import ServerStack, wait_for
from tickets.models import Callback, Ticket

# One xdist worker runs them all: each starts its own servers, and two at once would starve both.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("faults")]

KEYED_NUMBER = "6175550142"


def _calls(tenant: Any) -> list[Call]:
    with tenant_context(tenant):
        return list(Call.objects.order_by("pk"))


def _tickets(tenant: Any) -> list[tuple[int | None, str]]:
    with tenant_context(tenant):
        return sorted(Ticket.objects.values_list("call_id", "callback_number"))


def _recorded_seconds(call: Call) -> float:
    with wave.open(call.recording.path, "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        return wav.getnframes() / 8000


def kill_voice_process_during_calls(
    stack: ServerStack, phones: Phones, tenant: Any, count: int, *, heartbeat_s: float = 1.0, deadline_s: float = 60.0
) -> dict[str, float]:
    """Place ``count`` calls, let each caller key in a number, kill -9 daphne, and check every call ends right.

    Returns the figures: seconds from the kill until every call was finished
    and until every ticket existed.
    """
    for i in range(count):
        phones.call(f"+1555020{i:04d}")
    # Each caller keys in a callback number, over the greeting or after it.
    time.sleep(1.0)
    for stream in phones.streams:
        phones.run(stream.press(KEYED_NUMBER + "#"))

    def captured_everywhere() -> list[Call] | None:
        calls = _calls(tenant)
        with tenant_context(tenant):
            done = len(calls) == count and all(
                c.status == "in_progress"
                and (c.captured.get("fields") or {}).get("callback_number") == "+1" + KEYED_NUMBER
                and c.utterances.filter(speaker="agent").exists()
                for c in calls
            )
        return calls if done else None

    try:
        wait_for(captured_everywhere, timeout_s=30 + heartbeat_s, what="every call to have captured the keyed number")
    except AssertionError:
        for c in _calls(tenant):
            with tenant_context(tenant):
                print(c.pk, c.status, c.captured, list(c.utterances.values_list("speaker", "text")))
        print(stack.log_tail("daphne", 80))
        raise
    time.sleep(heartbeat_s + 0.5)  # one more heartbeat: the recording has reached the disk past the keypad entry
    killed_at = time.monotonic()
    killed_wall = datetime.now().astimezone()
    stack.kill("daphne")

    ended = wait_for(
        lambda: all(c.ended_at for c in _calls(tenant)), timeout_s=deadline_s, what="the sweeper to finish every call"
    )
    all_ended_s = time.monotonic() - killed_at
    assert ended
    wait_for(lambda: len(_tickets(tenant)) == count, timeout_s=deadline_s, what="a ticket for every call")
    all_tickets_s = time.monotonic() - killed_at

    calls = _calls(tenant)
    for call in calls:
        assert (call.status, call.end_reason) == ("failed_over", "voice_process_lost")
        assert call.ended_at == call.heartbeat_at
        assert call.answered_at is not None
        assert call.ended_at <= killed_wall
        with tenant_context(tenant):
            said = list(call.utterances.values_list("speaker", "text"))
        # The transcript so far: the keyed number and what the agent said.
        assert ("caller", KEYED_NUMBER) in said
        assert any(speaker == "agent" and text for speaker, text in said)
        # The recording up to the last heartbeat before the kill, as a valid WAV.
        seconds = _recorded_seconds(call)
        lasted = (call.ended_at - call.answered_at).total_seconds()
        assert 2.0 <= seconds <= lasted + 0.1, (seconds, lasted)
        assert call.captured["failed_over"] is True
        assert call.captured["summary"].startswith("The call was cut off by a system fault")
    # Exactly one ticket per call, each asking for a callback to the keyed number.
    assert _tickets(tenant) == [(c.pk, "+1" + KEYED_NUMBER) for c in calls]
    with tenant_context(tenant):
        assert sorted(Callback.objects.values_list("ticket__call_id", "phone")) == [
            (c.pk, "+1" + KEYED_NUMBER) for c in calls
        ]
    # Later sweeps change nothing.
    time.sleep(4)
    assert _tickets(tenant) == [(c.pk, "+1" + KEYED_NUMBER) for c in calls]
    assert [(c.pk, c.status, c.ended_at) for c in _calls(tenant)] == [(c.pk, c.status, c.ended_at) for c in calls]
    return {"calls": count, "all_ended_s": round(all_ended_s, 1), "all_tickets_s": round(all_tickets_s, 1)}


@pytest.fixture
def production_timed_stack(tenant_a: Any, tmp_path: Path) -> Iterator[ServerStack]:
    """The servers with the production fault timings (5 s heartbeat, 30 s timeout, a sweep every 15 s)."""
    with running_fault_stack(
        tmp_path / "stack",
        CALL_HEARTBEAT_S="5",
        CALL_STALE_AFTER_S="30",
        CALL_SWEEP_INTERVAL_S="15",
        TICKET_SWEEP_INTERVAL_S="60",
        TICKET_SWEEP_GRACE_S="60",
        warm=False,
    ) as servers:
        yield servers


@pytest.mark.acceptance
def test_ten_calls_survive_a_kill_of_the_voice_process_within_two_minutes(production_timed_stack, tenant_a) -> None:
    production_timed_stack.wait_warm()
    phones = Phones(production_timed_stack.base_url)
    try:
        figures = kill_voice_process_during_calls(
            production_timed_stack, phones, tenant_a.tenant, count=10, heartbeat_s=5.0, deadline_s=120.0
        )
    finally:
        phones.close()
    print(f"voice process killed during calls (production timings): {figures}")
    assert figures["all_tickets_s"] < 120
