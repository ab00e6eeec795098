"""Settings pages: agent configuration and FAQ editor (admins and owners only)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, CategoryExample, FaqEntry
from calls.providers.emulators.openai_chat import OpenAiChatEmulator
from tenants.models import AuditEvent
from tests.factories import FaqEntryFactory, MembershipFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


VARY = {"Cookie", "HX-Request", "HX-Boosted", "HX-History-Restore-Request"}


def _vary(response) -> set[str]:
    """The request headers a response says it depends on (their order is the middleware's)."""
    return {header.strip() for header in response["Vary"].split(",")}


MY_ACTIONS = ("agent_config.updated", "faq_entry.created", "faq_entry.updated", "faq_entry.deleted")


def _html(response) -> str:
    return response.content.decode()


def _audit_rows() -> list[tuple[str, int | None, int | None, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(action__in=MY_ACTIONS).order_by("pk")
    return list(rows.values_list("action", "actor_id", "tenant_id", "data"))


def _config(tenant_fixture) -> dict[str, Any]:
    with tenant_context(tenant_fixture.tenant):
        return AgentConfig.objects.values().get()


def _faqs(tenant_fixture) -> list[tuple[int, str, str, bool]]:
    with tenant_context(tenant_fixture.tenant):
        return list(FaqEntry.objects.order_by("pk").values_list("pk", "question", "answer", "is_active"))


def _client_with_role(tenant_fixture, role: str) -> tuple[Client, Any]:
    membership = MembershipFactory(tenant=tenant_fixture.tenant, role=role)
    client = Client(HTTP_HOST=tenant_fixture.host)
    client.force_login(membership.user)
    return client, membership.user


def agent_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "greeting": "Thanks for calling Alpha Plumbing, how can I help?",
        "persona": "Calm and friendly.",
        "tts_provider": "espeak",
        "collect": ["address", "email"],
        "categories": "Leak, heating, leak, general",
        "urgent_keywords": "flood, Gas Smell",
        "vocabulary": "Springfield, Elm Street",
        "timezone": "America/Chicago",
        "sla_urgent": "1.5",
        "sla_high": "6",
        "sla_normal": "24",
        "sla_low": "48",
        "sat_closed": "on",
        "sun_closed": "on",
    }
    for day in ("mon", "tue", "wed", "thu"):
        data[f"{day}_open"], data[f"{day}_close"] = "08:00", "18:00"
    data["fri_open"], data["fri_close"] = "08:00", "14:00"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# Agent configuration page


def test_agent_page_shows_the_stored_configuration(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        AgentConfig.objects.update(
            greeting="Hello from Alpha!",
            tts_provider="piper",
            collect=["name", "callback_number", "reason", "email"],
            categories=["leak", "drains"],
            urgent_keywords=["flood"],
            timezone="Europe/Dublin",
            business_hours={"mon": ["07:30", "15:00"]},
            sla_hours={"urgent": 3, "high": 9, "normal": 20, "low": 30},
        )

    response = client_a.get("/settings/agent/")

    html = _html(response)
    assert response.status_code == 200
    assert "<h1>Agent settings</h1>" in html
    assert "\nHello from Alpha!</textarea>" in html
    assert '<option value="piper" selected>' in html
    assert 'name="categories" value="leak, drains"' in html
    assert 'name="urgent_keywords" value="flood"' in html
    assert 'name="timezone" value="Europe/Dublin"' in html
    assert '<input type="checkbox" name="collect" value="email" id="id_collect_email" checked>' in html
    assert '<input type="checkbox" name="collect" value="address" id="id_collect_address">' in html
    assert '<input type="time" name="mon_open" value="07:30" id="id_mon_open">' in html
    assert '<input type="time" name="mon_close" value="15:00" id="id_mon_close">' in html
    assert '<input type="checkbox" name="tue_closed" id="id_tue_closed" checked>' in html
    assert 'name="sla_urgent" value="3"' in html
    assert 'name="sla_low" value="30"' in html
    assert '<a href="/settings/agent/" aria-current="page">Agent</a>' in html


def test_an_admin_may_use_the_agent_page(tenant_a) -> None:
    client, _ = _client_with_role(tenant_a, "admin")

    assert client.get("/settings/agent/").status_code == 200


def test_saving_changes_exactly_the_agent_settings_and_audits(client_a, tenant_a) -> None:
    before = _config(tenant_a)

    response = client_a.post("/settings/agent/", agent_form())

    assert (response.status_code, response["Location"]) == (302, "/settings/agent/")
    after = _config(tenant_a)
    expected = before | {
        "greeting": "Thanks for calling Alpha Plumbing, how can I help?",
        "persona": "Calm and friendly.",
        "tts_provider": "espeak",
        "collect": ["name", "callback_number", "reason", "address", "email"],
        "categories": ["leak", "heating", "general"],
        "urgent_keywords": ["flood", "gas smell"],
        "vocabulary": ["Springfield", "Elm Street"],
        "timezone": "America/Chicago",
        "business_hours": {
            "mon": ["08:00", "18:00"],
            "tue": ["08:00", "18:00"],
            "wed": ["08:00", "18:00"],
            "thu": ["08:00", "18:00"],
            "fri": ["08:00", "14:00"],
        },
        "sla_hours": {"urgent": 1.5, "high": 6, "normal": 24, "low": 48},
        "updated_at": after["updated_at"],
    }
    assert after == expected
    assert _audit_rows() == [
        (
            "agent_config.updated",
            tenant_a.owner.pk,
            tenant_a.tenant.pk,
            {
                "fields": [
                    "business_hours",
                    "categories",
                    "collect",
                    "greeting",
                    "persona",
                    "sla_hours",
                    "timezone",
                    "tts_provider",
                    "urgent_keywords",
                    "vocabulary",
                ]
            },
        )
    ]
    page = client_a.get("/settings/agent/")
    assert "Agent settings saved. They apply from the next call." in _html(page)
    assert 'name="timezone" value="America/Chicago"' in _html(page)


def test_a_transfer_number_is_saved_in_e164_and_shown_back(client_a, tenant_a) -> None:
    client_a.post("/settings/agent/", agent_form())
    AuditEvent.objects.filter(action="agent_config.updated").delete()

    response = client_a.post("/settings/agent/", agent_form(transfer_number="+1 (555) 010-0199"))

    assert response.status_code == 302
    assert _config(tenant_a)["transfer_number"] == "+15550100199"
    assert [row[3] for row in _audit_rows()] == [{"fields": ["transfer_number"]}]
    page = _html(client_a.get("/settings/agent/"))
    assert 'name="transfer_number" value="+15550100199"' in page
    assert "<legend>Transfer to a person</legend>" in page
    # Emptied, callers are offered a callback again.
    client_a.post("/settings/agent/", agent_form(transfer_number=""))
    assert _config(tenant_a)["transfer_number"] == ""


def test_saving_a_single_change_audits_only_that_setting(client_a, tenant_a) -> None:
    client_a.post("/settings/agent/", agent_form())
    AuditEvent.objects.filter(action="agent_config.updated").delete()

    response = client_a.post("/settings/agent/", agent_form(timezone="Asia/Tokyo"))

    assert response.status_code == 302
    assert _config(tenant_a)["timezone"] == "Asia/Tokyo"
    assert [row[3] for row in _audit_rows()] == [{"fields": ["timezone"]}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Atlantis/Capital"}, "Unknown time zone &#x27;Atlantis/Capital&#x27;."),
        ({"wed_open": "17:00", "wed_close": "09:00"}, "Wednesday: closing time must be after opening time."),
        ({"sla_normal": "-4"}, "Must be more than 0 and at most 2000 hours."),
        ({"collect": ["name", "favourite_colour"]}, "favourite_colour is not one of the available choices."),
        ({"categories": " , "}, "Give at least one category, e.g. general."),
        ({"tts_provider": "robot"}, "robot is not one of the available choices."),
        ({"transfer_number": "555 010 0199"}, "Give the transfer number in international form, e.g. +1 555 010 0199."),
        ({"transfer_number": "+1 555 01"}, "is not a possible phone number."),
        ({"transfer_number": "+1 555 010 0199 or ask"}, "Give the transfer number in international form"),
        ({"transfer_number": "+1 555 010 01999999"}, "is not a possible phone number."),
    ],
)
def test_bad_input_shows_the_error_and_saves_nothing(client_a, tenant_a, overrides, message) -> None:
    before = _config(tenant_a)

    response = client_a.post("/settings/agent/", agent_form(**overrides))

    html = _html(response)
    assert response.status_code == 200
    assert message in html
    assert "Nothing was saved: please fix 1 problem" in html
    # What was typed is kept, so it can be corrected.
    assert "\nThanks for calling Alpha Plumbing, how can I help?</textarea>" in html
    assert _config(tenant_a) == before
    assert _audit_rows() == []


def test_agents_and_other_tenants_cannot_see_or_change_agent_settings(tenant_a, tenant_b) -> None:
    agent, _ = _client_with_role(tenant_a, "agent")
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)
    before = _config(tenant_a)

    statuses = [
        agent.get("/settings/agent/").status_code,
        agent.post("/settings/agent/", agent_form()).status_code,
        outsider.get("/settings/agent/").status_code,
        outsider.post("/settings/agent/", agent_form()).status_code,
    ]

    assert statuses == [404, 404, 404, 404]
    assert _config(tenant_a) == before
    assert _audit_rows() == []


def test_anonymous_visitors_are_sent_to_sign_in(tenant_a) -> None:
    anonymous = Client(HTTP_HOST=tenant_a.host)
    before = _config(tenant_a)

    for path in ("/settings/agent/", "/settings/faq/"):
        response = anonymous.get(path)
        assert (response.status_code, response["Location"]) == (302, f"/accounts/login/?next={path}")
    posted = anonymous.post("/settings/agent/", agent_form())

    assert (posted.status_code, posted["Location"]) == (302, "/accounts/login/?next=/settings/agent/")
    assert _config(tenant_a) == before


def test_settings_links_show_only_for_admins_and_owners(client_a, tenant_a) -> None:
    agent, _ = _client_with_role(tenant_a, "agent")
    admin, _ = _client_with_role(tenant_a, "admin")

    links = '<a href="/settings/agent/">Agent</a>'
    assert links in _html(client_a.get("/"))
    assert links in _html(admin.get("/"))
    assert links not in _html(agent.get("/"))
    assert 'href="/settings/faq/"' not in _html(agent.get("/"))


# FAQ editor


@pytest.fixture
def faq(tenant_a) -> FaqEntry:
    with tenant_context(tenant_a.tenant):
        return FaqEntryFactory(question="Do you take credit cards?", answer="Yes, all major cards.")


def test_faq_page_lists_entries_with_anchors_and_state(client_a, tenant_a, faq) -> None:
    with tenant_context(tenant_a.tenant):
        off = FaqEntryFactory(question="Do you sell gift cards?", answer="Not yet.", is_active=False)

    response = client_a.get("/settings/faq/")

    html = _html(response)
    assert response.status_code == 200
    assert f'<li id="faq-{faq.pk}" class="card faq-entry">' in html
    assert '<h3 class="faq-question">Do you take credit cards?</h3>' in html
    assert '<p class="faq-answer">Yes, all major cards.</p>' in html
    assert f'<li id="faq-{off.pk}" class="card faq-entry faq-inactive">' in html
    assert '<span class="faq-badge faq-badge-off">Inactive</span>' in html
    assert f'hx-post="/settings/faq/{off.pk}/active/"' in html
    assert '<a href="/settings/faq/" aria-current="page">FAQ</a>' in html
    assert html.count('class="card faq-entry') == len(_faqs(tenant_a))


def test_adding_an_entry_with_htmx_returns_the_refreshed_editor(client_a, tenant_a) -> None:
    before = _faqs(tenant_a)

    response = client_a.post(
        "/settings/faq/new/", {"question": " Do you work on Sundays? ", "answer": "Only for emergencies."}, **HTMX
    )

    after = _faqs(tenant_a)
    assert len(after) == len(before) + 1
    new_pk, question, answer, active = after[-1]
    assert (question, answer, active) == ("Do you work on Sundays?", "Only for emergencies.", True)
    html = _html(response)
    assert response.status_code == 200
    assert html.startswith('<div id="faq-editor">')
    assert f'<li id="faq-{new_pk}" class="card faq-entry faq-added">' in html
    # The add form comes back empty for the next entry.
    assert 'name="question" maxlength="500" required aria-describedby="faq_new_question_helptext"' in html
    assert 'id="faq_new_answer">\n</textarea>' in html
    assert 'name="question" value=' not in html
    assert '<div hx-swap-oob="innerHTML:#faq-status">Added \u201cDo you work on Sundays?\u201d.</div>' in html
    assert "<html" not in html
    assert _audit_rows() == [
        (
            "faq_entry.created",
            tenant_a.owner.pk,
            tenant_a.tenant.pk,
            {"entry_id": new_pk, "question": "Do you work on Sundays?", "is_active": True},
        )
    ]


def test_adding_an_entry_without_javascript_redirects_to_its_anchor(client_a, tenant_a) -> None:
    response = client_a.post("/settings/faq/new/", {"question": "Do you do boilers?", "answer": "Yes."})

    new_pk = _faqs(tenant_a)[-1][0]
    assert (response.status_code, response["Location"]) == (302, f"/settings/faq/#faq-{new_pk}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"question": "", "answer": "Yes."}, "The question is required."),
        ({"question": "Anything?", "answer": "  "}, "The answer is required."),
        ({"question": "do you take CREDIT cards?", "answer": "Yes."}, "There is already an entry with this question."),
    ],
)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_adding_a_bad_entry_shows_the_error_and_adds_nothing(client_a, tenant_a, faq, data, message, headers) -> None:
    before = _faqs(tenant_a)

    response = client_a.post("/settings/faq/new/", data, **headers)

    assert response.status_code == 200
    assert message in _html(response)
    assert _faqs(tenant_a) == before
    assert _audit_rows() == []


