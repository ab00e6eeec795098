"""The tickets and callbacks API: exact bodies, filters, writes through the services, CSV export."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import tenant_context

from tests.factories import (
    CallbackFactory,
    CallFactory,
    MembershipFactory,
    TicketFactory,
    TicketNoteFactory,
    UserFactory,
)
from tests.voicedesk.api.helpers import api_key_make, key_client
from tickets.models import Callback, CallbackAttempt, Ticket, TicketChange, TicketNote

# Monday 25 November 2030, 10:00 UTC: inside the default business hours (Mon-Fri 09:00-17:00 UTC).
MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)
JSON = "application/json"


@pytest.fixture
def api(tenant_a) -> Client:
    """Tenant A's API through a key made by its owner (so writes act as the owner)."""
    return key_client(tenant_a.host, api_key_make(tenant_a))


@pytest.fixture
def agent_client(tenant_a) -> Client:
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)
    return client


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _changes(ticket_id: int) -> list[tuple[str, str, str, str | None]]:
    return [
        (c.field, c.old_value, c.new_value, c.actor.email if c.actor else None)
        for c in TicketChange.objects.filter(ticket_id=ticket_id).order_by("id")
    ]


# Reading


@time_machine.travel(MONDAY_10, tick=False)
def test_list_shows_every_field_of_a_ticket(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Leaking tap", tags=["kitchen"], assignee=tenant_a.owner)

    response = api.get("/api/tickets/")

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": ticket.pk,
                "number": f"T-{ticket.pk}",
                "subject": "Leaking tap",
                "description": "Water under the sink.",
                "summary": "",
                "caller_name": "Maria Gonzalez",
                "callback_number": "+15552013344",
                "email": "",
                "category": "leak",
                "tags": ["kitchen"],
                "priority": "normal",
                "status": "new",
                "source": "web",
                "assignee": {"id": tenant_a.owner.pk, "email": "owner@alpha.test"},
                "due_at": "2030-11-26T10:00:00Z",
                "sla_paused_at": None,
                "resolved_at": None,
                "is_overdue": False,
                "call_id": None,
                "captured": {},
                "faq_answered": [],
                "created_at": "2030-11-25T10:00:00Z",
                "updated_at": "2030-11-25T10:00:00Z",
            }
        ],
    }


def test_retrieve_and_missing_ticket(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Leaking tap")

    found = api.get(f"/api/tickets/{ticket.pk}/")
    missing = api.get(f"/api/tickets/{ticket.pk + 1000}/")

    assert (found.status_code, found.json()["subject"], found.json()["number"]) == (
        200,
        "Leaking tap",
        f"T-{ticket.pk}",
    )
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})


