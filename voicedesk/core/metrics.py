"""Prometheus metrics: the request metrics of django-prometheus plus the product's own.

Each process exports its own (scrape every daphne, voice and worker
process); the call pipeline updates the call metrics as calls run.
"""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import prometheus_client
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voicedesk.core.internal import request_is_internal

CALLS_IN_PROGRESS = prometheus_client.Gauge(
    "voicedesk_calls_in_progress", "Calls this process is handling now, per transport.", ["transport"]
)
STREAMS_REFUSED = prometheus_client.Counter(
    "voicedesk_streams_refused_total",
    "Calls this process refused because it was running as many as it may (VOICE_PROCESS_CAPACITY).",
    ["transport"],
)
TURN_LATENCY = prometheus_client.Histogram(
    "voicedesk_turn_latency_seconds",
    "From the caller's last speech to the agent's first frame sent.",
    buckets=(0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0),
)
FRAMES_LATE = prometheus_client.Counter("voicedesk_frames_late_total", "Agent audio frames sent after they were due.")
PROVIDER_ERRORS = prometheus_client.Counter(
    "voicedesk_provider_errors_total", "Engine calls that failed or missed their deadline.", ["role", "provider"]
)
PROVIDER_FALLBACKS = prometheus_client.Counter(
    "voicedesk_provider_fallbacks_total", "Switches to the next engine of a chain.", ["role", "provider"]
)


class QueueDepthCollector(Collector):
    """Messages waiting in each Dramatiq queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("voicedesk_queue_depth", "Messages waiting in a Dramatiq queue.", labels=["queue"])
        broker = dramatiq.get_broker()
        client = getattr(broker, "client", None)
        namespace = getattr(broker, "namespace", "dramatiq")
        if client is not None:
            for queue in sorted(broker.get_declared_queues()):
                family.add_metric([queue], float(client.llen(f"{namespace}:{queue}")))
        yield family


prometheus_client.REGISTRY.register(QueueDepthCollector())


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics`` for Prometheus: internal callers only, everyone else gets 404."""
    if not request_is_internal(request):
        raise Http404("No such page.")
    return HttpResponse(
        prometheus_client.generate_latest(prometheus_client.REGISTRY),
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
