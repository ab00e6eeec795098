from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_tenants.utils import tenant_context

from calls.models import AgentConfig
from tests.factories import CallbackFactory, MembershipFactory, TicketFactory
from tests.tickets.views.conftest import HTMX, assert_not_found, assert_sent_to_sign_in
from tickets.models import Callback, CallbackAttempt, Ticket, TicketChange

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def _html(response) -> str:
    return response.content.decode()


def _snapshot(tenant) -> tuple:
    with tenant_context(tenant):
        return (
            list(Callback.objects.order_by("pk").values()),
            list(Ticket.objects.order_by("pk").values("pk", "status")),
            CallbackAttempt.objects.count(),
            TicketChange.objects.count(),
        )


@pytest.fixture
def at_monday_10(client_a, tenant_a):
    """Monday 10:00 UTC, business time zone New York, the owner signed in on that day."""
    with time_machine.travel(MONDAY_10, tick=False):
        client_a.force_login(tenant_a.owner)
        with tenant_context(tenant_a.tenant):
            AgentConfig.objects.update(timezone="America/New_York")
        yield client_a


# --- The queue ---------------------------------------------------------------------------------------------------


def test_queue_lists_waiting_callbacks_by_due_with_overdue_in_words(at_monday_10, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        later = CallbackFactory(
            due_at=MONDAY_10 + timedelta(hours=2), ticket=TicketFactory(caller_name="Ann Lee"), assignee=agent_a
        )
        overdue = CallbackFactory(
            due_at=MONDAY_10 - timedelta(hours=1),
            ticket=TicketFactory(caller_name="Bob Ray"),
            requested_window="after 5pm",
            reason="Wants a quote",
        )
        done = CallbackFactory(
            ticket=TicketFactory(caller_name="Cy Done"), completed_at=MONDAY_10, outcome="reached", attempts=1
        )

    response = at_monday_10.get("/callbacks/")

    html = _html(response)
    assert response.status_code == 200
    assert [c.pk for c in response.context["callbacks"]] == [overdue.pk, later.pk]
    assert '<h2 id="callback-rows-title">2 callbacks waiting</h2>' in html
    assert html.count('<tr class="tk-overdue">') == 1
    assert html.count('<span class="tk-badge tk-badge-overdue">Overdue</span>') == 1
    assert '<time datetime="2030-11-25T09:00:00+00:00">Mon 25 Nov, 04:00</time>' in html
    assert f'<a href="/callbacks/{overdue.pk}/">Bob Ray</a>' in html
    assert '<td><a href="tel:+15552013344">+15552013344</a></td>' in html
    assert "<td>Wants a quote</td>" in html
    assert "<td>after 5pm</td>" in html
    assert "<td>agent@alpha.test</td>" in html
    # Done ones are under "Recently done", not in the queue.
    recent = html[html.index("Recently done") :]
    assert f'<a href="/callbacks/{done.pk}/">Cy Done</a>' in recent
    assert "<td>Reached</td>" in recent
    assert '<button type="submit">Next callback</button>' in html
    assert '<a href="/callbacks/" aria-current="page">Callbacks</a>' in html


@pytest.mark.parametrize(("show", "expected"), [("mine", ["mine"]), ("unassigned", ["nobody"]), ("overdue", ["late"])])
def test_queue_filters(at_monday_10, tenant_a, agent_a, show: str, expected: list[str]) -> None:
    with tenant_context(tenant_a.tenant):
        CallbackFactory(reason="mine", assignee=tenant_a.owner, due_at=MONDAY_10 + timedelta(hours=1))
        CallbackFactory(reason="nobody", due_at=MONDAY_10 + timedelta(hours=2))
        CallbackFactory(reason="late", assignee=agent_a, due_at=MONDAY_10 - timedelta(hours=1))

    response = at_monday_10.get(f"/callbacks/?show={show}", headers=HTMX)

    html = _html(response)
    assert html.lstrip().startswith('<section id="callback-rows"')
    assert [c.reason for c in response.context["callbacks"]] == expected
    assert f'hx-push-url="true" aria-current="page">{show.capitalize()}</a>' in html
    assert '<p id="callback-announce" hx-swap-oob="innerHTML">1 callback waiting</p>' in html


def test_queue_refreshes_live_once_a_burst_of_events_is_over(client_a) -> None:
    html = _html(client_a.get("/callbacks/"))

    assert (
        'hx-trigger="helpdesk-callback-updated from:body delay:1s, helpdesk-ticket-created from:body delay:1s"'
    ) in html
    assert 'hx-select="#callback-rows > *" hx-swap="innerHTML" hx-disinherit="hx-select hx-swap"' in html


def test_queue_leaves_out_callbacks_of_solved_tickets(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        waiting = CallbackFactory(ticket=TicketFactory(status="pending"))
        CallbackFactory(ticket=TicketFactory(status="resolved"))
        CallbackFactory(ticket=TicketFactory(status="closed"))

    response = client_a.get("/callbacks/")

    assert [c.pk for c in response.context["callbacks"]] == [waiting.pk]
    assert '<h2 id="callback-rows-title">1 callback waiting</h2>' in _html(response)


def test_unknown_filter_shows_all(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        CallbackFactory()

    response = client_a.get("/callbacks/?show=everything")

    assert (response.context["show"], len(response.context["callbacks"])) == ("all", 1)


def test_empty_queue(client_a) -> None:
    html = _html(client_a.get("/callbacks/"))

    assert '<p class="empty">No callbacks waiting here.</p>' in html
    assert '<p class="empty">None yet.</p>' in html


# --- Next callback -----------------------------------------------------------------------------------------------


def test_next_callback_hands_out_the_earliest_due_and_opens_it(agent_client, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        CallbackFactory(due_at=MONDAY_10 + timedelta(days=400))
        first = CallbackFactory(due_at=MONDAY_10)

    response = agent_client.post("/callbacks/next/")

    assert (response.status_code, response["Location"]) == (302, f"/callbacks/{first.pk}/")
    with tenant_context(tenant_a.tenant):
        assert Callback.objects.get(pk=first.pk).assignee_id == agent_a.pk
        assert list(TicketChange.objects.values_list("field", "new_value")) == [
            ("callback_assignee", "agent@alpha.test")
        ]


def test_next_callback_with_an_empty_queue_says_so(client_a) -> None:
    response = client_a.post("/callbacks/next/", follow=True)

    assert response.redirect_chain == [("/callbacks/", 302)]
    assert '<li class="info">No callbacks are waiting for you. Nice work.</li>' in _html(response)


# --- A callback --------------------------------------------------------------------------------------------------


def test_callback_page_shows_who_why_and_the_attempts(at_monday_10, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(caller_name="Bob Ray", subject="Boiler quote")
        callback = CallbackFactory(
            ticket=ticket,
            phone="+15550001234",
            reason="Wants a quote",
            requested_window="after 5pm",
            attempts=1,
            outcome="no_answer",
        )
        CallbackAttempt.objects.create(callback=callback, actor=agent_a, outcome="no_answer", note="Rang 6 times.")

    html = _html(at_monday_10.get(f"/callbacks/{callback.pk}/"))

    assert "<h1>Call back Bob Ray</h1>" in html
    assert '<a class="tk-phone" href="tel:+15550001234">+15550001234</a>' in html
    assert "<dt>Reason</dt><dd>Wants a quote</dd>" in html
    assert "<dt>Preferred window</dt><dd>after 5pm</dd>" in html
    assert f'<a href="/tickets/{ticket.pk}/">T-{ticket.pk}: Boiler quote</a>' in html
    assert '<h2 id="cb-attempts-title">Attempts (1)</h2>' in html
    assert '<span class="tk-actor">agent@alpha.test</span>' in html
    assert '<blockquote class="tk-note">Rang 6 times.</blockquote>' in html
    assert "Optional, for no answer or voicemail. Time zone: America/New_York." in html
    assert 'name="reschedule_at"' in html
    assert 'type="datetime-local"' in html
    assert "<legend>What happened?</legend>" in html
    assert 'value="pending"' not in html


def test_a_done_callback_has_no_form(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(completed_at=MONDAY_10, outcome="reached")

    html = _html(client_a.get(f"/callbacks/{callback.pk}/"))

    assert "<p>This callback is done.</p>" in html
    assert 'name="outcome"' not in html


def test_reached_completes_the_callback_and_returns_to_the_queue(at_monday_10, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()

    response = at_monday_10.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "reached", "note": "Booked."})

    assert (response.status_code, response["Location"]) == (302, "/callbacks/")
    with tenant_context(tenant_a.tenant):
        saved = Callback.objects.get(pk=callback.pk)
        assert (saved.completed_at, saved.outcome, saved.attempts) == (MONDAY_10, "reached", 1)
        assert list(CallbackAttempt.objects.values_list("actor_id", "outcome", "note")) == [
            (tenant_a.owner.pk, "reached", "Booked.")
        ]
    followed = at_monday_10.get("/callbacks/")
    assert f"Reached: the callback for T-{callback.ticket_id} is done." in _html(followed)


def test_no_answer_reschedules_in_the_business_time_zone(at_monday_10, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(due_at=MONDAY_10)

    response = at_monday_10.post(
        f"/callbacks/{callback.pk}/outcome/", {"outcome": "no_answer", "reschedule_at": "2030-11-25T14:30"}
    )

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        saved = Callback.objects.get(pk=callback.pk)
        # 14:30 in New York is 19:30 UTC.
        assert (saved.completed_at, saved.due_at, saved.attempts) == (
            None,
            datetime(2030, 11, 25, 19, 30, tzinfo=UTC),
            1,
        )
    followed = at_monday_10.get("/callbacks/")
    assert f"No answer: the callback for T-{callback.ticket_id} is due again Mon 25 Nov 14:30." in _html(followed)


def test_resolve_the_ticket_from_the_callback(at_monday_10, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(ticket=TicketFactory(status="open"))

    at_monday_10.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "voicemail", "resolve_ticket": "on"})

    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=callback.ticket_id).status == "resolved"
        assert Callback.objects.get(pk=callback.pk).completed_at == MONDAY_10


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "What happened?: This field is required."),
        ({"outcome": "busy"}, "Select a valid choice. busy is not one of the available choices."),
        (
            {"outcome": "no_answer", "reschedule_at": "2030-11-25T04:00"},  # 09:00 UTC: an hour ago
            "A callback can only be rescheduled to a time in the future.",
        ),
        ({"outcome": "no_answer", "reschedule_at": "tomorrow"}, "Call again at: Enter a valid date/time."),
        (
            {"outcome": "reached", "reschedule_at": "2030-11-26T10:00"},
            "A callback that reached the caller or a wrong number cannot be rescheduled.",
        ),
        (
            {"outcome": "voicemail", "reschedule_at": "2030-11-26T10:00", "resolve_ticket": "on"},
            "Either reschedule the callback or resolve the ticket, not both.",
        ),
    ],
)
def test_bad_outcomes_show_the_error_and_change_nothing(at_monday_10, tenant_a, data: dict, error: str) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(ticket=TicketFactory(status="open"))
    before = _snapshot(tenant_a.tenant)

    response = at_monday_10.post(f"/callbacks/{callback.pk}/outcome/", data)

    html = _html(response)
    assert response.status_code == 200
    assert '<div class="tk-error-summary" role="alert">' in html
    assert "<h3>Nothing was logged</h3>" in html
    assert error in html
    assert _snapshot(tenant_a.tenant) == before


def test_logging_on_a_done_callback_is_refused(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(completed_at=MONDAY_10, outcome="reached", attempts=1)
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "reached"})

    assert "<li>This callback is already done.</li>" in _html(response)
    assert _snapshot(tenant_a.tenant) == before


