"""The environment for servers that tests start as subprocesses (daphne, Dramatiq)."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from django.conf import settings


def _database_url(db: dict[str, Any]) -> str:
    user = urllib.parse.quote(str(db.get("USER") or ""), safe="")
    password = urllib.parse.quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{db['NAME']}"


def live_stack_env() -> dict[str, str]:
    """The servers' environment: test settings, the test database, this process's namespaces."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "voicedesk.settings.test",
            # django_db_setup has renamed the database to the test database by now.
            "DATABASE_URL": _database_url(settings.DATABASES["default"]),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "TWILIO_AUTH_TOKEN": settings.TWILIO_AUTH_TOKEN,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "console",
        }
    )
    # Set by voicedesk.settings.test when this process loaded it; the servers must match.
    for name in ("DRAMATIQ_NAMESPACE", "CACHE_KEY_PREFIX", "CHANNELS_PREFIX"):
        env[name] = os.environ[name]
    return env
