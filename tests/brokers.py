"""Dramatiq on a real Redis broker of a test's own, with the production tenancy middleware."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
from django.conf import settings
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq import Actor, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from voicedesk.core.dramatiq_tenancy import TenantMiddleware


@contextmanager
def private_broker(*actors: Actor[..., object]) -> Iterator[RedisBroker]:
    """A broker in a Redis namespace of its own, current while in use, with ``actors`` moved onto it."""
    broker = RedisBroker(url=settings.REDIS_URL, namespace=f"vd-test-{uuid.uuid4().hex[:8]}")
    middleware: list[Middleware] = [DbConnectionsMiddleware(), TenantMiddleware()]
    for each in middleware:
        broker.add_middleware(each)
    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)
    try:
        yield broker
    finally:
        for actor in actors:
            actor.broker = previous
        dramatiq.set_broker(previous)
        broker.flush_all()
        broker.close()


def work_off(broker: RedisBroker, *, threads: int = 2, timeout_ms: int = 20_000) -> None:
    """Run a worker until every declared queue is empty."""
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        for queue in broker.get_declared_queues():
            broker.join(queue, timeout=timeout_ms)
        worker.join()
    finally:
        worker.stop()