def test_an_agent_cannot_log_on_a_colleagues_callback(agent_client, tenant_a) -> None:
    colleague = MembershipFactory(tenant=tenant_a.tenant, role="agent", user__email="colleague@alpha.test").user
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory(assignee=colleague)
    before = _snapshot(tenant_a.tenant)

    response = agent_client.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "reached"})

    assert response.status_code == 200
    assert "<li>This callback is assigned to someone else; only they or an admin can log an attempt.</li>" in _html(
        response
    )
    assert _snapshot(tenant_a.tenant) == before


def test_an_agent_logging_on_nobodys_callback_takes_it(agent_client, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()

    response = agent_client.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "voicemail"})

    assert (response.status_code, response["Location"]) == (302, "/callbacks/")
    with tenant_context(tenant_a.tenant):
        assert Callback.objects.values_list("assignee_id", "attempts").get(pk=callback.pk) == (agent_a.pk, 1)


# --- Refusals ----------------------------------------------------------------------------------------------------


def test_callback_pages_are_hidden_from_other_tenants_and_strangers(
    intruder_client, anonymous_client, tenant_a
) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()
    before = _snapshot(tenant_a.tenant)

    for url in ("/callbacks/", f"/callbacks/{callback.pk}/"):
        assert_not_found(intruder_client.get(url))
        assert_sent_to_sign_in(anonymous_client.get(url), url)
    for url, data in (("/callbacks/next/", {}), (f"/callbacks/{callback.pk}/outcome/", {"outcome": "reached"})):
        assert_not_found(intruder_client.post(url, data))
        assert_sent_to_sign_in(anonymous_client.post(url, data), url)
    assert _snapshot(tenant_a.tenant) == before


def test_callback_changes_need_post_csrf_and_an_existing_callback(client_a, csrf_client, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        callback = CallbackFactory()
    before = _snapshot(tenant_a.tenant)

    assert client_a.get("/callbacks/next/").status_code == 405
    assert client_a.get(f"/callbacks/{callback.pk}/outcome/").status_code == 405
    assert csrf_client.post("/callbacks/next/").status_code == 403
    assert csrf_client.post(f"/callbacks/{callback.pk}/outcome/", {"outcome": "reached"}).status_code == 403
    assert_not_found(client_a.get("/callbacks/987654/"))
    assert_not_found(client_a.post("/callbacks/987654/outcome/", {"outcome": "reached"}))
    assert _snapshot(tenant_a.tenant) == before
