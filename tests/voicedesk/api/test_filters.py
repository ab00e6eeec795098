"""Shared API filters: ordering ties broken by id, times in any ISO offset, searches with odd characters."""

from datetime import UTC, datetime

from django_tenants.utils import tenant_context

from calls.models import Call
from tests.factories import CallFactory, TicketFactory
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


def test_a_time_with_any_iso_offset_filters_as_the_same_instant_in_utc(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory()
        Call.objects.filter(pk=call.pk).update(started_at=datetime(2030, 11, 25, 10, 0, tzinfo=UTC))
    api = key_client(tenant_a.host, api_key_make(tenant_a))

    # 10:00 UTC is 06:27 at -03:33 and 30:27 (the next day's 06:27) at +20:27, an offset PostgreSQL refuses.
    at_offset = api.get("/api/calls/", {"started_after": "2030-11-26T06:27:00+20:27"})
    just_after = api.get("/api/calls/", {"started_after": "2030-11-26T06:27:01+20:27"})
    west = api.get("/api/calls/", {"started_before": "2030-11-25T06:27:01-03:33"})

    assert [c["id"] for c in at_offset.json()["results"]] == [call.pk]
    assert just_after.json()["results"] == []
    assert [c["id"] for c in west.json()["results"]] == [call.pk]


def test_a_time_outside_the_calendar_in_utc_is_bad_input(tenant_a) -> None:
    api = key_client(tenant_a.host, api_key_make(tenant_a))

    response = api.get("/api/tickets/", {"created_after": "0001-01-01T00:00:00+05:00"})

    assert response.status_code == 400
    assert "Enter a date and time within the calendar." in response.content.decode()


def test_a_search_with_a_nul_character_is_searched_as_a_space(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Leaking boiler")
    api = key_client(tenant_a.host, api_key_make(tenant_a))

    found = api.get("/api/tickets/", {"search": "Leaking\x00boiler"})
    notes = api.get(f"/api/tickets/{ticket.pk}/notes/", {"search": "\x00"})

    assert [t["id"] for t in found.json()["results"]] == [ticket.pk]
    assert (notes.status_code, notes.json()) == (200, [])
