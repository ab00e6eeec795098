from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, FaqEntry
from tests.factories import (
    CallFactory,
    MembershipFactory,
    TicketFactory,
    UtteranceFactory,
    outcome,
)
from tests.tickets.views.conftest import HTMX, assert_not_found, assert_sent_to_sign_in
from tickets.models import Ticket, TicketChange, TicketNote
from tickets.services import ticket_create_from_call

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def _html(response) -> str:
    return response.content.decode()


def _snapshot(tenant) -> tuple:
    with tenant_context(tenant):
        return (
            list(Ticket.objects.order_by("pk").values()),
            TicketChange.objects.count(),
            TicketNote.objects.count(),
        )


@pytest.fixture
def phone_ticket(tenant_a) -> Ticket:
    """A ticket made from a recorded call, as the voice agent leaves it."""
    with tenant_context(tenant_a.tenant), time_machine.travel(MONDAY_10, tick=False):
        AgentConfig.objects.update(timezone="America/New_York")
        FaqEntry.objects.filter(question="What are your opening hours?").delete()
        FaqEntry.objects.create(question="What are your opening hours?", answer="9 to 5.")
        call = CallFactory(
            from_number="+15557654321",
            captured=outcome(
                fields={
                    "name": "Maria Gonzalez",
                    "callback_number": "+15552013344",
                    "email": "maria@example.com",
                    "address": "12 Elm Street",
                    "preferred_time": "after 5pm",
                    "reason": "my kitchen sink is leaking",
                },
                faq_answered=["What are your opening hours?", "Do you work weekends?"],
                unanswered_questions=["Can you fix my dishwasher too?"],
            ),
        )
        call.recording.save(f"call-{call.pk}.wav", ContentFile(b"RIFF0000WAVE"), save=True)
        UtteranceFactory(call=call, speaker="agent", text="Alpha Plumbing, how can I help?", start_s=0.4, end_s=2.0)
        UtteranceFactory(call=call, speaker="caller", text="My kitchen sink is leaking.", start_s=3.2, end_s=5.0)
        UtteranceFactory(
            call=call, speaker="agent", text="I'm sorry to hear", start_s=75.5, end_s=76.5, interrupted=True
        )
        ticket = ticket_create_from_call(call_id=call.pk)
        Ticket.objects.filter(pk=ticket.pk).update(tags=["vip"], description="Under the sink.")
    return ticket


# --- The page ----------------------------------------------------------------------------------------------------


def test_ticket_page_shows_the_ticket_and_its_call(client_a, tenant_a, phone_ticket) -> None:
    pk, call_id = phone_ticket.pk, phone_ticket.call_id

    response = client_a.get(f"/tickets/{pk}/")

    html = _html(response)
    assert response.status_code == 200
    assert f'<h1><span class="tk-number">T-{pk}</span> My kitchen sink is leaking</h1>' in html
    assert "<p>Leak: my kitchen sink is leaking.</p>" in html
    assert "<p>Under the sink.</p>" in html
    assert "<dt>Name</dt><dd>Maria Gonzalez</dd>" in html
    assert '<dt>Phone</dt><dd><a href="tel:+15552013344">+15552013344</a></dd>' in html
    assert '<a href="mailto:maria@example.com">maria@example.com</a>' in html
    assert "<dt>Address</dt><dd>12 Elm Street</dd>" in html
    assert "<dt>Preferred time</dt><dd>after 5pm</dd>" in html
    assert '<span class="tk-tag">vip</span>' in html
    # 24 business hours in New York from Monday 05:00 EST: Monday, Tuesday and Wednesday 09:00-17:00.
    assert '<time datetime="2030-11-27T22:00:00+00:00">Wed 27 Nov 2030, 17:00</time>' in html
    assert "times in America/New_York" in html
    # The call: recording, and the transcript as a conversation with jump buttons.
    assert (
        '<audio id="tk-audio" class="tk-audio" controls preload="metadata" data-player '
        'data-player-lines=".tk-transcript [data-start]" data-player-current="tk-line-playing" '
        f'src="/calls/{call_id}/recording">' in html
    )
    assert (
        '<button type="button" class="tk-seek" data-seek="75.500" aria-label="Play from 1:15" '
        'aria-controls="tk-audio">1:15</button>' in html
    )
    assert '<li class="tk-line tk-line-agent" data-start="0.400">' in html
    assert '<li class="tk-line tk-line-caller" data-start="3.200">' in html
    assert (
        '<p class="tk-line-text">I&#x27;m sorry to hear <em class="tk-interrupted">(interrupted by the caller)</em></p>'
        in html
    )
    assert f'<a href="/calls/{call_id}/">Call details</a>' in html
    # FAQ answers: linked while the entry exists.
    with tenant_context(tenant_a.tenant):
        entry_id = FaqEntry.objects.get(question="What are your opening hours?").pk
    assert f'<a href="/settings/faq/#faq-{entry_id}">FAQ entry</a>' in html
    assert 'Do you work weekends?\n          <span class="tk-muted">(FAQ entry since removed)</span>' in html
    assert 'Can you fix my dishwasher too? <span class="tk-badge">Open</span>' in html
    # The callback, with a way to the queue.
    callback_id = response.context["callback"].pk
    assert f'<a href="/callbacks/{callback_id}/">Open the callback</a>' in html
    assert "<dt>Reason</dt><dd>my kitchen sink is leaking</dd>" in html
    # Activity and the controls.
    assert "<div>Ticket created (New)</div>" in html
    assert '<span class="tk-actor">System</span>' in html
    assert '<script src="/static/js/player.js" defer></script>' in html
    assert f'hx-trigger="helpdesk-ticket-updated[detail.ticket_id=={pk}] from:body"' in html