def test_inline_edit_form_then_save(client_a, tenant_a, faq) -> None:
    form = client_a.get(f"/settings/faq/{faq.pk}/edit/", **HTMX)

    form_html = _html(form)
    assert form_html.startswith(f'<li id="faq-{faq.pk}" class="card faq-entry faq-editing">')
    assert 'value="Do you take credit cards?"' in form_html
    assert ">Yes, all major cards.</textarea>" in form_html

    saved = client_a.post(
        f"/settings/faq/{faq.pk}/edit/",
        {"question": "Do you take credit cards?", "answer": "Yes: Visa, Mastercard and Amex."},
        **HTMX,
    )

    html = _html(saved)
    assert saved.status_code == 200
    assert html.startswith(f'<li id="faq-{faq.pk}" class="card faq-entry">')
    assert '<p class="faq-answer">Yes: Visa, Mastercard and Amex.</p>' in html
    assert "Saved \u201cDo you take credit cards?\u201d." in html
    assert (faq.pk, "Do you take credit cards?", "Yes: Visa, Mastercard and Amex.", True) in _faqs(tenant_a)
    assert [row[3] for row in _audit_rows()] == [
        {"entry_id": faq.pk, "question": "Do you take credit cards?", "fields": ["answer"]}
    ]


def test_cancel_returns_the_entry_and_the_full_edit_page_works_without_javascript(client_a, faq) -> None:
    cancel = client_a.get(f"/settings/faq/{faq.pk}/", **HTMX)
    page = client_a.get(f"/settings/faq/{faq.pk}/edit/")
    no_js_cancel = client_a.get(f"/settings/faq/{faq.pk}/")

    assert _html(cancel).startswith(f'<li id="faq-{faq.pk}" class="card faq-entry">')
    assert "<h1>Edit FAQ entry</h1>" in _html(page)
    assert (no_js_cancel.status_code, no_js_cancel["Location"]) == (302, f"/settings/faq/#faq-{faq.pk}")


