"""The inbox and callback queue refresh themselves on live events, once per burst, in a real browser.

A burst of events (a busy minute at the desk) is debounced: one fetch once
the burst is over, so the list ends in the final state and never misses the
last change. htmx keeps a trigger's delay timer on the element: a fragment
that replaced its own element on every refresh would lose it. Chromium runs
the real pages and htmx; its requests are answered by the Django test client
(no server), so every fetch is counted.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, Request, Route, sync_playwright

from tests.factories import CallbackFactory, TicketFactory
from tickets.models import Ticket

CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
STATIC = Path(settings.BASE_DIR) / "static"


class Site:
    """Answers the browser's requests for ``host``; counts the htmx fetches.

    Playwright calls route handlers in a greenlet of its own, where Django
    would open a new database connection outside the test's transaction. So
    the handler answers only what needs no database: static files and the
    page itself, rendered beforehand. It queues the htmx fetches, and ``serve``
    answers them from the test's own context with the Django test client.
    """

    def __init__(self, client: Client, host: str) -> None:
        self.client = client
        self.origin = f"http://{host}"
        self.documents: dict[str, bytes] = {}
        self.fetches: list[str] = []
        self.queued: list[tuple[Route, Request]] = []

    def handle(self, route: Route, request: Request) -> None:
        parts = urlsplit(request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if "hx-request" in request.headers:
            self.queued.append((route, request))
        elif parts.path.startswith("/static/"):
            path = STATIC / parts.path.removeprefix("/static/")
            if path.is_file() and path.name != "live.js":  # no websocket here: the tests fire the events
                route.fulfill(status=200, path=str(path))
            else:
                route.fulfill(status=404, body="")
        elif target in self.documents:
            route.fulfill(status=200, body=self.documents.pop(target), content_type="text/html; charset=utf-8")
        else:
            # Never a full page load the test did not prepare: it would wait for the database here.
            route.fulfill(status=500, body=f"unexpected request {target}")

    def serve(self) -> None:
        while self.queued:
            route, request = self.queued.pop(0)
            parts = urlsplit(request.url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            self.fetches.append(target)
            response = self.client.get(target, headers={"HX-Request": "true"})
            route.fulfill(status=response.status_code, body=response.content, content_type=response["Content-Type"])

    def wait(self, page: Page, condition: str, seconds: float = 10) -> None:
        """Serve requests until the JavaScript ``condition`` holds."""
        deadline = time.monotonic() + seconds
        while True:
            self.serve()
            if page.evaluate(f"() => Boolean({condition})"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {condition}")
            page.wait_for_timeout(20)

    def idle(self, page: Page, milliseconds: int) -> None:
        """Serve requests for a while, whatever happens."""
        deadline = time.monotonic() + milliseconds / 1000
        while time.monotonic() < deadline:
            self.serve()
            page.wait_for_timeout(20)
        self.serve()


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    # The test client runs while Playwright's event loop is running in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(10_000)
        yield page
        browser.close()


SETTLED = "window.htmx && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


def _open(page: Page, client: Client, host: str, path: str) -> Site:
    site = Site(client, host)
    response = client.get(path)
    assert response.status_code == 200
    site.documents[path] = response.content
    page.route(f"{site.origin}/**", site.handle)
    page.goto(f"{site.origin}{path}")
    site.wait(page, "window.htmx")
    return site


def _fire(page: Page, event: str) -> None:
    page.evaluate("(name) => document.body.dispatchEvent(new CustomEvent(name, {detail: {}}))", event)


def _text(selector: str, text: str) -> str:
    return f"document.querySelector({selector!r})?.innerText === {text!r}"


def test_inbox_refreshes_once_after_a_burst_of_events_and_shows_the_final_state(
    browser_page: Page, client_a: Client, tenant_a
) -> None:
    page = browser_page
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="First ticket")
    site = _open(page, client_a, tenant_a.host, "/tickets/?sort=-created")
    assert page.locator("#inbox-results-title").inner_text() == "1 ticket"

    # Two tickets arrive and one changes, within a fraction of a second.
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="Second ticket")
    _fire(page, "helpdesk-ticket-created")
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="Third ticket")
    for event in ("helpdesk-ticket-created", "helpdesk-ticket-updated"):
        _fire(page, event)
    site.idle(page, 500)
    assert site.fetches == []  # still inside the burst

    site.wait(page, _text("#inbox-results-title", "3 tickets") + " && " + SETTLED)
    site.idle(page, 1_200)
    assert site.fetches == ["/tickets/?sort=-created"]
    # The section was kept and filled, not nested or lost; the count is announced.
    assert page.locator("section#inbox-results").count() == 1
    assert page.locator("#inbox-results > h2").count() == 1
    assert page.locator("#inbox-announce").inner_text() == "3 tickets"
    assert page.locator("#inbox-results tbody tr").count() == 3

    # A later event refreshes again: the timer survived the swap.
    with tenant_context(tenant_a.tenant):
        TicketFactory(subject="Fourth ticket")
    _fire(page, "helpdesk-ticket-created")
    site.wait(page, _text("#inbox-results-title", "4 tickets") + " && " + SETTLED)
    assert site.fetches == ["/tickets/?sort=-created", "/tickets/?sort=-created"]


def test_inbox_paging_still_replaces_the_section_with_the_new_page(
    browser_page: Page, client_a: Client, tenant_a
) -> None:
    page = browser_page
    with tenant_context(tenant_a.tenant):
        for n in range(27):
            TicketFactory(subject=f"Ticket {n}")
    site = _open(page, client_a, tenant_a.host, "/tickets/")

    page.get_by_role("link", name="Next").click()
    site.wait(page, _text(".tk-pages span", "Page 2 of 2") + " && " + SETTLED)

    assert site.fetches == ["/tickets/?page=2"]
    assert page.evaluate("location.search") == "?page=2"
    assert page.locator("section#inbox-results").count() == 1
    assert page.locator("#inbox-results tbody tr").count() == 2
    # The live refresh now asks for page 2.
    _fire(page, "helpdesk-ticket-updated")
    site.idle(page, 1_300)
    assert site.fetches == ["/tickets/?page=2", "/tickets/?page=2"]
    assert page.locator(".tk-pages span").inner_text() == "Page 2 of 2"
    assert page.locator("section#inbox-results").count() == 1


def test_callback_queue_refreshes_once_for_a_burst_of_events(browser_page: Page, client_a: Client, tenant_a) -> None:
    page = browser_page
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()
    site = _open(page, client_a, tenant_a.host, "/callbacks/?show=all")
    assert page.locator("#callback-rows-title").inner_text() == "1 callback waiting"

    with tenant_context(tenant_a.tenant):
        Ticket.objects.filter(pk=callback.ticket_id).update(status="resolved")
    for event in ("helpdesk-callback-updated", "helpdesk-ticket-created", "helpdesk-callback-updated"):
        _fire(page, event)
    site.wait(page, _text("#callback-rows-title", "0 callbacks waiting") + " && " + SETTLED)
    site.idle(page, 1_200)

    assert site.fetches == ["/callbacks/?show=all"]
    assert page.locator("section#callback-rows").count() == 1
    # The tabs still swap the whole section and push the URL.
    page.get_by_role("link", name="Mine").click()
    site.wait(page, "location.search === '?show=mine' && " + SETTLED)
    assert site.fetches == ["/callbacks/?show=all", "/callbacks/?show=mine"]
    assert page.locator("section#callback-rows").count() == 1
    assert page.locator('.tk-tabs a[aria-current="page"]').inner_text() == "Mine"
