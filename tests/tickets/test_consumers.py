"""The live-update socket, through the real ASGI application and the Redis channel layer.

Transactional tests: the consumer checks sessions and memberships on its own
database connection, which only sees committed rows.
"""

from __future__ import annotations

import importlib
import os
from datetime import timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Membership
from tests.factories import MembershipFactory
from tickets.models import Ticket
from tickets.services import ticket_create
from voicedesk.core.events import helpdesk_event_publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _application():
    # Importing the ASGI module would otherwise load the speech models in a background thread.
    os.environ.setdefault("VOICEDESK_WARM_UP", "0")
    return importlib.import_module("voicedesk.asgi").application


@database_sync_to_async
def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def _open(host: str, *, cookie: bytes | None = None, origin: str | None = None) -> tuple:
    headers = [(b"host", host.encode()), (b"origin", (origin or f"http://{host}").encode())]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(_application(), "/ws/helpdesk/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@database_sync_to_async
def _ticket_create_in(tenant, subject: str) -> Ticket:
    with tenant_context(tenant):
        return ticket_create(actor=None, subject=subject, priority="high")


@database_sync_to_async
def _publish_in(tenant, kind: str, data: dict) -> None:
    with tenant_context(tenant):
        helpdesk_event_publish(kind=kind, data=data)


async def test_a_member_receives_the_events_of_a_committed_ticket(tenant_a) -> None:
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(tenant_a.owner))
    assert connected is True

    ticket = await _ticket_create_in(tenant_a.tenant, "Burst pipe in the basement")

    assert await communicator.receive_json_from(timeout=5) == {
        "kind": "ticket.created",
        "ticket_id": ticket.pk,
        "number": f"T-{ticket.pk}",
        "subject": "Burst pipe in the basement",
        "status": "new",
        "priority": "high",
    }
    await communicator.disconnect()


async def test_an_event_inside_an_open_transaction_is_sent_only_on_commit(tenant_a) -> None:
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(tenant_a.owner))
    assert connected is True

    @database_sync_to_async
    def publish_then_roll_back() -> None:
        from django.db import transaction

        with tenant_context(tenant_a.tenant):
            try:
                with transaction.atomic():
                    helpdesk_event_publish(kind="call.started", data={"call_id": 1, "from_number": "+15550100001"})
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass

    await publish_then_roll_back()
    assert await communicator.receive_nothing(timeout=0.5) is True

    await _publish_in(tenant_a.tenant, "call.finished", {"call_id": 2, "status": "completed"})
    assert await communicator.receive_json_from(timeout=5) == {
        "kind": "call.finished",
        "call_id": 2,
        "status": "completed",
    }
    await communicator.disconnect()


async def test_events_of_another_tenant_never_reach_the_socket(tenant_a, tenant_b) -> None:
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(tenant_a.owner))
    assert connected is True

    await _publish_in(tenant_b.tenant, "call.started", {"call_id": 7, "from_number": "+15550009999"})
    await _publish_in(tenant_a.tenant, "call.started", {"call_id": 8, "from_number": "+15550001111"})

    # Groups are delivered in order per channel: had B's event arrived, it would come first.
    assert await communicator.receive_json_from(timeout=5) == {
        "kind": "call.started",
        "call_id": 8,
        "from_number": "+15550001111",
    }
    assert await communicator.receive_nothing(timeout=0.5) is True
    await communicator.disconnect()


async def test_a_member_of_another_tenant_is_refused(tenant_a, tenant_b) -> None:
    communicator, connected, code = await _open(tenant_a.host, cookie=await _session_cookie(tenant_b.owner))

    assert (connected, code) == (False, 4404)
    # A refused socket is in no group: a later event goes nowhere near it.
    await _publish_in(tenant_a.tenant, "call.started", {"call_id": 9, "from_number": "+15550002222"})
    assert await communicator.receive_nothing(timeout=0.5) is True


async def test_an_anonymous_visitor_is_refused(tenant_a) -> None:
    _, connected, code = await _open(tenant_a.host)

    assert (connected, code) == (False, 4404)


