"""Every help-desk page on a phone-sized screen: no sideways scrolling of the page, and every
form control has an accessible name."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page

from tests.factories import CallFactory, UtteranceFactory, outcome
from tickets.services import ticket_create_from_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]

UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => {
    const named = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || el.getAttribute('title') || (el.tagName === 'BUTTON' && el.textContent.trim())
      || (el.type === 'submit' && el.value);
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


def test_pages_fit_a_phone_and_name_their_controls(signed_in: str, page: Page, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(captured=outcome(unanswered_questions=["Do you fix boilers?"]))
        UtteranceFactory(call=call, speaker="caller", text="Hi, my kitchen sink is leaking.", start_s=1.0, end_s=3.0)
        ticket = ticket_create_from_call(call_id=call.pk)
        callback_id = ticket.callback.pk
    base = signed_in
    page.set_viewport_size({"width": 375, "height": 812})

    problems: dict[str, object] = {}
    for path in [
        "/",
        "/tickets/",
        "/tickets/new/",
        f"/tickets/{ticket.pk}/",
        "/callbacks/",
        f"/callbacks/{callback_id}/",
        "/questions/",
        "/calls/",
        f"/calls/{call.pk}/",
        "/analytics/",
        "/calls/test/",
        "/settings/agent/",
        "/settings/faq/",
        "/settings/numbers/",
        "/settings/api-keys/",
        "/billing/",
    ]:
        response = page.goto(base + path)
        assert response is not None, path
        assert response.status == 200, path
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        unnamed = page.evaluate(UNNAMED_CONTROLS)
        if overflow > 0 or unnamed:
            problems[path] = {"overflow_px": overflow, "unnamed": unnamed}

    assert problems == {}
