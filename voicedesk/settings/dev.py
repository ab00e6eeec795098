"""Local development: readable logs, console email, DEBUG on."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "dev-only-insecure-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "console")
# Development calls come from the bundled simulated carrier, which signs with this.
os.environ.setdefault("TWILIO_AUTH_TOKEN", "dev-twilio-auth-token")

# Billing runs against the Stripe emulator that `make run` starts on loopback.
os.environ.setdefault("STRIPE_SECRET_KEY", "sk_test_emulator")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_dev_emulator")
os.environ.setdefault("STRIPE_API_BASE", "http://127.0.0.1:12111")

from .base import *
from .base import env

# Encrypts stored provider keys. Public, like the secret key above, and kept out of
# the environment, so processes started from here do not inherit it.
VOICEDESK_SECRET_KEYS = env.list("VOICEDESK_SECRET_KEYS", default=["gsaHmXIUWc_xRahg56HMCxTMbH_9Q733T6WHMhChmVw="])