def test_status_control_offers_only_allowed_next_statuses(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="resolved")

    html = _html(client_a.get(f"/tickets/{ticket.pk}/"))

    select = html[html.index('<select name="status"') : html.index("</select>", html.index('<select name="status"'))]
    assert [part.split('"')[1] for part in select.split("<option value=")[1:]] == ["open", "resolved", "closed"]


def test_assignee_control_lists_members_of_this_business_only(client_a, tenant_a, tenant_b, agent_a) -> None:
    MembershipFactory(tenant=tenant_b.tenant, user__email="bob@beta.test")
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(assignee=agent_a)

    html = _html(client_a.get(f"/tickets/{ticket.pk}/"))

    assert f'<option value="{agent_a.pk}" selected>agent@alpha.test</option>' in html
    assert f'<option value="{tenant_a.owner.pk}">owner@alpha.test</option>' in html
    assert "bob@beta.test" not in html


def test_a_web_ticket_has_no_call_section_and_no_callback(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(description="Walk-in.")

    html = _html(client_a.get(f"/tickets/{ticket.pk}/"))

    assert "The call</h2>" not in html
    assert '<p class="empty">No callback was asked for.</p>' in html
    assert '<p class="empty">Nothing yet.</p>' in html


@time_machine.travel(MONDAY_10, tick=False)
def test_overdue_and_paused_are_said_in_words(client_a, tenant_a) -> None:
    client_a.force_login(tenant_a.owner)
    with tenant_context(tenant_a.tenant):
        late = TicketFactory(status="open", due_at=MONDAY_10 - timedelta(hours=2))
        paused = TicketFactory(status="pending", due_at=MONDAY_10 - timedelta(hours=2), sla_paused_at=MONDAY_10)

    late_html = _html(client_a.get(f"/tickets/{late.pk}/"))
    paused_html = _html(client_a.get(f"/tickets/{paused.pk}/"))

    assert '<strong class="tk-badge tk-badge-overdue">Overdue</strong>' in late_html
    assert '<span class="tk-badge">Paused</span>' in paused_html
    assert "Overdue</strong>" not in paused_html


def test_missing_ticket_is_404(client_a) -> None:
    assert_not_found(client_a.get("/tickets/987654/"))


def test_ticket_of_tenant_b_does_not_exist_on_tenant_a(client_a, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant):
        theirs = TicketFactory(subject="Beta secret")
    with tenant_context(tenant_a.tenant):
        Ticket.objects.filter(pk=theirs.pk).delete()  # ids are per schema: make sure A has none with B's id
        TicketFactory(subject="Alpha ticket")

    response = client_a.get(f"/tickets/{theirs.pk}/")

    assert_not_found(response)
    assert b"Beta secret" not in response.content


def test_ticket_page_is_hidden_from_other_tenants_and_strangers(
    intruder_client, anonymous_client, tenant_a, agent_client
) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    assert_not_found(intruder_client.get(f"/tickets/{ticket.pk}/"))
    assert_sent_to_sign_in(anonymous_client.get(f"/tickets/{ticket.pk}/"), f"/tickets/{ticket.pk}/")
    assert agent_client.get(f"/tickets/{ticket.pk}/").status_code == 200


# --- Changing properties -----------------------------------------------------------------------------------------


def test_status_change_with_htmx_returns_the_panel_and_the_activity(agent_client, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new")

    response = agent_client.post(f"/tickets/{ticket.pk}/update/", {"status": "open"}, headers=HTMX)

    html = _html(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="ticket-properties"')
    assert f'<p class="tk-notice">Ticket T-{ticket.pk} saved.</p>' in html
    assert f'<p id="ticket-announce" hx-swap-oob="innerHTML">Ticket T-{ticket.pk} saved.</p>' in html
    assert '<dt>Status</dt><dd><span class="tk-status tk-status-open">Open</span></dd>' in html
    assert 'hx-swap-oob="true">' in html
    assert "<div>Status: New → Open</div>" in html
    assert '<span class="tk-actor">agent@alpha.test</span>' in html
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).status == "open"
        assert list(TicketChange.objects.values_list("actor_id", "field", "old_value", "new_value")) == [
            (agent_a.pk, "status", "new", "open")
        ]


@time_machine.travel(MONDAY_10, tick=False)
def test_priority_change_moves_the_due_time(client_a, tenant_a) -> None:
    client_a.force_login(tenant_a.owner)
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(priority="normal")

    html = _html(client_a.post(f"/tickets/{ticket.pk}/update/", {"priority": "urgent"}, headers=HTMX))

    assert '<time datetime="2030-11-25T12:00:00+00:00">Mon 25 Nov 2030, 12:00</time>' in html
    assert "<div>Priority: Normal → Urgent</div>" in html
    with tenant_context(tenant_a.tenant):
        saved = Ticket.objects.get(pk=ticket.pk)
        assert (saved.priority, saved.due_at) == ("urgent", datetime(2030, 11, 25, 12, 0, tzinfo=UTC))
        assert list(TicketChange.objects.values_list("field", flat=True)) == ["due_at", "priority"]


def test_tags_and_category_are_saved_normalised(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(tags=[], category="leak")

    client_a.post(f"/tickets/{ticket.pk}/update/", {"tags": " VIP, Landlord,vip "}, headers=HTMX)
    client_a.post(f"/tickets/{ticket.pk}/update/", {"category": "drains"}, headers=HTMX)

    with tenant_context(tenant_a.tenant):
        saved = Ticket.objects.get(pk=ticket.pk)
        assert (saved.tags, saved.category) == (["vip", "landlord"], "drains")
        assert list(TicketChange.objects.values_list("field", "old_value", "new_value")) == [
            ("tags", "", "vip, landlord"),
            ("category", "leak", "drains"),
        ]


def test_without_htmx_a_change_redirects_back_with_a_message(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new")

    response = client_a.post(f"/tickets/{ticket.pk}/update/", {"status": "pending"}, follow=True)

    assert response.redirect_chain == [(f"/tickets/{ticket.pk}/", 302)]
    assert f'<li class="success">Ticket T-{ticket.pk} saved.</li>' in _html(response)
    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).status == "pending"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"status": "new"}, "Select a valid choice. new is not one of the available choices."),
        ({"priority": "asap"}, "Select a valid choice. asap is not one of the available choices."),
        ({"tags": "x" * 51}, "Tags can be at most 50 characters long."),
        ({}, "Nothing to change was sent."),
    ],
)
def test_bad_property_changes_show_the_error_and_change_nothing(client_a, tenant_a, data: dict, error: str) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="closed")
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(f"/tickets/{ticket.pk}/update/", data, headers=HTMX)

    assert response.status_code == 200
    assert f'<p class="tk-error">{error}</p>' in _html(response)
    assert f'<p id="ticket-announce" hx-swap-oob="innerHTML">Not saved: {error}</p>' in _html(response)
    assert _snapshot(tenant_a.tenant) == before


