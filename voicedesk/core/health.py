"""Liveness and readiness probes.

``/healthz`` touches nothing. ``/readyz`` checks every dependency a request
or a call needs and reports each one's status and latency.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from redis import Redis

from voicedesk.core.internal import request_is_internal

CHECK_TIMEOUT_S = 2.0


def _check_postgres() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    from django.conf import settings

    client = Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()


def _check_dramatiq_broker() -> None:
    import dramatiq

    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        raise RuntimeError(f"{type(broker).__name__} has no Redis client to check")
    client.ping()


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        import asyncio

        channel = await layer.new_channel("readyz.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "readyz.ping", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_S)
        if message.get("token") != token:
            raise RuntimeError("channel layer returned another message")

    async_to_sync(round_trip)()


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _check_postgres,
    "redis": _check_redis,
    "dramatiq_broker": _check_dramatiq_broker,
    "channel_layer": _check_channel_layer,
}


def readiness_report() -> tuple[bool, dict[str, dict[str, object]]]:
    """Run every check; return whether all passed and each one's result."""
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            results[name] = {"ok": False, "latency_ms": _ms_since(started), "error": f"{type(exc).__name__}: {exc}"}
        else:
            results[name] = {"ok": True, "latency_ms": _ms_since(started)}
    return all(r["ok"] for r in results.values()), results


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@never_cache
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readiness(request: HttpRequest) -> JsonResponse:
    """Ready or not for everyone (load balancers); which dependency failed, and why, only for internal callers."""
    ok, checks = readiness_report()
    body: dict[str, object] = {"status": "ok" if ok else "unavailable"}
    if request_is_internal(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ok else 503)