def test_entry_views_that_answer_htmx_differently_vary_on_its_headers(client_a, faq) -> None:
    responses = [
        client_a.get(f"/settings/faq/{faq.pk}/", **HTMX),
        client_a.get(f"/settings/faq/{faq.pk}/"),
        client_a.get(f"/settings/faq/{faq.pk}/edit/", **HTMX),
        client_a.get(f"/settings/faq/{faq.pk}/edit/"),
    ]

    assert [(response.status_code, _vary(response)) for response in responses] == [
        (200, VARY),
        (302, VARY),
        (200, VARY),
        (200, VARY),
    ]
    # A boosted request swaps in a whole page, so it gets the page.
    boosted = client_a.get(f"/settings/faq/{faq.pk}/edit/", **HTMX, HTTP_HX_BOOSTED="true")
    assert "<h1>Edit FAQ entry</h1>" in _html(boosted)


def test_another_tenants_entry_is_404_and_unchanged(client_a, tenant_a, tenant_b) -> None:
    mine = max([row[0] for row in _faqs(tenant_a)], default=0)
    with tenant_context(tenant_b.tenant):
        theirs = FaqEntryFactory(question="Their question?", answer="Their answer.")
        while theirs.pk <= mine:  # an id tenant A does not have, so only the schema can answer
            theirs = FaqEntryFactory(question="Their question?", answer="Their answer.")
    before = _faqs(tenant_b)

    assert [
        client_a.get(f"/settings/faq/{theirs.pk}/", **HTMX).status_code,
        client_a.post(f"/settings/faq/{theirs.pk}/edit/", {"question": "Mine?", "answer": "Mine."}).status_code,
        client_a.post(f"/settings/faq/{theirs.pk}/delete/").status_code,
    ] == [404, 404, 404]
    assert _faqs(tenant_b) == before


