"""The test call page: admins of the business only; it carries the socket's address and the page's scripts."""

import pytest
from django.test import Client

from tests.factories import MembershipFactory


@pytest.mark.django_db
def test_an_admin_gets_the_page_with_the_socket_and_the_worklet(tenant_a) -> None:
    admin = MembershipFactory(tenant=tenant_a.tenant, role="admin").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(admin)

    response = client.get("/calls/test/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-socket-path="/ws/test-call/"' in body
    assert 'data-sample-rate="16000"' in body
    assert 'data-worklet-url="/static/js/test_call_worklet.js"' in body
    assert '<script src="/static/js/test_call.js" defer></script>' in body
    assert '<a href="/calls/test/" aria-current="page">Test call</a>' in body


@pytest.mark.django_db
def test_the_owner_sees_the_page_in_the_navigation(client_a) -> None:
    response = client_a.get("/")
    assert '<a href="/calls/test/">Test call</a>' in response.content.decode()


@pytest.mark.django_db
def test_agents_and_other_businesses_get_404_and_strangers_sign_in_first(tenant_a, tenant_b) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    for user in (agent, tenant_b.owner):
        client = Client(HTTP_HOST=tenant_a.host)
        client.force_login(user)
        assert client.get("/calls/test/").status_code == 404
    anonymous = Client(HTTP_HOST=tenant_a.host).get("/calls/test/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_agent_role_does_not_see_the_link(tenant_a) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(agent)
    assert "Test call" not in client.get("/").content.decode()
