"""Background work for tickets. Actors only parse the message and call a service."""

import dramatiq
from django.conf import settings
from django_tenants.utils import schema_context
from dramatiq_crontab import interval

from calls.hooks import CallFinished, CallTransferChanged
from tickets.services import (
    TRANSFER_CALLBACK_REASONS,
    callback_queue_after_transfer,
    ticket_create_from_call,
    ticket_sweep_missing,
)
from voicedesk.core.dramatiq_tenancy import send_in_schema, send_to_each_tenant


@dramatiq.actor(max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=60_000)
def ticket_generate(call_id: int) -> None:
    ticket_create_from_call(call_id=call_id)


def ticket_generate_on_call_finished(event: CallFinished) -> None:
    """Call-finished hook: every ended call gets its ticket, made by the actor in the call's schema."""
    send_in_schema(ticket_generate, event.schema_name, event.call_id)


def ticket_on_call_transfer(event: CallTransferChanged) -> None:
    """Transfer hook: the ticket is made when the transfer begins, so whoever answers has it;
    an answer reported after the call ended brings the ticket up to date, and
    a transfer that failed queues a high-priority callback. Done at once, not by an actor:
    the phone at the business is about to ring."""
    with schema_context(event.schema_name):
        if event.status in ("dialing", "answered"):
            # Answered after the call ended (Twilio's dial report): the ticket takes the final summary.
            ticket_create_from_call(call_id=event.call_id)
        elif event.status in TRANSFER_CALLBACK_REASONS:
            callback_queue_after_transfer(call_id=event.call_id, status=event.status)


@dramatiq.actor(max_retries=3, min_backoff=1_000, max_backoff=60_000, time_limit=300_000)
def ticket_sweep_tenant() -> None:
    ticket_sweep_missing()


@interval(seconds=settings.TICKET_SWEEP_INTERVAL_S)
@dramatiq.actor(max_retries=0)
def ticket_sweep() -> None:
    """Make the tickets of finished calls whose ticket message never arrived: one message per business."""
    send_to_each_tenant(ticket_sweep_tenant)
