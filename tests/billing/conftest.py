"""The Stripe emulator on loopback, and the settings that point the real SDK at it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from billing.stripe_emulator import StripeEmulator, webhook_signature

API_KEY = "sk_test_billing_tests"
WEBHOOK_SECRET = "whsec_billing_tests"


@pytest.fixture
def stripe_emulator(settings: Any) -> Iterator[StripeEmulator]:
    emulator = StripeEmulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET).start()
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = emulator.url
    yield emulator
    emulator.stop()


def webhook_post(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, age_s: int = 0) -> Any:
    """Deliver ``event`` to the product's endpoint exactly as Stripe does (signed raw JSON)."""
    body = json.dumps(event).encode()
    signature = webhook_signature(body, secret, int(time.time()) - age_s)
    return Client(HTTP_HOST="localhost").post(
        "/stripe/webhook", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
