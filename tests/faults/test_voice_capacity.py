"""A voice process at its capacity: a call beyond is refused unanswered, hears the lines are busy and leaves a ticket.

Real daphne, worker and scheduler processes; the carrier simulator follows
``<Connect action>`` once the refused stream has closed, as Twilio does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from calls.models import Call
from tests.faults.conftest import ACCOUNT_SID, ALPHA_NUMBER, Phones, running_fault_stack
from tests.live_stack import ServerStack, wait_for
from tickets.models import Callback, Ticket
from voicedesk.simulator.carrier import CarrierStream, dial, new_sid, stream_ended

# One xdist worker runs them all: each starts its own servers, and two at once would starve both.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("faults")]

REFUSED_CALLER = "+15550500002"


@pytest.fixture
def one_call_process(tenant_a: Any, tmp_path: Path) -> Iterator[ServerStack]:
    with running_fault_stack(tmp_path / "stack", VOICE_PROCESS_CAPACITY="1") as servers:
        yield servers


def _calls(tenant: Any) -> list[tuple[str, str, str]]:
    with tenant_context(tenant):
        return list(Call.objects.order_by("pk").values_list("from_number", "status", "end_reason"))


async def _refused_call(base_url: str) -> tuple[str, str]:
    """Dial, open the stream the webhook gives, and once the server has closed it ask the action what next."""
    call_sid = new_sid("CA")
    numbers = {"from_number": REFUSED_CALLER, "to_number": ALPHA_NUMBER, "account_sid": ACCOUNT_SID,
               "auth_token": settings.TWILIO_AUTH_TOKEN}  # fmt: skip
    instructions = await dial(base_url, call_sid=call_sid, **numbers)
    stream = CarrierStream(instructions, call_sid=call_sid, account_sid=ACCOUNT_SID)
    await stream.open()
    await asyncio.wait_for(stream.wait_closed(), timeout=15)
    return stream.close_reason, await stream_ended(base_url, instructions.action, call_sid=call_sid, **numbers)


def test_a_call_beyond_the_voice_process_capacity_hears_the_lines_are_busy_and_leaves_a_ticket(
    one_call_process: ServerStack, tenant_a: Any
) -> None:
    tenant = tenant_a.tenant
    phones = Phones(one_call_process.base_url)
    try:
        phones.call("+15550500001")
        wait_for(lambda: [c[1] for c in _calls(tenant)] == ["in_progress"], timeout_s=30, what="the first call up")

        close_reason, document = phones.run(_refused_call(one_call_process.base_url))

        assert close_reason == "server_closed (4013)"
        root = ElementTree.fromstring(document)
        assert [child.tag for child in root] == ["Say", "Hangup"]
        assert root.find("Say").text == (
            "Thank you for calling Alpha Plumbing. All our lines are busy right now. "
            "We have your number, and someone will call you back as soon as possible. Goodbye."
        )
        assert _calls(tenant) == [
            ("+15550500001", "in_progress", ""),
            (REFUSED_CALLER, "abandoned", "turned_away:no_voice_capacity"),
        ]

        def ticket() -> Ticket | None:
            with tenant_context(tenant):
                return Ticket.objects.filter(callback_number=REFUSED_CALLER).first()

        made = wait_for(ticket, timeout_s=30, what="the refused call's ticket")
        with tenant_context(tenant):
            assert made.subject == "Missed call: no line was free to answer"
            assert list(Callback.objects.filter(ticket=made).values_list("phone", flat=True)) == [REFUSED_CALLER]

        # The first call was not disturbed; once it ends, the process takes a call again.
        phones.run(phones.streams[0].hang_up())
        wait_for(lambda: _calls(tenant)[0][1] == "abandoned", timeout_s=30, what="the first call to end")
        phones.call("+15550500003")
        wait_for(lambda: _calls(tenant)[-1][1] == "in_progress", timeout_s=30, what="a new call taken")
    finally:
        phones.close()
    assert "media_stream_refused_no_capacity" in one_call_process.log_path("daphne").read_text()
