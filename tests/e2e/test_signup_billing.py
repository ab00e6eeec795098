"""A new business signs up, verifies its email, subscribes through (emulated) Stripe Checkout and is live.

Everything real except Stripe, which is the loopback emulator: the browser
fills allauth's forms, follows the link in the verification mail, pays on the
emulator's hosted page, and the emulator's signed webhooks reach daphne,
where a Dramatiq worker applies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from billing.models import Subscription
from billing.stripe_emulator import StripeEmulator
from tenants.models import Tenant
from tests.e2e.conftest import SCREENSHOTS
from tests.live_stack import ServerStack, live_stack_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]

API_KEY = "sk_test_e2e"
WEBHOOK_SECRET = "whsec_e2e"


@pytest.fixture
def billing_stack(django_db_setup: None, tmp_path: Path) -> Iterator[tuple[ServerStack, StripeEmulator, Path]]:
    mail = tmp_path / "mail"
    stack = ServerStack(env={}, log_dir=tmp_path / "logs")
    emulator = StripeEmulator(
        api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, webhook_url=f"http://localhost:{stack.port}/stripe/webhook"
    ).start()
    stack.env = live_stack_env() | {
        "SERVE_STATIC": "true", "VOICEDESK_WARM_UP": "0",
        "STRIPE_SECRET_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": emulator.url,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(mail),
    }  # fmt: skip
    stack.start()
    try:
        yield stack, emulator, mail
    finally:
        stack.stop()
        emulator.stop()


def _confirmation_link(mail: Path) -> str:
    text = "\n".join(path.read_text() for path in sorted(mail.glob("*.log")))
    found = re.search(r"http://localhost:\d+/accounts/confirm-email/\S+/", text)
    assert found is not None, text
    return found.group(0)


def test_sign_up_verify_subscribe_and_go_live(billing_stack, page: Page, tenant_a) -> None:
    # tenant_a: an earlier transactional test may have flushed the public site's rows; this restores them.
    stack, emulator, mail = billing_stack
    public = f"http://localhost:{stack.port}"

    page.goto(f"{public}/accounts/signup/")
    page.locator("#id_email").fill("founder@hollow-pines.test")
    page.locator("#id_password1").fill("a-long-enough-passphrase")
    page.locator("#id_password2").fill("a-long-enough-passphrase")
    page.locator("#id_business_name").fill("Hollow Pines Pest Control")
    page.locator("#id_subdomain").fill("hollow-pines")
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    expect(page.locator('[aria-current="step"]')).to_contain_text("Now: Your email address.")
    _shoot(page, "signup_1_verify_email")
    assert not Tenant.objects.filter(schema_name="hollow_pines").exists()

    page.goto(_confirmation_link(mail))
    page.get_by_role("button", name="Confirm").click()
    assert Tenant.objects.get(schema_name="hollow_pines").name == "Hollow Pines Pest Control"

    base = f"http://hollow-pines.localhost:{stack.port}"
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill("founder@hollow-pines.test")
    page.get_by_label("Password").fill("a-long-enough-passphrase")
    page.get_by_role("button", name="Sign In").click()
    page.goto(f"{base}/billing/")
    page.get_by_role("button", name="Subscribe to Growth").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    _shoot(page, "signup_2_checkout")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{base}/billing/?checkout=done")

    for _ in range(60):
        subscription = Subscription.objects.filter(tenant__schema_name="hollow_pines").first()
        if subscription is not None and subscription.status == "active":
            break
        page.wait_for_timeout(250)
    page.reload()
    expect(page.get_by_text("Status: Active")).to_be_visible()
    expect(page.get_by_role("button", name="Manage cards, invoices and plan")).to_be_visible()
    assert [status for _, status in emulator.state.deliveries] == [200, 200, 200]
    _shoot(page, "signup_3_subscribed")

    # A number makes the business live; its dashboard says so.
    page.goto(f"{base}/settings/numbers/")
    page.get_by_role("textbox", name="Number").fill("+1 555 010 0199")
    page.get_by_role("button", name="Add number").click()
    page.goto(f"{base}/")
    expect(page.locator(".live-state")).to_have_text("Live: callers to your number reach your receptionist.")
    _shoot(page, "signup_4_live")


def _shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
