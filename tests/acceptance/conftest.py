"""A live VoiceDesk for acceptance tests: daphne and a Dramatiq worker on the test database.

The servers are subprocesses, so tests that use them must commit their data
(``django_db(transaction=True)``). They share the test process's Redis
namespaces (broker, cache and channel layer), so they see the same queues.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_stack import ServerStack, live_stack_env


@pytest.fixture(autouse=True)
def _fresh_scenario_businesses(leftover_tenant_schemas_dropped: None) -> None:
    """Each acceptance test provisions the scenarios' businesses anew."""


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