def test_a_bad_edit_shows_the_error_and_changes_nothing(client_a, tenant_a, faq) -> None:
    before = _faqs(tenant_a)

    response = client_a.post(f"/settings/faq/{faq.pk}/edit/", {"question": "", "answer": "Changed."}, **HTMX)

    html = _html(response)
    assert response.status_code == 200
    assert "The question is required." in html
    assert 'aria-invalid="true"' in html
    assert _faqs(tenant_a) == before
    assert _audit_rows() == []


def test_deactivate_and_activate(client_a, tenant_a, faq) -> None:
    off = client_a.post(f"/settings/faq/{faq.pk}/active/", {"is_active": "0"}, **HTMX)

    assert '<span class="faq-badge faq-badge-off">Inactive</span>' in _html(off)
    assert ">Activate<" in _html(off)
    assert (faq.pk, faq.question, faq.answer, False) in _faqs(tenant_a)

    on = client_a.post(f"/settings/faq/{faq.pk}/active/", {"is_active": "1"})

    assert (on.status_code, on["Location"]) == (302, f"/settings/faq/#faq-{faq.pk}")
    assert (faq.pk, faq.question, faq.answer, True) in _faqs(tenant_a)
    assert [row[3]["fields"] for row in _audit_rows()] == [["is_active"], ["is_active"]]


