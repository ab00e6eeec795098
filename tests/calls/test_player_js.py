"""``static/js/player.js`` in real Chromium, on the call page and the ticket page as the server renders them.

No server process: the pages are rendered by the test client first, then the
browser gets them (and the static files and the recording) from a route
handler, so the test needs only Chromium.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import struct
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, Route, sync_playwright

from tests.calls.factories_history import call_at
from tests.factories import UtteranceFactory, outcome
from tickets.services import ticket_create_from_call

pytestmark = pytest.mark.xdist_group("browser")

HX = {"HX-Request": "true"}
STATIC = Path(settings.BASE_DIR) / "static"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _stereo_wav(seconds: float = 8.0, rate: int = 8000) -> bytes:
    """A tone on each channel, so the browser has real audio to decode, play and seek in."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        frames += struct.pack(
            "<hh",
            int(8000 * math.sin(2 * math.pi * 220 * n / rate)),
            int(8000 * math.sin(2 * math.pi * 330 * n / rate)),
        )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


WAV = _stereo_wav()


@pytest.fixture
def recorded_call(tenant_a):
    """A call with a recording and three lines; the agent's first line ends before the caller starts."""
    with tenant_context(tenant_a.tenant):
        call = call_at(datetime(2030, 3, 9, 9, 0, tzinfo=UTC), talk_s=8, captured=outcome())
        call.recording.save(f"call-{call.pk}.wav", ContentFile(WAV), save=True)
        UtteranceFactory(call=call, speaker="agent", text="Alpha Plumbing, how can I help?", start_s=0.2, end_s=2.0)
        UtteranceFactory(call=call, speaker="caller", text="My kitchen sink is leaking.", start_s=4.5, end_s=6.0)
        UtteranceFactory(call=call, speaker="agent", text="I'm sorry to hear that.", start_s=6.5, end_s=7.5)
        ticket = ticket_create_from_call(call_id=call.pk)
    return call, ticket


def _serve(pages: dict[str, str], fragments: dict[str, str] | None = None) -> Callable[[Route], None]:
    """Answer the browser: rendered pages (htmx fragments for htmx requests), static files, the recording."""

    def handle(route: Route) -> None:
        request = route.request
        path = re.sub(r"^https?://[^/]+", "", request.url)
        if request.headers.get("hx-request") == "true" and fragments and path in fragments:
            route.fulfill(status=200, content_type="text/html", body=fragments[path])
        elif path in pages:
            route.fulfill(status=200, content_type="text/html", body=pages[path])
        elif path.startswith("/static/"):
            file = STATIC / path.removeprefix("/static/").split("?")[0]
            route.fulfill(status=200, content_type=CONTENT_TYPES.get(file.suffix, "text/plain"), body=file.read_bytes())
        elif re.fullmatch(r"/calls/\d+/recording", path):
            # As the real view does: byte ranges, so the browser can seek.
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
            first = int(match.group(1)) if match else 0
            last = int(match.group(2)) if match and match.group(2) else len(WAV) - 1
            headers = {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{len(WAV)}"}
            route.fulfill(status=206, headers=headers, content_type="audio/wav", body=WAV[first : last + 1])
        else:
            route.fulfill(status=204, body="")

    return handle


@contextmanager
def _browser(page_routes: Callable[[Route], None]) -> Iterator[Page]:
    """Chromium with every request answered by ``page_routes``; opened after the pages are rendered.

    Playwright's sync API runs an event loop in this thread while it is open,
    and Django refuses database work from a thread with a running loop.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.route("**/*", page_routes)
        try:
            yield page
        finally:
            browser.close()


def _jump_and_follow(page: Page, audio_id: str, current_class: str) -> None:
    """Choose the caller's time stamp: the recording plays from there and marks the caller's line, and only it."""
    page.get_by_role("button", name=re.compile(r"^Play from 0?0:04$")).click()
    # Playing from 4.5 s; paused there so the caller's line (to 6 s) is still the one heard when checked.
    page.wait_for_function(
        f"""() => {{
            const a = document.getElementById('{audio_id}');
            if (a.paused || a.currentTime < 4.5) return false;
            a.pause();
            return true;
        }}"""
    )
    page.wait_for_function(
        "([cls]) => document.querySelector('[data-start=\"4.500\"]').classList.contains(cls)", arg=[current_class]
    )
    marked = page.eval_on_selector_all(
        "[data-start]",
        "(lines, cls) => lines.map(l => [l.dataset.start, l.classList.contains(cls), l.ariaCurrent])",
        current_class,
    )
    assert marked == [["0.200", False, None], ["4.500", True, "true"], ["6.500", False, None]]
    # Back to the start: the first line is marked, the caller's no longer.
    page.get_by_role("button", name=re.compile(r"^Play from 0?0:00$")).click()
    page.wait_for_function(
        "([cls]) => document.querySelector('[data-start=\"0.200\"]').classList.contains(cls)"
        " && !document.querySelector('[data-start=\"4.500\"]').classList.contains(cls)",
        arg=[current_class],
    )


def test_call_page_transcript_drives_the_recording(tenant_a, client_a: Client, recorded_call) -> None:
    call, _ = recorded_call
    url = f"/calls/{call.pk}/"
    html = client_a.get(url).content.decode()
    assert '<script src="/static/js/player.js" defer></script>' in html

    with _browser(_serve({url: html})) as page:
        page.goto(f"http://{tenant_a.host}{url}")
        _jump_and_follow(page, "call-audio", "calls-utterance-current")


def test_ticket_page_transcript_drives_the_recording(tenant_a, client_a: Client, recorded_call) -> None:
    _, ticket = recorded_call
    url = f"/tickets/{ticket.pk}/"
    response = client_a.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script src="/static/js/player.js" defer></script>' in html

    with _browser(_serve({url: html})) as page:
        page.goto(f"http://{tenant_a.host}{url}")
        # The ticket page names its own class for the line being heard.
        _jump_and_follow(page, "tk-audio", "tk-line-playing")


def test_paging_the_call_history_moves_focus_to_the_results(tenant_a, client_a: Client) -> None:
    with tenant_context(tenant_a.tenant):
        for minute in range(30):
            call_at(datetime(2030, 3, 9, 9, 0, tzinfo=UTC) - timedelta(minutes=minute))
    first = client_a.get("/calls/").content.decode()
    second = client_a.get("/calls/", {"page": "2"}, headers=HX | {"HX-Trigger": "calls-page-next"}).content.decode()

    with _browser(_serve({"/calls/": first}, {"/calls/?page=2": second})) as page:
        page.goto(f"http://{tenant_a.host}/calls/")
        page.get_by_role("link", name="Next page →").focus()
        page.keyboard.press("Enter")

        page.wait_for_function("() => document.activeElement?.id === 'calls-results-heading'")
        assert page.url.endswith("/calls/?page=2")
        assert page.locator("#calls-results caption").inner_text() == "Calls, page 2 of 2"
