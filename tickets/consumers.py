"""The help desk's live-update websocket: one socket per open dashboard tab.

The socket only listens. Services publish events to the tenant's group
(``voicedesk.core.events.helpdesk_event_publish``) after their transaction commits;
this consumer forwards them to members of that tenant and to nobody else.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from tenants.models import Tenant
from voicedesk.core.events import helpdesk_group_name, helpdesk_session_group_name
from voicedesk.web.channels_tenancy import websocket_membership, websocket_same_origin

logger = structlog.get_logger(__name__)

# Same meaning as the HTTP 404 the pages give: missing and forbidden look alike.
CLOSE_NOT_FOUND = 4404
# A socket can stay open for days: a member who is removed (or deactivated)
# must stop receiving callers' numbers and subjects within this long.
MEMBERSHIP_RECHECK_AFTER = timedelta(seconds=60)


async def _is_member(user_id: int, tenant_id: int) -> bool:
    return await websocket_membership(user_id, tenant_id) is not None


class HelpdeskConsumer(AsyncJsonWebsocketConsumer):
    """Forwards the tenant's help desk events to a signed-in member's browser."""

    group_name: str | None = None
    session_group: str | None = None
    user_id: int | None = None
    tenant_id: int | None = None
    membership_checked_at: datetime | None = None

    async def connect(self) -> None:
        tenant: Tenant | None = self.scope.get("tenant")
        user = self.scope.get("user")
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        if (
            tenant is None
            or user is None
            or not user.is_authenticated
            or not session_key
            or not websocket_same_origin(self.scope)
            or not await _is_member(user.pk, tenant.pk)
        ):
            # Refused before the handshake completes: the browser gets no socket at all.
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.user_id, self.tenant_id, self.membership_checked_at = user.pk, tenant.pk, timezone.now()
        self.group_name = helpdesk_group_name(tenant.schema_name)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        # Signing out in this browser closes this socket at once (voicedesk.core.events.helpdesk_sessions_close).
        self.session_group = helpdesk_session_group_name(session_key)
        await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()
        logger.debug("helpdesk_socket_open", tenant=tenant.schema_name, user_id=user.pk)

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        if self.session_group is not None:
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def helpdesk_session_ended(self, message: dict[str, Any]) -> None:
        logger.info("helpdesk_socket_signed_out", tenant_id=self.tenant_id, user_id=self.user_id)
        await self.disconnect(CLOSE_NOT_FOUND)
        self.group_name = self.session_group = None
        await self.close(code=CLOSE_NOT_FOUND)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The browser has nothing to say on this socket; ignore whatever it sends.
        return None

    async def helpdesk_event(self, message: dict[str, Any]) -> None:
        if not await self._still_member():
            return
        await self.send_json(message["event"])

    async def _still_member(self) -> bool:
        """Whether the socket's user is still a member; checked again when the last check is stale.

        When they are not, the socket leaves the group and closes with 4404, as at connect.
        """
        if self.user_id is None or self.tenant_id is None or self.group_name is None:
            return False
        now = timezone.now()
        if self.membership_checked_at is not None and now - self.membership_checked_at < MEMBERSHIP_RECHECK_AFTER:
            return True
        if await _is_member(self.user_id, self.tenant_id):
            self.membership_checked_at = now
            return True
        logger.info("helpdesk_socket_membership_gone", tenant_id=self.tenant_id, user_id=self.user_id)
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        self.group_name = None
        await self.close(code=CLOSE_NOT_FOUND)
        return False
