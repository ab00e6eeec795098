"""An agent's day in a real browser: sign in, inbox, ticket, recording, status, callback outcome."""

from __future__ import annotations

import io
import math
import re
import struct
import wave

import pytest
from django.core.files.base import ContentFile
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from tests.factories import CallFactory, UtteranceFactory, outcome
from tickets.models import Callback, CallbackAttempt, Ticket, TicketChange
from tickets.services import ticket_create, ticket_create_from_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]


def _stereo_wav(seconds: float = 8.0, rate: int = 8000) -> bytes:
    """A tone on each channel, so the browser has real audio to decode and play."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        caller = int(8000 * math.sin(2 * math.pi * 220 * n / rate))
        agent = int(8000 * math.sin(2 * math.pi * 330 * n / rate))
        frames += struct.pack("<hh", caller, agent)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


@pytest.fixture
def phone_ticket(tenant_a) -> Ticket:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(captured=outcome())
        call.recording.save(f"call-{call.pk}.wav", ContentFile(_stereo_wav()), save=True)
        UtteranceFactory(call=call, speaker="agent", text="Thanks for calling Alpha Plumbing.", start_s=0.2, end_s=2.0)
        UtteranceFactory(call=call, speaker="caller", text="Hi, my kitchen sink is leaking.", start_s=4.5, end_s=6.5)
        return ticket_create_from_call(call_id=call.pk)


def test_agent_works_a_phone_ticket_end_to_end(signed_in: str, page: Page, tenant_a, phone_ticket) -> None:
    # The inbox lists the ticket the call became.
    page.get_by_role("navigation", name="Help desk").get_by_role("link", name="Inbox").click()
    row_link = page.get_by_role("link", name="My kitchen sink is leaking")
    expect(row_link).to_be_visible()
    row_link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{phone_ticket.number} My kitchen sink is leaking")

    # Jump to the caller's first words: the recording plays from there. The
    # player's script is deferred: on a busy machine the heading shows before it runs.
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Play from 0:04").click()
    page.wait_for_function(
        "() => { const a = document.getElementById('tk-audio'); return !a.paused && a.currentTime >= 4.5; }"
    )

    # Open the ticket: the page updates in place and the activity log records it.
    page.get_by_label("Status").select_option("open")
    with page.expect_response(lambda r: r.url.endswith(f"/tickets/{phone_ticket.pk}/update/")) as saved:
        page.get_by_role("button", name="Save status").click()
    assert saved.value.status == 200
    expect(page.get_by_label("Status")).to_have_value("open")
    with tenant_context(tenant_a.tenant):
        phone_ticket.refresh_from_db()
        assert phone_ticket.status == "open"
        change = TicketChange.objects.get(ticket=phone_ticket, field="status")
        assert (change.old_value, change.new_value, change.actor_id) == ("new", "open", tenant_a.owner.pk)

    # The callback: take the next one from the queue and log that the caller was reached.
    page.get_by_role("navigation", name="Help desk").get_by_role("link", name="Callbacks").click()
    page.get_by_role("button", name="Next callback").click()
    page.get_by_label("Reached").check()
    page.get_by_label("Note").fill("Booked a visit for Thursday morning.")
    page.get_by_label("Resolve the ticket (completes the callback)").check()
    page.get_by_role("button", name="Log call").click()
    # Back on the queue, the callback is under "Recently done".
    done = page.get_by_role("region", name="Recently done callbacks, scrolls sideways")
    expect(
        done.get_by_role("row", name=re.compile(r"T-\d+ Maria Gonzalez Reached 1 owner@alpha\.test"))
    ).to_be_visible()

    with tenant_context(tenant_a.tenant):
        callback = Callback.objects.get(ticket=phone_ticket)
        assert (callback.outcome, callback.attempts, callback.assignee_id) == ("reached", 1, tenant_a.owner.pk)
        assert callback.completed_at is not None
        assert list(CallbackAttempt.objects.filter(callback=callback).values_list("outcome", "note")) == [
            ("reached", "Booked a visit for Thursday morning.")
        ]
        phone_ticket.refresh_from_db()
        assert phone_ticket.status == "resolved"


def test_a_new_ticket_appears_in_the_open_inbox_without_a_reload(signed_in: str, page: Page, tenant_a) -> None:
    base = signed_in
    page.goto(f"{base}/tickets/")
    expect(page.get_by_role("link", name="Gas smell in the hallway")).to_have_count(0)
    # live.js marks the page once its socket is open (and subscribed).
    expect(page.locator("html")).to_have_attribute("data-live", "connected")

    with tenant_context(tenant_a.tenant):
        ticket = ticket_create(actor=None, subject="Gas smell in the hallway", priority="urgent")

    expect(page.get_by_role("link", name="Gas smell in the hallway")).to_be_visible()
    expect(page.locator("#live-notice")).to_contain_text(ticket.number)