@pytest.fixture
def three_tickets(tenant_a) -> dict[str, Ticket]:
    """Urgent/new/assigned two days ago, low/open yesterday, high/pending today."""
    with tenant_context(tenant_a.tenant):
        tickets = {
            "urgent": TicketFactory(
                subject="Burst pipe",
                status="new",
                priority="urgent",
                category="leak",
                tags=["kitchen"],
                assignee=tenant_a.owner,
                due_at=MONDAY_10 + timedelta(hours=3),
            ),
            "low": TicketFactory(
                subject="Invoice question",
                status="open",
                priority="low",
                category="billing",
                tags=[],
                due_at=MONDAY_10 + timedelta(hours=1),
                caller_name="Ann Lee",
            ),
            "high": TicketFactory(
                subject="Boiler noise",
                status="pending",
                priority="high",
                category="leak",
                tags=["kitchen", "boiler"],
                due_at=MONDAY_10 + timedelta(hours=2),
            ),
        }
        for days_ago, ticket in zip((2, 1, 0), tickets.values(), strict=True):
            Ticket.objects.filter(pk=ticket.pk).update(created_at=MONDAY_10 - timedelta(days=days_ago))
    return tickets


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["high", "low", "urgent"]),
        ("status=new", ["urgent"]),
        ("status=new&status=open", ["low", "urgent"]),
        ("priority=urgent&priority=high", ["high", "urgent"]),
        ("category=leak", ["high", "urgent"]),
        ("tag=Kitchen", ["high", "urgent"]),
        ("unassigned=true", ["high", "low"]),
        ("created_after=2030-11-24T00:00:00Z", ["high", "low"]),
        ("created_before=2030-11-24T10:00:00Z", ["urgent"]),
        ("created_after=2030-11-24T00:00:00Z&created_before=2030-11-25T00:00:00Z", ["low"]),
        ("search=boiler", ["high"]),
        ("search=ann lee", ["low"]),
        # Ranked as the inbox ranks them: ``priority`` is urgent first.
        ("ordering=priority", ["urgent", "high", "low"]),
        ("ordering=-priority", ["low", "high", "urgent"]),
        ("ordering=due_at", ["low", "high", "urgent"]),
        ("ordering=created_at", ["urgent", "low", "high"]),
        ("status=pending&category=billing", []),
    ],
)
def test_filters_search_and_ordering(api, three_tickets, query: str, expected: list[str]) -> None:
    by_id = {ticket.pk: name for name, ticket in three_tickets.items()}

    assert [by_id[i] for i in _ids(api.get(f"/api/tickets/?{query}"))] == expected


def test_priority_ordering_breaks_ties_by_id_in_the_same_direction(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        low = TicketFactory(priority="low")
        urgent_1 = TicketFactory(priority="urgent")
        normal = TicketFactory(priority="normal")
        urgent_2 = TicketFactory(priority="urgent")
        high = TicketFactory(priority="high")

    assert _ids(api.get("/api/tickets/?ordering=priority")) == [urgent_1.pk, urgent_2.pk, high.pk, normal.pk, low.pk]
    assert _ids(api.get("/api/tickets/?ordering=-priority")) == [low.pk, normal.pk, high.pk, urgent_2.pk, urgent_1.pk]


@pytest.fixture
def numbered_tickets(tenant_a) -> dict[int, Ticket]:
    """Tickets T-12, T-120 and T-1200, each with its own phone number."""
    with tenant_context(tenant_a.tenant):
        return {
            12: TicketFactory(id=12, subject="Dripping shower", callback_number="+15552013344"),
            120: TicketFactory(id=120, subject="Noisy radiator", callback_number="+15559990000"),
            1200: TicketFactory(
                id=1200,
                subject="Blocked drain",
                callback_number="",
                call=CallFactory(from_number="+15553337777"),
            ),
        }


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("T-12", [12]),
        ("t12", [12]),
        ("#120", [120]),
        ("  T-1200 ", [1200]),
        ("(555) 201-3344", [12]),
        ("555.999.0000", [120]),
        # The caller ID of the ticket's call counts too, not only the number the caller gave.
        ("555 333 7777", [1200]),
        ("radiator", [120]),
        ("T-99", []),
    ],
)
def test_search_finds_what_the_inbox_finds(api, numbered_tickets, search: str, expected: list[int]) -> None:
    assert _ids(api.get("/api/tickets/", {"search": search, "ordering": "id"})) == expected


def test_the_export_searches_and_ranks_priorities_like_the_list(tenant_a, api, numbered_tickets) -> None:
    with tenant_context(tenant_a.tenant):
        Ticket.objects.filter(pk=12).update(priority="low")
        Ticket.objects.filter(pk=1200).update(priority="urgent")

    def numbers(query: dict[str, str]) -> list[str]:
        response = api.get("/api/tickets/export.csv", query)
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
        return [row[0] for row in rows[1:]]

    assert numbers({"search": "T-12"}) == ["T-12"]
    assert numbers({"ordering": "priority"}) == ["T-1200", "T-120", "T-12"]


