"""Who may do what in the API, by role; forbidden looks like missing (404)."""

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import FaqEntry
from tests.factories import MembershipFactory
from tests.voicedesk.api.helpers import api_key_make, key_client

JSON = "application/json"


def _client(tenant_a, who: str) -> Client:
    if who == "key":
        return key_client(tenant_a.host, api_key_make(tenant_a))
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(tenant_a.owner if who == "owner" else MembershipFactory(tenant=tenant_a.tenant, role=who).user)
    return client


@pytest.mark.parametrize(
    ("who", "reads", "admin_only"),
    [
        ("agent", 200, 404),
        ("admin", 200, 200),
        ("owner", 200, 200),
        ("key", 200, 200),
    ],
)
def test_role_matrix(tenant_a, who: str, reads: int, admin_only: int) -> None:
    client = _client(tenant_a, who)

    assert client.get("/api/tickets/").status_code == reads
    assert client.get("/api/faq-entries/").status_code == reads
    assert client.get("/api/agent-config/").status_code == reads
    assert client.get("/api/tickets/export.csv").status_code == admin_only
    assert client.get("/api/calls/export.csv").status_code == admin_only
    created = client.post("/api/faq-entries/", {"question": f"Asked by {who}?", "answer": "Yes."}, content_type=JSON)
    assert created.status_code == (201 if admin_only == 200 else 404)
    with tenant_context(tenant_a.tenant):
        assert FaqEntry.objects.filter(question=f"Asked by {who}?").count() == (1 if admin_only == 200 else 0)
