"""The test call in a real browser: Chromium's fake microphone plays a caller synthesized now, and the page
shows what was said and links to the ticket the call made.

Chromium reads the microphone from a WAV file (``--use-file-for-fake-audio-capture``) and grants it without
asking (``--use-fake-ui-for-media-stream``); the page's AudioWorklet, the websocket, the session, the
speech engines and the ticket worker are all the real ones.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Browser, Page, expect, sync_playwright

from billing.models import UsageRecord
from billing.services import usage_record_call
from calls.audio import resample
from calls.models import Call
from calls.providers.piper_tts import PiperTextToSpeech
from tests.e2e.conftest import SCREENSHOTS, chromium_path
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]

CALLER_LINE = "Hi, this is James Wilson, my number is 555 444 3333, and my kitchen sink is leaking."
WAV_RATE = 48_000
# Room for the greeting (and, on a fresh server, for the speech models to load) before the caller speaks.
LEAD_SILENCE_S = 8.0
# Long enough that the file does not loop back to the caller's line during the call.
TAIL_SILENCE_S = 90.0


def _caller_wav(path: Path) -> Path:
    async def speak() -> tuple[np.ndarray, int]:
        tts = PiperTextToSpeech(variation=0)
        return np.concatenate([chunk async for chunk in tts.synthesize(CALLER_LINE)]), tts.sample_rate

    speech, rate = asyncio.run(speak())
    samples = np.concatenate(
        [
            np.zeros(int(LEAD_SILENCE_S * WAV_RATE), dtype=np.int16),
            resample(speech, rate, WAV_RATE),
            np.zeros(int(TAIL_SILENCE_S * WAV_RATE), dtype=np.int16),
        ]
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Browser]:
    """Chromium whose microphone plays the caller's WAV, synthesized before the browser's event loop starts."""
    wav = _caller_wav(tmp_path / "caller.wav")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield instance
        instance.close()


def test_an_owner_talks_to_the_agent_and_gets_the_ticket(signed_in: str, page: Page, tenant_a) -> None:
    page.get_by_role("navigation", name="Help desk").get_by_role("link", name="Test call").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Test call")

    page.get_by_role("button", name="Start test call").click()
    transcript = page.get_by_role("list", name="Live transcript")
    # The agent greets, the caller's words are heard, and the agent answers them.
    expect(transcript.locator(".calls-utterance-agent").first).to_contain_text("Alpha Plumbing", timeout=90_000)
    caller_line = transcript.locator(".calls-utterance-caller", has_text="sink")
    expect(caller_line).to_be_visible(timeout=90_000)
    expect(caller_line.locator(".calls-speaker")).to_have_text("You")
    expect(transcript.locator(".calls-utterance-caller ~ .calls-utterance-agent").first).to_be_visible(timeout=90_000)
    expect(page.locator("#testcall-latency tr").first).to_be_visible()

    page.get_by_role("button", name="End call").click()
    ticket_link = page.get_by_role("link", name="Open the ticket this call made")
    expect(ticket_link).to_be_visible(timeout=40_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "test_call_ended.png"), full_page=True)

    with tenant_context(tenant_a.tenant):
        call = Call.objects.get()
        ticket = Ticket.objects.get(call=call)
        shown_latency_rows = page.locator("#testcall-latency tr").count()
        assert (call.carrier, call.is_test, call.end_reason) == ("browser", True, "caller_hangup")
        assert (ticket.caller_name, ticket.callback_number) == ("James Wilson", "+15554443333")
        assert call.turn_latencies.count() == shown_latency_rows
        # Not metered: metering it records nothing.
        assert usage_record_call(tenant=tenant_a.tenant, call_id=call.pk) is None
        assert UsageRecord.objects.filter(call_id=call.pk).count() == 0
    assert ticket_link.get_attribute("href") == f"/tickets/{ticket.pk}/"

    ticket_link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    expect(page.get_by_text("James Wilson").first).to_be_visible()
