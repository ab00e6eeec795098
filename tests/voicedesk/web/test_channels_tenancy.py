from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from voicedesk.web.channels_tenancy import TenantWebsocketMiddleware


class ScopeEcho:
    """A minimal websocket app that accepts and reports the tenant it was given."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["tenant"].schema_name})


@pytest.mark.django_db(transaction=False)
@pytest.mark.asyncio
async def test_websocket_gets_the_tenant_of_its_host(tenant_a) -> None:
    communicator = WebsocketCommunicator(
        TenantWebsocketMiddleware(ScopeEcho()), "/ws/", headers=[(b"host", b"alpha.localhost:8000")]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_from() == "alpha"
    await communicator.disconnect()


@pytest.mark.django_db
@pytest.mark.asyncio
async def test_websocket_for_an_unknown_host_is_refused(tenant_a) -> None:
    communicator = WebsocketCommunicator(
        TenantWebsocketMiddleware(ScopeEcho()), "/ws/", headers=[(b"host", b"nobody.localhost")]
    )
    connected, code = await communicator.connect()
    assert connected is False
    assert code == 4404
