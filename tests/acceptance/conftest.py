"""A live VoiceDesk for acceptance tests: daphne and a Dramatiq worker on the test database.

The servers are subprocesses, so tests that use them must commit their data
(``django_db(transaction=True)``). They share the test process's Redis
namespaces (broker, cache and channel layer), so they see the same queues.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from calls.simulator import ServerStack


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


@pytest.fixture(scope="session")
def live_stack(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerStack]:
    """daphne (free loopback port) and a Dramatiq worker against the test database.

    Yields the running ``ServerStack``; ``base_url`` is ``http://localhost:<port>``
    and the logs are in ``log_dir`` (printed when a test fails to start them).
    """
    stack = ServerStack(env=live_stack_env(), log_dir=Path(tmp_path_factory.mktemp("live-stack")))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
