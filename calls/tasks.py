"""Background work for calls. Actors only parse the message and call a service.

Dramatiq finds actors in each app's ``tasks``; LiveKit's live in its transport.
"""

import dramatiq
from django.conf import settings
from dramatiq_crontab import interval

from calls import services
from calls.hooks import CallFinished
from calls.pipeline.warm import tts_cache_warm_job
from calls.transports.livekit.tasks import (
    livekit_call_finish_overdue_job,
    livekit_number_provision_job,
    livekit_number_release_job,
)
from voicedesk.core.dramatiq_tenancy import send_in_schema, send_to_each_tenant

__all__ = [
    "call_sweep",
    "call_sweep_tenant",
    "call_transcript_on_call_finished",
    "call_transcript_request_job",
    "call_transcript_store_job",
    "livekit_call_finish_overdue_job",
    "livekit_number_provision_job",
    "livekit_number_release_job",
    "tts_cache_warm_job",
]


@dramatiq.actor(max_retries=3, min_backoff=1_000, max_backoff=10_000, time_limit=120_000)
def call_sweep_tenant() -> None:
    services.call_sweep_abandoned()


@interval(seconds=settings.CALL_SWEEP_INTERVAL_S)
@dramatiq.actor(max_retries=0)
def call_sweep() -> None:
    """Find calls nobody is running any more (their voice process died): one message per business."""
    send_to_each_tenant(call_sweep_tenant)


@dramatiq.actor(max_retries=5, min_backoff=5_000, max_backoff=300_000, time_limit=300_000)
def call_transcript_request_job(call_id: int) -> None:
    services.call_transcript_request(call_id=call_id)


@dramatiq.actor(max_retries=5, min_backoff=5_000, max_backoff=300_000, time_limit=120_000)
def call_transcript_store_job(call_id: int, transcript_id: str) -> None:
    services.call_transcript_store(call_id=call_id, transcript_id=transcript_id)


def call_transcript_on_call_finished(event: CallFinished) -> None:
    """Call-finished hook: the recording goes for its post-call transcript (the service checks the opt-in)."""
    send_in_schema(call_transcript_request_job, event.schema_name, event.call_id)