def test_a_bad_active_value_is_refused(client_a, tenant_a, faq) -> None:
    before = _faqs(tenant_a)

    response = client_a.post(f"/settings/faq/{faq.pk}/active/", {"is_active": "maybe"}, **HTMX)

    assert response.status_code == 400
    assert _faqs(tenant_a) == before


def test_delete_asks_for_confirmation_then_deletes(client_a, tenant_a, faq) -> None:
    confirm = client_a.get(f"/settings/faq/{faq.pk}/delete/")

    assert "<h1>Delete this FAQ entry?</h1>" in _html(confirm)
    assert faq.pk in [row[0] for row in _faqs(tenant_a)]

    response = client_a.post(f"/settings/faq/{faq.pk}/delete/", **HTMX)

    assert response.status_code == 200
    assert _html(response).strip() == (
        '<div hx-swap-oob="innerHTML:#faq-status">Deleted \u201cDo you take credit cards?\u201d.</div>'
    )
    assert faq.pk not in [row[0] for row in _faqs(tenant_a)]
    assert _audit_rows() == [
        (
            "faq_entry.deleted",
            tenant_a.owner.pk,
            tenant_a.tenant.pk,
            {"entry_id": faq.pk, "question": "Do you take credit cards?"},
        )
    ]


def test_delete_without_javascript_redirects_to_the_list(client_a, tenant_a, faq) -> None:
    response = client_a.post(f"/settings/faq/{faq.pk}/delete/")

    assert (response.status_code, response["Location"]) == (302, "/settings/faq/")
    assert faq.pk not in [row[0] for row in _faqs(tenant_a)]


def test_unknown_entries_are_404(client_a, tenant_a, faq) -> None:
    missing = faq.pk + 10_000
    before = _faqs(tenant_a)

    assert [
        client_a.get(f"/settings/faq/{missing}/edit/").status_code,
        client_a.post(f"/settings/faq/{missing}/edit/", {"question": "Q?", "answer": "A."}).status_code,
        client_a.post(f"/settings/faq/{missing}/active/", {"is_active": "0"}).status_code,
        client_a.post(f"/settings/faq/{missing}/delete/").status_code,
    ] == [404, 404, 404, 404]
    assert _faqs(tenant_a) == before


