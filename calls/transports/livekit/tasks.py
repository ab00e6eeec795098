"""LiveKit background work: dispatch rules for numbers, calls LiveKit ended. Actors parse and call a service."""

from __future__ import annotations

from typing import Any

import dramatiq
from django.conf import settings
from django.db import transaction
from dramatiq.middleware import CurrentMessage

from calls.transports.livekit import rules
from calls.transports.livekit.services import (
    livekit_call_finish_overdue,
    livekit_number_provision,
    livekit_number_release,
)
from tenants.hooks import PhoneNumberChanged
from tenants.models import RoutingState
from tenants.services import phone_number_routing_set
from voicedesk.core.dramatiq_tenancy import OPTION as SCHEMA_OPTION

PROVISION_MAX_RETRIES = 8


@dramatiq.actor(max_retries=PROVISION_MAX_RETRIES, min_backoff=2_000, max_backoff=300_000, time_limit=60_000)
def livekit_number_provision_job(number_id: int) -> None:
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    livekit_number_provision(number_id=number_id, final_attempt=retries >= PROVISION_MAX_RETRIES)


@dramatiq.actor(max_retries=PROVISION_MAX_RETRIES, min_backoff=2_000, max_backoff=300_000, time_limit=60_000)
def livekit_number_release_job(e164: str, rule_id: str) -> None:
    livekit_number_release(e164=e164, rule_id=rule_id)


@dramatiq.actor(max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=60_000)
def livekit_call_finish_overdue_job(call_id: int, reason: str) -> None:
    livekit_call_finish_overdue(call_id=call_id, reason=reason)


def livekit_call_finish_later(schema_name: str, call_id: int, reason: str) -> None:
    """Finish the call after ``LIVEKIT_FINISH_GRACE_S`` unless its agent has by then."""
    delay_ms = int(settings.LIVEKIT_FINISH_GRACE_S * 1000)
    options: dict[str, Any] = {SCHEMA_OPTION: schema_name}
    livekit_call_finish_overdue_job.send_with_options(args=(call_id, reason), delay=delay_ms, **options)


def livekit_number_changed(event: PhoneNumberChanged) -> None:
    """Tenants hook: a new number is marked pending and gets its rule; a removed one loses it (after commit)."""
    if not rules.livekit_configured():
        return
    if event.action == "registered":
        phone_number_routing_set(number_id=event.number_id, state=RoutingState.PENDING, ref="")
        transaction.on_commit(lambda: livekit_number_provision_job.send(event.number_id))
    else:
        transaction.on_commit(lambda: livekit_number_release_job.send(event.e164, event.routing_ref))
