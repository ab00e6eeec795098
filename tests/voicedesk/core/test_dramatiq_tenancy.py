"""Messages run in the schema they were sent from, and never leak it onward."""

import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from redis import Redis

from tests.brokers import private_broker
from voicedesk.core.dramatiq_tenancy import OPTION


@pytest.fixture
def broker() -> Iterator[RedisBroker]:
    """A real Redis broker in a namespace of its own, with our tenant middleware."""
    with private_broker() as broker:
        yield broker


def test_task_runs_in_the_sender_schema_and_the_next_in_public(db, tenant_a, broker) -> None:
    results_key = f"vd-test:schemas:{uuid.uuid4().hex}"
    redis = Redis.from_url(settings.REDIS_URL)

    @dramatiq.actor(broker=broker, queue_name="tenancy-test", max_retries=0)
    def record_schema() -> None:
        redis.rpush(results_key, connection.schema_name)

    with tenant_context(tenant_a.tenant):
        first = record_schema.send()
    second = record_schema.send()

    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join("tenancy-test", timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert first.options[OPTION] == "alpha"
    assert second.options[OPTION] == "public"
    assert [v.decode() for v in redis.lrange(results_key, 0, -1)] == ["alpha", "public"]
    redis.delete(results_key)


@pytest.mark.parametrize("schema", ["tenant_template", "no_such_business"])
def test_messages_for_the_template_or_an_unknown_schema_never_run(db, tenant_a, broker, schema: str) -> None:
    ran_key = f"vd-test:ran:{uuid.uuid4().hex}"
    redis = Redis.from_url(settings.REDIS_URL)

    @dramatiq.actor(broker=broker, queue_name="tenancy-refuse", max_retries=0)
    def touch() -> None:
        redis.rpush(ran_key, connection.schema_name)

    touch.send_with_options(**{OPTION: schema})
    touch.send_with_options(**{OPTION: "alpha"})
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join("tenancy-refuse", timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert [v.decode() for v in redis.lrange(ran_key, 0, -1)] == ["alpha"]
    redis.delete(ran_key)