def test_a_ticket_error_from_the_service_is_shown(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="open")
    before = _snapshot(tenant_a.tenant)
    too_long = {"tags": "vip, " + "x" * 51}

    htmx = client_a.post(f"/tickets/{ticket.pk}/update/", too_long, headers=HTMX)
    plain = client_a.post(f"/tickets/{ticket.pk}/update/", too_long, follow=True)

    assert '<p class="tk-error">Tags can be at most 50 characters long.</p>' in _html(htmx)
    assert '<li class="error">Tags can be at most 50 characters long.</li>' in _html(plain)
    assert _snapshot(tenant_a.tenant) == before


def test_assign_to_a_member_and_to_nobody(client_a, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    assigned = client_a.post(f"/tickets/{ticket.pk}/assign/", {"assignee": str(agent_a.pk)}, headers=HTMX)
    assert "<div>Assigned to agent@alpha.test</div>" in _html(assigned)
    client_a.post(f"/tickets/{ticket.pk}/assign/", {"assignee": ""}, headers=HTMX)

    with tenant_context(tenant_a.tenant):
        assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
        assert list(TicketChange.objects.values_list("actor_id", "old_value", "new_value")) == [
            (tenant_a.owner.pk, "", "agent@alpha.test"),
            (tenant_a.owner.pk, "agent@alpha.test", ""),
        ]


def test_assigning_someone_from_another_business_is_refused(client_a, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(f"/tickets/{ticket.pk}/assign/", {"assignee": str(tenant_b.owner.pk)}, headers=HTMX)

    assert '<p class="tk-error">Choose a member of this business.</p>' in _html(response)
    assert _snapshot(tenant_a.tenant) == before


# --- Notes and activity ------------------------------------------------------------------------------------------


def test_adding_a_note_returns_a_fresh_form_and_the_log(agent_client, tenant_a, agent_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()

    response = agent_client.post(f"/tickets/{ticket.pk}/notes/", {"body": "Landlord <b>agreed</b>."}, headers=HTMX)

    html = _html(response)
    assert html.lstrip().startswith('<form id="ticket-note-form"')
    assert '<p class="tk-notice">Note added.</p>' in html
    assert '<p id="ticket-announce" hx-swap-oob="innerHTML">Note added.</p>' in html
    assert "></textarea>" in html  # emptied for the next note
    assert '<blockquote class="tk-note">Landlord &lt;b&gt;agreed&lt;/b&gt;.</blockquote>' in html
    with tenant_context(tenant_a.tenant):
        assert list(TicketNote.objects.values_list("ticket_id", "author_id", "body")) == [
            (ticket.pk, agent_a.pk, "Landlord <b>agreed</b>.")
        ]
        assert list(TicketChange.objects.values_list("field", flat=True)) == ["note"]


def test_an_empty_note_is_refused(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()
    before = _snapshot(tenant_a.tenant)

    htmx = client_a.post(f"/tickets/{ticket.pk}/notes/", {"body": "   "}, headers=HTMX)
    plain = client_a.post(f"/tickets/{ticket.pk}/notes/", {"body": ""}, follow=True)

    assert '<p class="tk-error" id="id_body_error">A note cannot be empty.</p>' in _html(htmx)
    assert '<p id="ticket-announce" hx-swap-oob="innerHTML">Not added: A note cannot be empty.</p>' in _html(htmx)
    assert 'aria-invalid="true"' in _html(htmx)
    assert '<li class="error">A note cannot be empty.</li>' in _html(plain)
    assert _snapshot(tenant_a.tenant) == before


def test_activity_fragment_for_live_refresh(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory()
        TicketChange.objects.create(ticket=ticket, field="status", old_value="new", new_value="open")

    response = client_a.get(f"/tickets/{ticket.pk}/activity/", headers=HTMX)

    html = _html(response)
    assert html.lstrip().startswith('<section id="ticket-activity"')
    assert "<div>Status: New → Open</div>" in html


# --- Refusals common to every change -----------------------------------------------------------------------------

CHANGES = [
    ("update", {"status": "open"}),
    ("assign", {"assignee": ""}),
    ("notes", {"body": "sneaky"}),
]


@pytest.mark.parametrize(("action", "data"), CHANGES)
def test_changes_are_refused_to_other_tenants_and_strangers(
    intruder_client, anonymous_client, tenant_a, action: str, data: dict
) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new", assignee=tenant_a.owner)
    before = _snapshot(tenant_a.tenant)
    url = f"/tickets/{ticket.pk}/{action}/"

    assert_not_found(intruder_client.post(url, data, headers=HTMX))
    assert_sent_to_sign_in(anonymous_client.post(url, data), url)
    assert _snapshot(tenant_a.tenant) == before


@pytest.mark.parametrize(("action", "data"), CHANGES)
def test_changes_need_post_csrf_and_an_existing_ticket(client_a, csrf_client, tenant_a, action: str, data) -> None:
    with tenant_context(tenant_a.tenant):
        ticket = TicketFactory(status="new", assignee=tenant_a.owner)
    before = _snapshot(tenant_a.tenant)

    assert client_a.get(f"/tickets/{ticket.pk}/{action}/").status_code == 405
    assert csrf_client.post(f"/tickets/{ticket.pk}/{action}/", data).status_code == 403
    assert_not_found(client_a.post(f"/tickets/987654/{action}/", data))
    assert _snapshot(tenant_a.tenant) == before
