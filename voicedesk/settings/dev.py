"""Local development: readable logs, console email, DEBUG on."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "dev-only-insecure-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "console")
# Development calls come from the bundled simulated carrier, which signs with this.
os.environ.setdefault("TWILIO_AUTH_TOKEN", "dev-twilio-auth-token")

from .base import *
