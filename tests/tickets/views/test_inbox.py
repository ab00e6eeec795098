from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from calls.models import AgentConfig
from tests.factories import TicketFactory
from tests.tickets.views.conftest import HTMX, assert_not_found, assert_sent_to_sign_in
from tickets.models import Ticket, TicketChange

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def _html(response) -> str:
    return response.content.decode()


# --- The inbox page ----------------------------------------------------------------------------------------------


@time_machine.travel(MONDAY_10, tick=False)
def test_inbox_lists_open_tickets_with_overdue_marked(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        AgentConfig.objects.update(timezone="America/New_York")
        late = TicketFactory(subject="Burst pipe", priority="urgent", due_at=MONDAY_10 - timedelta(hours=1))
        fine = TicketFactory(subject="Dripping tap", caller_name="Ann Lee", tags=["vip"], assignee=tenant_a.owner)
        TicketFactory(subject="Old resolved one", status="resolved")

    client_a.force_login(tenant_a.owner)  # a session of the travelled-to day
    response = client_a.get("/tickets/")

    html = _html(response)
    assert response.status_code == 200
    assert [t.pk for t in response.context["tickets"]] == [fine.pk, late.pk]
    assert '<h2 id="inbox-results-title" class="tk-count">2 tickets</h2>' in html
    assert f'<td><a href="/tickets/{late.pk}/">T-{late.pk}</a></td>' in html
    assert "Burst pipe" in html
    assert "Dripping tap" in html
    assert "Old resolved one" not in html
    # Overdue is said in words, not only with colour; times are the business's (New York).
    assert html.count('<span class="tk-badge tk-badge-overdue">Overdue</span>') == 1
    assert html.count('<tr class="tk-overdue">') == 1
    assert '<time datetime="2030-11-25T09:00:00+00:00">Mon 25 Nov, 04:00</time>' in html
    assert '<span class="tk-tag">vip</span>' in html
    assert "<td>owner@alpha.test</td>" in html
    # The filter form, labelled, and the live refresh of the results.
    for label in ("Search", "Status", "Priority", "Category", "Assignee", "Created from", "Created to", "Sort by"):
        assert f">{label}</label>" in html
    # One refresh once a burst of events is over; only the section's content is swapped, so the timer survives it.
    assert (
        'hx-trigger="helpdesk-ticket-created from:body delay:1s, helpdesk-ticket-updated from:body delay:1s"'
    ) in html
    assert 'hx-select="#inbox-results > *" hx-swap="innerHTML" hx-disinherit="hx-select hx-swap"' in html
    assert '<a href="/tickets/" aria-current="page">Inbox</a>' in html
    assert "HX-Request" in response["Vary"].split(", ")


def test_inbox_htmx_request_gets_the_results_fragment_only(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(subject="Boiler noise")
        TicketFactory(subject="Leak")

    response = client_a.get("/tickets/?q=boiler&status=any", headers=HTMX)

    html = _html(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="inbox-results"')
    assert "<html" not in html
    assert 'id="inbox-filters"' not in html
    assert 'hx-get="/tickets/?q=boiler&amp;status=any"' in html
    assert '<p id="inbox-announce" hx-swap-oob="innerHTML">1 ticket</p>' in html
    assert [t.pk for t in response.context["tickets"]] == [ticket.pk]


def test_inbox_filters_me_and_sorting(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        low = TicketFactory(priority="low", assignee=tenant_a.owner)
        urgent = TicketFactory(priority="urgent", assignee=tenant_a.owner)
        TicketFactory(priority="high", assignee=None)

    response = client_a.get("/tickets/?assignee=me&sort=priority")

    assert [t.pk for t in response.context["tickets"]] == [urgent.pk, low.pk]


def test_inbox_pages_by_25_with_the_total(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        Ticket.objects.bulk_create(Ticket(subject=f"Ticket {n}") for n in range(30))

    first = client_a.get("/tickets/")
    second = client_a.get("/tickets/?page=2", headers=HTMX)
    beyond = client_a.get("/tickets/?page=99")

    assert len(first.context["tickets"]) == 25
    assert "30 tickets, page 1 of 2" in _html(first)
    assert 'href="?page=2"' in _html(first)
    assert 'rel="next"' in _html(first)
    assert len(second.context["tickets"]) == 5
    assert "30 tickets, page 2 of 2" in _html(second)
    assert 'hx-get="/tickets/?page=1"' in _html(second)
    assert beyond.status_code == 200
    assert beyond.context["page"].number == 2


def test_invalid_filters_are_shown_and_ignored(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        TicketFactory(status="new")

    response = client_a.get("/tickets/?status=archived&created_from=soon")

    html = _html(response)
    assert response.status_code == 200
    assert len(response.context["tickets"]) == 1
    assert '<ul class="tk-errors" role="alert">' in html
    assert "<li>Status: Select a valid choice. archived is not one of the available choices.</li>" in html
    assert "<li>Created from: Enter a valid date.</li>" in html


def test_no_matches_says_so(client_a, tenant_a) -> None:
    response = client_a.get("/tickets/?q=xylophone")

    assert '<p class="empty">No tickets match these filters.</p>' in _html(response)


def test_inbox_queries_do_not_grow_with_the_rows(client_a, tenant_a, django_assert_num_queries) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_a.get("/tickets/?sort=due").status_code == 200
        return len(captured)

    with tenant_context(tenant_a.tenant):
        TicketFactory(assignee=tenant_a.owner)
    few = queries()
    with tenant_context(tenant_a.tenant):
        Ticket.objects.bulk_create(Ticket(subject=f"T {n}", assignee=tenant_a.owner) for n in range(40))
    many = queries()

    assert few == many
    # Tenant by host (3 with search paths), session, user, membership, time zone, members,
    # categories (2), count, page, the subscription (billing banner).
    with django_assert_num_queries(13):
        client_a.get("/tickets/?sort=due")


def test_agent_role_may_use_the_inbox(agent_client) -> None:
    assert agent_client.get("/tickets/").status_code == 200


def test_inbox_is_hidden_from_other_tenants_and_strangers(intruder_client, anonymous_client) -> None:
    assert_not_found(intruder_client.get("/tickets/"))
    assert_sent_to_sign_in(anonymous_client.get("/tickets/"), "/tickets/")


def test_inbox_is_read_only(client_a) -> None:
    assert client_a.post("/tickets/").status_code == 405


# --- New ticket --------------------------------------------------------------------------------------------------


def test_new_ticket_form_renders(client_a, tenant_a) -> None:
    response = client_a.get("/tickets/new/")

    html = _html(response)
    assert response.status_code == 200
    assert "<h1>New ticket</h1>" in html
    assert '<option value="" selected>Nobody yet</option>' in html
    assert f'<option value="{tenant_a.owner.pk}">owner@alpha.test</option>' in html
    assert '<datalist id="tk-categories"><option value="general"></datalist>' in html
    assert '<button type="submit">Create ticket</button>' in html


@time_machine.travel(MONDAY_10, tick=False)
def test_new_ticket_is_created_through_the_service(client_a, tenant_a, agent_a) -> None:
    client_a.force_login(tenant_a.owner)  # a session of the travelled-to day
    response = client_a.post(
        "/tickets/new/",
        {
            "subject": "Boiler noise",
            "description": "Banging at night.",
            "caller_name": "Ann Lee",
            "callback_number": "+15550100200",
            "email": "ann@example.com",
            "category": "",
            "tags": "VIP, night",
            "priority": "high",
            "assignee": str(agent_a.pk),
        },
    )

    with tenant_context(tenant_a.tenant):
        ticket = Ticket.objects.get()
        audit = list(TicketChange.objects.values_list("field", "actor_id", "new_value"))
    assert (response.status_code, response["Location"]) == (302, f"/tickets/{ticket.pk}/")
    assert (ticket.subject, ticket.source, ticket.category, ticket.tags, ticket.priority) == (
        "Boiler noise",
        "web",
        "general",
        ["vip", "night"],
        "high",
    )
    assert (ticket.caller_name, ticket.callback_number, ticket.email, ticket.assignee_id) == (
        "Ann Lee",
        "+15550100200",
        "ann@example.com",
        agent_a.pk,
    )
    assert ticket.due_at == datetime(2030, 11, 26, 10, 0, tzinfo=UTC)
    assert audit == [("created", tenant_a.owner.pk, "new")]
    followed = client_a.get(response["Location"])
    assert f"Ticket T-{ticket.pk} created." in _html(followed)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"subject": "", "priority": "normal"}, "Subject: This field is required."),
        ({"subject": "Leak", "priority": "normal", "email": "nope"}, "Email: Enter a valid email address."),
        ({"subject": "Leak", "priority": "whenever"}, "Priority: Select a valid choice."),
        ({"subject": "Leak", "priority": "normal", "tags": "x" * 51}, "Tags: Tags can be at most 50 characters long."),
        ({"subject": "Leak", "priority": "normal", "assignee": "999999"}, "Assignee: Select a valid choice."),
    ],
)
def test_bad_new_ticket_shows_errors_and_creates_nothing(client_a, tenant_a, data: dict, error: str) -> None:
    response = client_a.post("/tickets/new/", data)

    assert response.status_code == 200
    assert "The ticket was not created" in _html(response)
    assert error in _html(response)
    with tenant_context(tenant_a.tenant):
        assert (Ticket.objects.count(), TicketChange.objects.count()) == (0, 0)


def test_new_ticket_refuses_tenant_b_and_strangers(intruder_client, anonymous_client, tenant_a, tenant_b) -> None:
    data = {"subject": "Sneaky", "priority": "normal"}

    assert_not_found(intruder_client.post("/tickets/new/", data))
    assert_sent_to_sign_in(anonymous_client.post("/tickets/new/", data), "/tickets/new/")
    for tenant in (tenant_a.tenant, tenant_b.tenant):
        with tenant_context(tenant):
            assert Ticket.objects.count() == 0


def test_new_ticket_needs_the_csrf_token(csrf_client, tenant_a) -> None:
    response = csrf_client.post("/tickets/new/", {"subject": "Forged", "priority": "normal"})

    assert response.status_code == 403
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.count() == 0
