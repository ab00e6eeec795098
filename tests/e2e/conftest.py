"""Browser tests: real headless Chromium (Debian's) against daphne on the test database.

The server is a subprocess, so test data must be committed
(``django_db(transaction=True)``). A screenshot of every test's last page is
kept in ``var/test-results/screenshots/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.live_stack import ServerStack, live_stack_env

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "test-results" / "screenshots"


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is not installed: scripts/bootstrap.sh installs Debian's chromium package.")


@pytest.fixture(scope="session")
def web_stack(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerStack]:
    """daphne serving pages, static files and websockets, plus a Dramatiq worker; no speech models."""
    env = live_stack_env() | {"SERVE_STATIC": "true", "VOICEDESK_WARM_UP": "0"}
    stack = ServerStack(env=env, log_dir=Path(tmp_path_factory.mktemp("web-stack")))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """Chromium for one test. Playwright's sync API runs an event loop in this
    thread while it is open, so it is closed after each test: later tests on
    the same worker start their own loops. Meanwhile the ORM calls a test makes
    between browser steps are still plain synchronous calls."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        # Root in a container has no user namespaces for Chromium's sandbox.
        instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def signed_in(web_stack: ServerStack, page: Page, tenant_a: Any) -> str:
    """Sign tenant A's owner in through the real sign-in form; returns the tenant's base URL."""
    from allauth.account.models import EmailAddress

    from tests.conftest import PASSWORD

    EmailAddress.objects.update_or_create(
        user=tenant_a.owner, email=tenant_a.owner.email, defaults={"verified": True, "primary": True}
    )
    base = f"http://{tenant_a.host}:{web_stack.port}"
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(tenant_a.owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(tenant_a.tenant.name)
    return base