def test_filter_by_assignee(tenant_a, api, three_tickets) -> None:
    assert _ids(api.get(f"/api/tickets/?assignee={tenant_a.owner.pk}")) == [three_tickets["urgent"].pk]


def test_a_bad_filter_value_is_a_400_with_field_errors(api, three_tickets) -> None:
    response = api.get("/api/tickets/?status=bogus&created_after=yesterday&ordering=colour")

    assert response.status_code == 400
    assert response.json() == {
        "status": ["Select a valid choice. bogus is not one of the available choices."],
        "created_after": ["Enter a valid date/time."],
        "ordering": ["Select a valid choice. colour is not one of the available choices."],
    }


def test_pages_of_a_chosen_size_up_to_100(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        Ticket.objects.bulk_create(Ticket(subject=f"Ticket {i}") for i in range(105))
        newest_first = list(Ticket.objects.order_by("-created_at", "-id").values_list("id", flat=True))

    default = api.get("/api/tickets/").json()
    second = api.get("/api/tickets/?page_size=10&page=2").json()
    capped = api.get("/api/tickets/?page_size=500").json()
    past_the_end = api.get("/api/tickets/?page=99")

    assert (default["count"], len(default["results"])) == (105, 25)
    assert default["next"] == "http://alpha.localhost/api/tickets/?page=2"
    assert [t["id"] for t in second["results"]] == newest_first[10:20]
    assert second["next"] == "http://alpha.localhost/api/tickets/?page=3&page_size=10"
    assert second["previous"] == "http://alpha.localhost/api/tickets/?page_size=10"
    assert len(capped["results"]) == 100
    assert (past_the_end.status_code, past_the_end.json()) == (404, {"detail": "Invalid page."})


# Writing


@time_machine.travel(MONDAY_10, tick=False)
def test_create_goes_through_the_service_with_its_audit_row(tenant_a, api) -> None:
    response = api.post(
        "/api/tickets/",
        {
            "subject": "  No hot water ",
            "description": "Since this morning.",
            "caller_name": "Li Wei",
            "callback_number": "+15550009999",
            "email": "li@example.com",
            "category": "heating",
            "tags": ["Boiler", "boiler ", "urgent-ish"],
            "priority": "high",
            "assignee": tenant_a.owner.pk,
        },
        content_type=JSON,
    )

    body = response.json()
    assert response.status_code == 201
    assert response["Location"] == f"/api/tickets/{body['id']}/"
    assert {k: body[k] for k in ("subject", "category", "tags", "priority", "status", "source", "assignee")} == {
        "subject": "No hot water",
        "category": "heating",
        "tags": ["boiler", "urgent-ish"],
        "priority": "high",
        "status": "new",
        "source": "api",
        "assignee": {"id": tenant_a.owner.pk, "email": "owner@alpha.test"},
    }
    # High priority: 8 business hours from Monday 10:00 is Tuesday 10:00.
    assert body["due_at"] == "2030-11-26T10:00:00Z"
    with tenant_context(tenant_a.tenant):
        ticket = Ticket.objects.get()
        assert (ticket.caller_name, ticket.callback_number, ticket.email) == (
            "Li Wei",
            "+15550009999",
            "li@example.com",
        )
        assert _changes(ticket.pk) == [("created", "", "new", "owner@alpha.test")]


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"subject": ["This field is required."]}),
        ({"subject": "   "}, {"subject": ["This field may not be blank."]}),
        ({"subject": "x", "priority": "asap"}, {"priority": ['"asap" is not a valid choice.']}),
        ({"subject": "x", "tags": "kitchen"}, {"tags": ['Expected a list of items but got type "str".']}),
        ({"subject": "x", "email": "nope"}, {"email": ["Enter a valid email address."]}),
        ({"subject": "x", "assignee": 987654}, {"assignee": ["The assignee must be a member of this business."]}),
    ],
)
def test_create_refuses_bad_input_and_makes_nothing(tenant_a, api, payload: dict, errors: dict) -> None:
    response = api.post("/api/tickets/", payload, content_type=JSON)

    assert (response.status_code, response.json()) == (400, errors)
    with tenant_context(tenant_a.tenant):
        assert (Ticket.objects.count(), TicketChange.objects.count()) == (0, 0)


