"""Background work for tickets. Actors only parse the message and call a service."""

import dramatiq

from tickets.services import ticket_create_from_call


@dramatiq.actor(max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=60_000)
def ticket_generate(call_id: int) -> None:
    ticket_create_from_call(call_id=call_id)
