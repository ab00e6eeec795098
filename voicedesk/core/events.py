"""Live updates for a tenant's dashboards, through one Channels group per tenant.

Events are sent after the transaction commits, so a browser never hears of a
row it cannot read yet. The group name carries the schema: tenants never
share a group.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.db import transaction

from voicedesk.core.tenancy import current_schema

logger = structlog.get_logger(__name__)

EVENT_TYPE = "helpdesk.event"
# Sends scheduled on a running loop; kept so they are not garbage-collected mid-flight.
_pending: set[asyncio.Task[None]] = set()


SESSION_ENDED_TYPE = "helpdesk.session_ended"


def helpdesk_group_name(schema_name: str) -> str:
    return f"helpdesk.{schema_name}"


def helpdesk_session_group_name(session_key: str) -> str:
    """The group of every live socket opened with one browser session (the key itself never leaves the server)."""
    return f"helpdesk.session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def helpdesk_sessions_close(*, session_key: str | None) -> None:
    """Close every live socket of a session that just signed out, on every process, at once."""
    layer = get_channel_layer()
    if not session_key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(helpdesk_session_group_name(session_key), {"type": SESSION_ENDED_TYPE})
    except Exception:
        logger.warning("helpdesk_session_close_lost", exc_info=True)


def _on_logged_out(sender: Any, request: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    helpdesk_sessions_close(session_key=getattr(session, "session_key", None))


def helpdesk_logout_listen() -> None:
    """Connect sign-out to ``helpdesk_sessions_close`` (at start-up)."""
    user_logged_out.connect(_on_logged_out, dispatch_uid="helpdesk_sessions_close")


def helpdesk_event_publish(*, kind: str, data: dict[str, Any], schema_name: str | None = None) -> None:
    """Send ``{"kind": ..., **data}`` to the tenant's dashboards once the current transaction commits.

    The schema is taken when the event is registered, not when it is sent.
    A channel layer that cannot be reached loses the live update, never the write.
    """
    group = helpdesk_group_name(schema_name or current_schema())
    message = {"type": EVENT_TYPE, "event": {"kind": kind, **data}}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        try:
            if loop is None:
                async_to_sync(layer.group_send)(group, message)
            else:
                # Committed from code running on an event loop's own thread: no
                # blocking there, the loop sends it.
                _pending.add(task := loop.create_task(layer.group_send(group, message)))
                task.add_done_callback(_pending.discard)
        except Exception:
            logger.warning("helpdesk_event_lost", group=group, kind=kind, exc_info=True)

    transaction.on_commit(send)