def test_an_assignee_from_another_tenant_is_refused(tenant_a, tenant_b, api) -> None:
    response = api.post("/api/tickets/", {"subject": "x", "assignee": tenant_b.owner.pk}, content_type=JSON)

    assert (response.status_code, response.json()) == (
        400,
        {"assignee": ["The assignee must be a member of this business."]},
    )


def test_malformed_json_is_a_400(tenant_a, api) -> None:
    response = api.post("/api/tickets/", "{not json", content_type=JSON)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@time_machine.travel(MONDAY_10, tick=False)
def test_partial_update_writes_one_history_row_per_changed_field(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new", priority="normal", category="leak")
    old_due = ticket.due_at

    response = api.patch(
        f"/api/tickets/{ticket.pk}/",
        {"status": "open", "priority": "urgent", "category": "leak", "tags": ["Roof"]},
        content_type=JSON,
    )

    assert response.status_code == 200
    body = response.json()
    # Urgent: 2 business hours from when the ticket was opened.
    assert (body["status"], body["priority"], body["tags"], body["due_at"]) == (
        "open",
        "urgent",
        ["roof"],
        "2030-11-25T12:00:00Z",
    )
    with tenant_context(tenant_a.tenant):
        assert sorted(_changes(ticket.pk)) == sorted(
            [
                ("tags", "", "roof", "owner@alpha.test"),
                ("due_at", old_due.isoformat(), "2030-11-25T12:00:00+00:00", "owner@alpha.test"),
                ("priority", "normal", "urgent", "owner@alpha.test"),
                ("status", "new", "open", "owner@alpha.test"),
            ]
        )


def test_assigning_and_unassigning(tenant_a, api) -> None:
    colleague = MembershipFactory(tenant=tenant_a.tenant, role="agent", user=UserFactory(email="sam@alpha.test")).user
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    assigned = api.patch(f"/api/tickets/{ticket.pk}/", {"assignee": colleague.pk}, content_type=JSON)
    unassigned = api.patch(f"/api/tickets/{ticket.pk}/", {"assignee": None}, content_type=JSON)

    assert assigned.json()["assignee"] == {"id": colleague.pk, "email": "sam@alpha.test"}
    assert unassigned.json()["assignee"] is None
    with tenant_context(tenant_a.tenant):
        assert _changes(ticket.pk) == [
            ("assignee", "", "sam@alpha.test", "owner@alpha.test"),
            ("assignee", "sam@alpha.test", "", "owner@alpha.test"),
        ]


def test_a_refused_status_change_is_a_400_and_changes_nothing(tenant_a, api) -> None:
    colleague = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="closed")

    response = api.patch(f"/api/tickets/{ticket.pk}/", {"status": "open", "assignee": colleague.pk}, content_type=JSON)

    assert (response.status_code, response.json()) == (400, {"detail": "A closed ticket cannot become open."})
    with tenant_context(tenant_a.tenant):
        ticket.refresh_from_db()
        assert (ticket.status, ticket.assignee_id) == ("closed", None)
        assert TicketChange.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"non_field_errors": ["Send at least one field to change."]}),
        ({"status": "reopened"}, {"status": ['"reopened" is not a valid choice.']}),
        ({"subject": ""}, {"subject": ["This field may not be blank."]}),
        ({"source": "phone"}, {"non_field_errors": ["Send at least one field to change."]}),
    ],
)
def test_partial_update_refuses_bad_input(tenant_a, api, payload: dict, errors: dict) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Leaking tap", source="web")

    response = api.patch(f"/api/tickets/{ticket.pk}/", payload, content_type=JSON)

    assert (response.status_code, response.json()) == (400, errors)
    with tenant_context(tenant_a.tenant):
        ticket.refresh_from_db()
        assert (ticket.subject, ticket.source, ticket.status) == ("Leaking tap", "web", "new")
        assert TicketChange.objects.count() == 0


