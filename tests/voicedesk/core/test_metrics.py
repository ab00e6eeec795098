"""/metrics: Prometheus text for internal callers, 404 for everyone else."""

from __future__ import annotations

import dramatiq
from django.test import Client, override_settings

from voicedesk.core.metrics import PROVIDER_FALLBACKS


def test_metrics_are_not_for_the_public(db) -> None:
    response = Client(REMOTE_ADDR="203.0.113.50", HTTP_HOST="alpha.localhost").get("/metrics")
    assert response.status_code == 404
    assert b"voicedesk_" not in response.content


@override_settings(METRICS_TOKEN="s3cret-scrape-token")
def test_a_scraper_with_the_token_reads_them_from_anywhere(db) -> None:
    outside = Client(REMOTE_ADDR="203.0.113.50")
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    response = outside.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_metrics_carry_requests_calls_providers_and_queue_depths(db) -> None:
    Client().get("/healthz")
    PROVIDER_FALLBACKS.labels(role="tts", provider="piper").inc()
    broker = dramatiq.get_broker()
    queue = "metrics_test_queue"
    broker.declare_queue(queue)
    broker.client.rpush(f"{broker.namespace}:{queue}", "m1", "m2")

    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()

    assert "django_http_requests_total_by_method_total" in text
    assert "voicedesk_calls_in_progress" in text
    assert "voicedesk_turn_latency_seconds_bucket" in text
    assert 'voicedesk_provider_fallbacks_total{provider="piper",role="tts"}' in text
    assert f'voicedesk_queue_depth{{queue="{queue}"}} 2.0' in text
