"""Background work for calls. Actors only parse the message and call a service."""

import dramatiq
from django.conf import settings
from dramatiq_crontab import interval

from calls import services
from voicedesk.core.dramatiq_tenancy import send_to_each_tenant


@dramatiq.actor(max_retries=3, min_backoff=1_000, max_backoff=10_000, time_limit=120_000)
def call_sweep_tenant() -> None:
    services.call_sweep_abandoned()


@interval(seconds=settings.CALL_SWEEP_INTERVAL_S)
@dramatiq.actor(max_retries=0)
def call_sweep() -> None:
    """Find calls nobody is running any more (their voice process died): one message per business."""
    send_to_each_tenant(call_sweep_tenant)
