"""Calls at chosen times, for the history and analytics tests. Use inside a tenant context."""

from datetime import datetime, timedelta
from typing import Any

from calls.models import AgentConfig, Call
from tests.factories import CallFactory, outcome


def call_at(
    started_at: datetime,
    *,
    talk_s: float | None = 60.0,
    ring_s: float = 5.0,
    name: str | None = None,
    **fields: Any,
) -> Call:
    """A call started at ``started_at``, answered ``ring_s`` later, lasting ``talk_s`` (``None``: never answered).

    ``started_at`` is ``auto_now_add``, so it is written after the row exists.
    """
    if name is not None:
        fields.setdefault("captured", outcome(fields=outcome()["fields"] | {"name": name}))
    call = CallFactory(**fields)
    answered_at = started_at + timedelta(seconds=ring_s) if talk_s is not None else None
    ended_at = answered_at + timedelta(seconds=talk_s) if answered_at is not None and talk_s is not None else None
    Call.objects.filter(pk=call.pk).update(started_at=started_at, answered_at=answered_at, ended_at=ended_at)
    call.refresh_from_db()
    return call


def tenant_timezone_set(name: str) -> None:
    AgentConfig.objects.update(timezone=name)