def test_agents_and_other_tenants_cannot_touch_the_faq(tenant_a, tenant_b, faq) -> None:
    agent, _ = _client_with_role(tenant_a, "agent")
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)
    anonymous = Client(HTTP_HOST=tenant_a.host)
    before = _faqs(tenant_a)
    requests = [
        ("get", "/settings/faq/", {}),
        ("post", "/settings/faq/new/", {"question": "Sneaky?", "answer": "Yes."}),
        ("get", f"/settings/faq/{faq.pk}/edit/", {}),
        ("post", f"/settings/faq/{faq.pk}/edit/", {"question": "Hacked?", "answer": "Yes."}),
        ("post", f"/settings/faq/{faq.pk}/active/", {"is_active": "0"}),
        ("post", f"/settings/faq/{faq.pk}/delete/", {}),
        ("post", "/settings/faq/try/", {"question": "when are you open"}),
    ]

    for method, path, data in requests:
        assert getattr(agent, method)(path, data).status_code == 404, path
        assert getattr(outsider, method)(path, data).status_code == 404, path
        response = getattr(anonymous, method)(path, data)
        assert (response.status_code, response["Location"]) == (302, f"/accounts/login/?next={path}"), path

    assert _faqs(tenant_a) == before
    assert _audit_rows() == []


# Try a question (real MiniLM retrieval)


@pytest.fixture
def tryable_faq(tenant_a) -> dict[str, int]:
    with tenant_context(tenant_a.tenant):
        FaqEntry.objects.all().delete()
        entries = (
            ("What are your opening hours?", "We are open Monday to Friday from 8 am to 6 pm."),
            ("Which areas do you cover?", "We cover Springfield and every town within 25 miles of it."),
            ("Do you offer emergency service?", "Yes, a plumber is on call around the clock for emergencies."),
            ("Which payment methods do you accept?", "Cash, all major credit cards and bank transfer."),
        )
        return {q: FaqEntryFactory(question=q, answer=a).pk for q, a in entries}


def test_trying_a_paraphrase_shows_the_winning_entry_and_top_three(client_a, tryable_faq) -> None:
    response = client_a.post("/settings/faq/try/", {"question": "when are you open"}, **HTMX)

    html = _html(response)
    hours = tryable_faq["What are your opening hours?"]
    assert response.status_code == 200
    assert "<html" not in html
    assert f'Answered by <a href="#faq-{hours}">\u201cWhat are your opening hours?\u201d</a>' in html
    assert "above the threshold of 0.52" in html
    assert '<th scope="col">Score</th>' in html
    rows = re.findall(
        r'<td>(\d)</td>\s*<td><a href="#faq-(\d+)">[^<]+</a></td>\s*<td>([\d.-]+)</td>\s*<td>(\w+)</td>', html
    )
    assert [(rank, int(pk)) for rank, pk, _, _ in rows][:1] == [("1", hours)]
    assert [rank for rank, _, _, _ in rows] == ["1", "2", "3"]
    assert {int(pk) for _, pk, _, _ in rows} <= set(tryable_faq.values())
    scores = [float(score) for _, _, score, _ in rows]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0.52 > scores[1]
    assert [verdict for _, _, _, verdict in rows] == ["Yes", "No", "No"]


def test_trying_an_unrelated_question_is_below_the_threshold(client_a, tryable_faq) -> None:
    response = client_a.post("/settings/faq/try/", {"question": "Can you recommend a good pizza place nearby?"}, **HTMX)

    html = _html(response)
    assert "No entry is close enough" in html
    assert "below the threshold of 0.52" in html
    assert "<td>Yes</td>" not in html
    assert html.count("<td>No</td>") == 3


def test_trying_an_empty_question_says_what_to_do(client_a, tryable_faq) -> None:
    response = client_a.post("/settings/faq/try/", {"question": "  "}, **HTMX)

    assert response.status_code == 200
    assert '<p class="settings-error" id="faq-try-error">Type a question to try.</p>' in _html(response)


def test_trying_without_javascript_renders_the_whole_page(client_a, tryable_faq) -> None:
    response = client_a.post("/settings/faq/try/", {"question": "when are you open"})

    html = _html(response)
    assert "<h1>Frequently asked questions</h1>" in html
    assert 'value="when are you open"' in html
    assert "Answered by" in html


# --- category examples learned from the desk ---------------------------------------------------------------------


def _examples(tenant_fixture) -> list[tuple[str, str]]:
    with tenant_context(tenant_fixture.tenant):
        return list(CategoryExample.objects.order_by("pk").values_list("category", "text"))


