"""Ordering ties are broken by id, so pages neither repeat nor skip rows."""

from datetime import UTC, datetime

from django_tenants.utils import tenant_context

from tests.factories import TicketFactory
from tests.voicedesk.api.helpers import api_key_make, key_client

DUE = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def test_equal_sort_keys_are_ordered_by_id_in_the_same_direction(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ids = [TicketFactory(due_at=DUE).pk for _ in range(4)]
    api = key_client(tenant_a.host, api_key_make(tenant_a))

    ascending = api.get("/api/tickets/?ordering=due_at&page_size=2")
    descending = api.get("/api/tickets/?ordering=-due_at&page_size=2&page=2")

    assert [t["id"] for t in ascending.json()["results"]] == ids[:2]
    assert [t["id"] for t in descending.json()["results"]] == [ids[1], ids[0]]