async def test_the_public_host_has_no_help_desk_socket(tenant_a) -> None:
    _, connected, code = await _open("localhost", cookie=await _session_cookie(tenant_a.owner))

    assert (connected, code) == (False, 4404)


async def test_a_foreign_origin_is_refused_even_with_a_member_session(tenant_a) -> None:
    communicator, connected, code = await _open(
        tenant_a.host, cookie=await _session_cookie(tenant_a.owner), origin="https://evil.example"
    )

    assert connected is False
    assert code == 1000
    await _publish_in(tenant_a.tenant, "call.started", {"call_id": 10, "from_number": "+15550003333"})
    assert await communicator.receive_nothing(timeout=0.5) is True


@database_sync_to_async
def _agent_of(tenant):
    return MembershipFactory(tenant=tenant, role="agent").user


@database_sync_to_async
def _membership_remove(user, tenant) -> None:
    Membership.objects.filter(user=user, tenant=tenant).delete()


async def test_a_removed_member_is_disconnected_at_the_first_event_after_the_recheck_interval(tenant_a) -> None:
    agent = await _agent_of(tenant_a.tenant)
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(agent))
    assert connected is True

    await _membership_remove(agent, tenant_a.tenant)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        await _publish_in(tenant_a.tenant, "call.started", {"call_id": 11, "from_number": "+15550004444"})

        # The close comes instead of the event: the caller's number never reaches the socket.
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
        await _publish_in(tenant_a.tenant, "call.started", {"call_id": 12, "from_number": "+15550005555"})
        assert await communicator.receive_nothing(timeout=0.5) is True
    await communicator.disconnect()


async def test_a_removed_member_keeps_the_socket_until_the_recheck_is_due(tenant_a) -> None:
    agent = await _agent_of(tenant_a.tenant)
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(agent))
    assert connected is True

    await _membership_remove(agent, tenant_a.tenant)
    # Within the interval no query is made per event; the next event after it closes the socket.
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        await _publish_in(tenant_a.tenant, "call.finished", {"call_id": 13, "status": "completed"})
        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "call.finished",
            "call_id": 13,
            "status": "completed",
        }
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        await _publish_in(tenant_a.tenant, "call.finished", {"call_id": 14, "status": "completed"})
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await communicator.disconnect()


async def test_a_member_still_receives_events_after_the_recheck(tenant_a) -> None:
    agent = await _agent_of(tenant_a.tenant)
    communicator, connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(agent))
    assert connected is True

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        await _publish_in(tenant_a.tenant, "call.finished", {"call_id": 15, "status": "abandoned"})

        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "call.finished",
            "call_id": 15,
            "status": "abandoned",
        }
    await communicator.disconnect()


async def test_another_businesss_page_cannot_open_this_businesss_socket(tenant_a, tenant_b) -> None:
    # Both hosts are allowed hosts of the platform; only the socket's own host is a same origin.
    communicator, connected, code = await _open(
        tenant_a.host, cookie=await _session_cookie(tenant_a.owner), origin=f"http://{tenant_b.host}"
    )

    assert (connected, code) == (False, 4404)
    await _publish_in(tenant_a.tenant, "call.started", {"call_id": 11, "from_number": "+15550003333"})
    assert await communicator.receive_nothing(timeout=0.5) is True


@database_sync_to_async
def _signed_in_client(user) -> Client:
    client = Client(HTTP_HOST="alpha.localhost")
    client.force_login(user)
    return client


@database_sync_to_async
def _sign_out(client: Client) -> int:
    return client.post("/accounts/logout/").status_code


async def test_signing_out_closes_the_sessions_sockets_at_once(tenant_a) -> None:
    client = await _signed_in_client(tenant_a.owner)
    name = settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}".encode()
    communicator, connected, _ = await _open(tenant_a.host, cookie=cookie)
    other_browser, other_connected, _ = await _open(tenant_a.host, cookie=await _session_cookie(tenant_a.owner))
    assert (connected, other_connected) == (True, True)

    assert await _sign_out(client) == 302

    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await _publish_in(tenant_a.tenant, "call.started", {"call_id": 12, "from_number": "+15550003333"})
    assert (await other_browser.receive_json_from(timeout=5))["call_id"] == 12
    await other_browser.disconnect()