def test_learned_examples_are_listed_and_an_admin_removes_one(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        kept = CategoryExample.objects.create(category="leak", text="water under the sink")
        gone = CategoryExample.objects.create(category="leak", text="the tap drips all night")

    page = _html(client_a.get("/settings/agent/"))
    assert "\u201cwater under the sink\u201d" in page
    assert f'action="/settings/agent/category-examples/{gone.pk}/delete/"' in page

    response = client_a.post(f"/settings/agent/category-examples/{gone.pk}/delete/")

    assert (response.status_code, response["Location"]) == (302, "/settings/agent/")
    assert _examples(tenant_a) == [(kept.category, kept.text)]


def test_agents_other_tenants_and_missing_examples_get_404_and_change_nothing(client_a, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        example = CategoryExample.objects.create(category="leak", text="water under the sink")
    agent, _ = _client_with_role(tenant_a, "agent")
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)
    path = f"/settings/agent/category-examples/{example.pk}/delete/"

    statuses = [
        agent.post(path).status_code,
        outsider.post(path).status_code,
        client_a.post(f"/settings/agent/category-examples/{example.pk + 1000}/delete/").status_code,
        client_a.get(path).status_code,
    ]

    assert statuses == [404, 404, 404, 405]
    assert _examples(tenant_a) == [("leak", "water under the sink")]


# The receptionist and its model server


def test_an_admin_chooses_an_ollama_receptionist(client_a, tenant_a) -> None:
    before = _config(tenant_a)
    data = agent_form(
        greeting=before["greeting"],
        dialogue_provider="ollama",
        dialogue_model=" llama3.1 ",
        dialogue_base_url="http://gpu.local:11434/v1",
    )

    response = client_a.post("/settings/agent/", data)

    assert (response.status_code, response["Location"]) == (302, "/settings/agent/")
    after = _config(tenant_a)
    assert (after["dialogue_provider"], after["dialogue_options"]) == (
        "ollama",
        {"model": "llama3.1", "base_url": "http://gpu.local:11434/v1"},
    )
    assert _audit_rows() == [
        (
            "agent_config.updated",
            tenant_a.owner.pk,
            tenant_a.tenant.pk,
            {
                "fields": [
                    "business_hours",
                    "categories",
                    "collect",
                    "dialogue_options",
                    "dialogue_provider",
                    "persona",
                    "sla_hours",
                    "timezone",
                    "tts_provider",
                    "urgent_keywords",
                    "vocabulary",
                ]
            },
        )
    ]
    page = _html(client_a.get("/settings/agent/"))
    assert 'name="dialogue_provider" value="ollama" id="id_dialogue_provider_2" checked' in page
    assert 'name="dialogue_model" value="llama3.1"' in page


def test_an_admin_chooses_an_openai_model_by_the_operators_key_name(client_a, tenant_a, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-on-the-page")
    data = agent_form(dialogue_provider="openai", dialogue_model="gpt-4o-mini", dialogue_key_ref="OPENAI_API_KEY")

    client_a.post("/settings/agent/", data)

    after = _config(tenant_a)
    assert (after["dialogue_provider"], after["dialogue_options"]) == (
        "openai",
        {"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY"},
    )
    page = _html(client_a.get("/settings/agent/"))
    assert '<option value="OPENAI_API_KEY" selected>OPENAI_API_KEY</option>' in page
    assert "sk-never-on-the-page" not in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"dialogue_provider": "ollama", "dialogue_model": ""},
            "Give the model&#x27;s name, e.g. gpt-4o-mini or llama3.1.",
        ),
        (
            {"dialogue_provider": "ollama", "dialogue_model": "llama3.1", "dialogue_base_url": "javascript:alert(1)"},
            "The server URL must start with http:// or https:// and name a host.",
        ),
        (
            {"dialogue_provider": "openai", "dialogue_model": "gpt-4o", "dialogue_key_ref": "SECRET_KEY"},
            "Select a valid choice. SECRET_KEY is not one of the available choices.",
        ),
        ({"dialogue_provider": "llama-cpp"}, "Select a valid choice. llama-cpp is not one of the available choices."),
    ],
)
def test_a_bad_receptionist_choice_saves_nothing(client_a, tenant_a, overrides, message) -> None:
    before = _config(tenant_a)

    response = client_a.post("/settings/agent/", agent_form(**overrides))

    assert response.status_code == 200
    assert message in _html(response)
    assert "Nothing was saved: please fix 1 problem" in _html(response)
    assert _config(tenant_a) == before
    assert _audit_rows() == []