def test_full_replacement_and_deletion_are_not_offered(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    put = api.put(f"/api/tickets/{ticket.pk}/", {"subject": "Replaced"}, content_type=JSON)
    delete = api.delete(f"/api/tickets/{ticket.pk}/")

    assert (put.status_code, put.json()) == (405, {"detail": 'Method "PUT" not allowed.'})
    assert (delete.status_code, delete.json()) == (405, {"detail": 'Method "DELETE" not allowed.'})
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.filter(pk=ticket.pk, subject=ticket.subject).exists()


@time_machine.travel(MONDAY_10, tick=False)
def test_notes_are_added_through_the_service_and_listed(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()
        earlier = TicketNoteFactory(ticket=ticket, body="Called the landlord.")

    created = api.post(f"/api/tickets/{ticket.pk}/notes/", {"body": "  Parts ordered. "}, content_type=JSON)
    listed = api.get(f"/api/tickets/{ticket.pk}/notes/")

    with tenant_context(tenant_a.tenant):
        note = TicketNote.objects.exclude(pk=earlier.pk).get()
        assert _changes(ticket.pk) == [("note", "", "Parts ordered.", "owner@alpha.test")]
    owner = {"id": tenant_a.owner.pk, "email": "owner@alpha.test"}
    assert (created.status_code, created.json()) == (
        201,
        {"id": note.pk, "author": owner, "body": "Parts ordered.", "created_at": "2030-11-25T10:00:00Z"},
    )
    assert listed.json() == [
        {"id": earlier.pk, "author": None, "body": "Called the landlord.", "created_at": "2030-11-25T10:00:00Z"},
        {"id": note.pk, "author": owner, "body": "Parts ordered.", "created_at": "2030-11-25T10:00:00Z"},
    ]


def test_an_empty_note_is_refused(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    response = api.post(f"/api/tickets/{ticket.pk}/notes/", {"body": "   "}, content_type=JSON)

    assert (response.status_code, response.json()) == (400, {"body": ["This field may not be blank."]})
    with tenant_context(tenant_a.tenant):
        assert (TicketNote.objects.count(), TicketChange.objects.count()) == (0, 0)


@time_machine.travel(MONDAY_10, tick=False)
def test_changes_list_the_tickets_history(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new")
    api.patch(f"/api/tickets/{ticket.pk}/", {"status": "pending"}, content_type=JSON)

    response = api.get(f"/api/tickets/{ticket.pk}/changes/")

    with tenant_context(tenant_a.tenant):
        change = TicketChange.objects.get()
    assert response.json() == [
        {
            "id": change.pk,
            "field": "status",
            "old_value": "new",
            "new_value": "pending",
            "actor": "owner@alpha.test",
            "created_at": "2030-11-25T10:00:00Z",
        }
    ]


def test_agents_work_tickets_through_the_session(tenant_a, agent_client) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    listed = agent_client.get("/api/tickets/")
    changed = agent_client.patch(f"/api/tickets/{ticket.pk}/", {"status": "open"}, content_type=JSON)

    assert _ids(listed) == [ticket.pk]
    assert (changed.status_code, changed.json()["status"]) == (200, "open")


# CSV export


@time_machine.travel(MONDAY_10, tick=False)
def test_export_is_exact_csv_with_formulas_defused(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        evil = TicketFactory(
            subject='=HYPERLINK("http://evil.test","Click")',
            description='Line one, with a comma\nand "quotes"',
            caller_name="@SUM(1+1)",
            callback_number="+15552013344",
            email="",
            category="leak",
            tags=["kitchen", "urgent"],
            priority="high",
            status="open",
            assignee=tenant_a.owner,
        )
        TicketFactory(subject="Closed one", status="closed")

    response = api.get("/api/tickets/export.csv?status=open")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tickets-alpha-2030-11-25.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body == (
        "number,created_at,updated_at,status,priority,category,tags,subject,description,summary,caller_name,"
        "callback_number,email,source,assignee,due_at,resolved_at,call_id\r\n"
        f'T-{evil.pk},2030-11-25T10:00:00+00:00,2030-11-25T10:00:00+00:00,open,high,leak,"kitchen, urgent",'
        '"\'=HYPERLINK(""http://evil.test"",""Click"")",'
        '"Line one, with a comma\nand ""quotes""",,\'@SUM(1+1),\'+15552013344,,web,owner@alpha.test,'
        "2030-11-26T10:00:00+00:00,,\r\n"
    )


def test_export_streams_every_row_past_one_chunk(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        Ticket.objects.bulk_create(Ticket(subject=f"Ticket {i}", category="bulk") for i in range(2500))
        ids = list(Ticket.objects.order_by("-created_at", "-id").values_list("id", flat=True))

    response = api.get("/api/tickets/export.csv?ordering=id")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
    assert len(rows) == 2501
    assert [row[0] for row in rows[1:]] == [f"T-{i}" for i in sorted(ids)]


def test_admins_and_owners_export_but_agents_get_404(tenant_a, client_a, agent_client) -> None:
    admin = Client(HTTP_HOST=tenant_a.host)
    admin.force_login(MembershipFactory(tenant=tenant_a.tenant, role="admin").user)

    assert client_a.get("/api/tickets/export.csv").status_code == 200
    assert admin.get("/api/tickets/export.csv").status_code == 200
    refused = agent_client.get("/api/tickets/export.csv")
    assert (refused.status_code, refused.json()) == (404, {"detail": "Not found."})


def test_export_needs_authentication(tenant_a) -> None:
    response = Client(HTTP_HOST=tenant_a.host).get("/api/tickets/export.csv", headers={"Accept": "text/csv"})

    assert (response.status_code, response["Content-Type"]) == (401, "application/json")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


# Callbacks


@time_machine.travel(MONDAY_10, tick=False)
def test_callbacks_list_with_every_field(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(ticket=TicketFactory(subject="Leaking tap"), requested_window="after 3pm")
        CallbackFactory(completed_at=MONDAY_10)

    response = api.get("/api/callbacks/?done=false")

    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": callback.pk,
                "ticket_id": callback.ticket_id,
                "ticket_number": f"T-{callback.ticket_id}",
                "ticket_subject": "Leaking tap",
                "assignee": None,
                "phone": "+15552013344",
                "priority": "normal",
                "reason": "Leaking tap",
                "requested_window": "after 3pm",
                "due_at": "2030-11-25T14:00:00Z",
                "is_overdue": False,
                "attempts": 0,
                "outcome": "",
                "last_attempt_at": None,
                "completed_at": None,
                "created_at": "2030-11-25T10:00:00Z",
            }
        ],
    }


@time_machine.travel(MONDAY_10, tick=False)
def test_logging_an_outcome_reschedules_through_the_service(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()

    response = api.post(
        f"/api/callbacks/{callback.pk}/outcome/",
        {"outcome": "no_answer", "note": "Rang out", "reschedule_at": "2030-11-25T15:00:00Z"},
        content_type=JSON,
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["attempts"], body["outcome"], body["due_at"], body["last_attempt_at"], body["completed_at"]) == (
        1,
        "no_answer",
        "2030-11-25T15:00:00Z",
        "2030-11-25T10:00:00Z",
        None,
    )
    with tenant_context(tenant_a.tenant):
        attempt = CallbackAttempt.objects.get()
        assert (attempt.outcome, attempt.note, attempt.actor_id) == ("no_answer", "Rang out", tenant_a.owner.pk)
        # Logging an attempt on an unassigned callback makes it the caller's.
        assert _changes(callback.ticket_id) == [
            ("callback_assignee", "", "owner@alpha.test", "owner@alpha.test"),
            ("callback_outcome", "", "No answer", "owner@alpha.test"),
            ("callback_due_at", "2030-11-25T14:00:00+00:00", "2030-11-25T15:00:00+00:00", "owner@alpha.test"),
        ]


def test_reaching_the_caller_can_resolve_the_ticket(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(ticket=TicketFactory(status="open"))

    response = api.post(
        f"/api/callbacks/{callback.pk}/outcome/", {"outcome": "reached", "resolve_ticket": True}, content_type=JSON
    )

    assert response.status_code == 200
    assert response.json()["completed_at"] is not None
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=callback.ticket_id).status == "resolved"


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        ({"outcome": ""}, 400, {"outcome": ['"" is not a valid choice.']}),
        ({"outcome": "maybe"}, 400, {"outcome": ['"maybe" is not a valid choice.']}),
        (
            {"outcome": "no_answer", "reschedule_at": "2000-01-01T00:00:00Z"},
            400,
            {"detail": "A callback can only be rescheduled to a time in the future."},
        ),
        (
            {"outcome": "no_answer", "reschedule_at": "2030-11-25T15:00:00"},
            400,
            {
                "reschedule_at": [
                    "Give the time with its time zone, e.g. 2030-11-25T15:00:00Z or 2030-11-25T10:00:00-05:00."
                ]
            },
        ),
    ],
)
def test_a_bad_outcome_is_refused_and_logs_nothing(tenant_a, api, payload: dict, status: int, body: dict) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()

    response = api.post(f"/api/callbacks/{callback.pk}/outcome/", payload, content_type=JSON)

    assert (response.status_code, response.json()) == (status, body)
    with tenant_context(tenant_a.tenant):
        assert (CallbackAttempt.objects.count(), Callback.objects.get().attempts, TicketChange.objects.count()) == (
            0,
            0,
            0,
        )


def test_a_finished_callback_takes_no_more_outcomes(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(completed_at=MONDAY_10, attempts=1)

    response = api.post(f"/api/callbacks/{callback.pk}/outcome/", {"outcome": "reached"}, content_type=JSON)

    assert (response.status_code, response.json()) == (400, {"detail": "This callback is already done."})
    with tenant_context(tenant_a.tenant):
        assert CallbackAttempt.objects.count() == 0


def test_next_hands_out_the_earliest_callback_then_204(tenant_a, agent_client) -> None:
    with tenant_context(tenant_a.tenant):
        later = CallbackFactory(due_at=MONDAY_10 + timedelta(hours=5))
        sooner = CallbackFactory(due_at=MONDAY_10 + timedelta(hours=1))

    first = agent_client.post("/api/callbacks/next/")
    with tenant_context(tenant_a.tenant):
        Callback.objects.filter(pk=sooner.pk).update(completed_at=MONDAY_10)
        Callback.objects.filter(pk=later.pk).update(completed_at=MONDAY_10)
    empty = agent_client.post("/api/callbacks/next/")

    agent = agent_client.session["_auth_user_id"]
    assert (first.status_code, first.json()["id"], str(first.json()["assignee"]["id"])) == (200, sooner.pk, agent)
    assert (empty.status_code, empty.content) == (204, b"")


def test_another_tenants_callback_is_404_and_untouched(tenant_a, tenant_b, api) -> None:
    with tenant_context(tenant_b.tenant):
        callback_b = CallbackFactory()

    response = api.post(f"/api/callbacks/{callback_b.pk}/outcome/", {"outcome": "reached"}, content_type=JSON)

    assert response.status_code == 404
    with tenant_context(tenant_b.tenant):
        assert Callback.objects.get(pk=callback_b.pk).attempts == 0