@pytest.fixture
def model_server():
    def no_chat(request):
        raise AssertionError("listing models must not chat")

    emulator = OpenAiChatEmulator(no_chat, api_key="", models=("mistral", "llama3.1")).start()
    yield emulator
    emulator.stop()


def test_list_models_shows_the_servers_models_and_keeps_what_was_typed(client_a, tenant_a, model_server) -> None:
    before = _config(tenant_a)
    data = agent_form(greeting="Typed, not saved.", dialogue_provider="ollama", dialogue_base_url=model_server.base_url)

    response = client_a.post("/settings/agent/models/", data)

    html = _html(response)
    assert response.status_code == 200
    assert "The server offers 2 models; pick one in" in html
    assert re.findall(r'<datalist id="dialogue-models">(.*?)</datalist>', html) == [
        '<option value="llama3.1"><option value="mistral">'
    ]
    assert f'name="dialogue_base_url" value="{model_server.base_url}"' in html
    assert ">\nTyped, not saved.</textarea>" in html
    assert "Nothing was saved: please fix" not in html
    assert model_server.model_lists == 1
    assert _config(tenant_a) == before
    assert _audit_rows() == []


def test_list_models_says_when_the_server_is_down(client_a, tenant_a, model_server) -> None:
    url = model_server.base_url
    model_server.stop()
    before = _config(tenant_a)

    response = client_a.post("/settings/agent/models/", agent_form(dialogue_provider="ollama", dialogue_base_url=url))

    assert response.status_code == 200
    assert f"Could not reach a model server at {url}. Is it running?" in _html(response)
    assert _config(tenant_a) == before


def test_list_models_says_when_the_key_is_refused(client_a, tenant_a, monkeypatch) -> None:
    emulator = OpenAiChatEmulator(lambda request: None, api_key="sk-right", models=("gpt-4o-mini",)).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url)
    before = _config(tenant_a)
    try:
        response = client_a.post(
            "/settings/agent/models/", agent_form(dialogue_provider="openai", dialogue_key_ref="OPENAI_API_KEY")
        )
    finally:
        emulator.stop()

    assert response.status_code == 200
    assert f"The server at {emulator.base_url} refused the key." in _html(response)
    assert "sk-wrong" not in _html(response)
    assert _config(tenant_a) == before


def test_agents_other_tenants_and_visitors_cannot_list_models(tenant_a, tenant_b, model_server) -> None:
    agent, _ = _client_with_role(tenant_a, "agent")
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)
    anonymous = Client(HTTP_HOST=tenant_a.host)
    data = agent_form(dialogue_provider="ollama", dialogue_base_url=model_server.base_url)
    before = _config(tenant_a)

    statuses = [client.post("/settings/agent/models/", data).status_code for client in (agent, outsider)]
    posted = anonymous.post("/settings/agent/models/", data)
    choice = agent_form(dialogue_provider="ollama", dialogue_model="llama3.1")
    saves = [client.post("/settings/agent/", choice).status_code for client in (agent, outsider)]

    assert statuses == [404, 404]
    assert saves == [404, 404]
    assert (posted.status_code, posted["Location"]) == (302, "/accounts/login/?next=/settings/agent/models/")
    assert model_server.model_lists == 0
    assert _config(tenant_a) == before
    assert _audit_rows() == []


def test_list_models_is_post_only(client_a) -> None:
    assert client_a.get("/settings/agent/models/").status_code == 405


def test_an_admin_turns_transcript_redaction_on_and_off(client_a, tenant_a) -> None:
    client_a.post("/settings/agent/", agent_form())
    AuditEvent.objects.filter(action="agent_config.updated").delete()

    page = _html(client_a.get("/settings/agent/"))
    assert 'name="redact_transcripts"' in page
    assert re.search(r'<input type="checkbox" name="redact_transcripts"[^>]*>', page).group(0).count("checked") == 0

    response = client_a.post("/settings/agent/", agent_form(redact_transcripts="on"))
    assert response.status_code == 302
    assert _config(tenant_a)["redact_transcripts"] is True
    page = _html(client_a.get("/settings/agent/"))
    assert "checked" in re.search(r'<input type="checkbox" name="redact_transcripts"[^>]*>', page).group(0)

    client_a.post("/settings/agent/", agent_form())
    assert _config(tenant_a)["redact_transcripts"] is False
    assert [row[3] for row in _audit_rows()] == [{"fields": ["redact_transcripts"]}, {"fields": ["redact_transcripts"]}]
