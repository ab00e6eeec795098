from datetime import UTC, datetime

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import FaqEntry
from tenants.models import AuditEvent, User
from tests.factories import CallFactory, MembershipFactory, TicketFactory, UnansweredQuestionFactory
from tests.tickets.views.conftest import HTMX, assert_not_found, assert_sent_to_sign_in
from tickets.models import TicketChange, UnansweredQuestion


def _html(response) -> str:
    return response.content.decode()


def _snapshot(tenant) -> tuple:
    with tenant_context(tenant):
        return (
            list(UnansweredQuestion.objects.order_by("pk").values()),
            list(FaqEntry.objects.order_by("pk").values()),
            TicketChange.objects.count(),
        )


@pytest.fixture
def question(tenant_a) -> UnansweredQuestion:
    with tenant_context(tenant_a.tenant):
        call = CallFactory(from_number="+15551239876")
        return UnansweredQuestionFactory(question="Do you service boilers?", call=call, ticket=TicketFactory(call=call))


def test_list_shows_open_questions_newest_first_with_where_they_came_from(client_a, tenant_a, question) -> None:
    with tenant_context(tenant_a.tenant):
        newer = UnansweredQuestionFactory(question="Do you sell kettles?", ticket=None)
        UnansweredQuestionFactory(question="Handled already?", status="dismissed")
        UnansweredQuestion.objects.filter(pk=question.pk).update(created_at=datetime(2030, 11, 25, 10, tzinfo=UTC))
        UnansweredQuestion.objects.filter(pk=newer.pk).update(created_at=datetime(2030, 11, 26, 10, tzinfo=UTC))

    response = client_a.get("/questions/")

    html = _html(response)
    assert response.status_code == 200
    assert [q.pk for q, _ in response.context["rows"]] == [newer.pk, question.pk]
    assert '<h2 id="question-count" class="tk-count">2 open questions</h2>' in html
    assert "Handled already?" not in html
    assert f'<li id="question-{question.pk}" class="card tk-question">' in html
    assert f'· ticket <a href="/tickets/{question.ticket_id}/">T-{question.ticket_id}</a>' in html
    assert f'· call from +15551239876 (<a href="/calls/{question.call_id}/">call</a>)' in html
    # The question is editable before it goes into the FAQ.
    assert f'name="q{question.pk}-question"' in html
    assert ">\nDo you service boilers?</textarea>" in html
    assert f'<label for="id_q{question.pk}-answer">Answer</label>' in html
    assert f'hx-post="/questions/{question.pk}/dismiss/" hx-target="#question-{question.pk}"' in html
    assert '<a href="/questions/" aria-current="page">Questions</a>' in html


def test_empty_list(client_a) -> None:
    html = _html(client_a.get("/questions/"))

    assert '<p class="empty">No open questions. The FAQ is keeping up.</p>' in html
    assert "0 open questions" in html


@pytest.fixture
def admin_a(tenant_a) -> User:
    return MembershipFactory(tenant=tenant_a.tenant, role="admin", user__email="admin@alpha.test").user


@pytest.fixture
def admin_client(tenant_a, admin_a) -> Client:
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(admin_a)
    return client


def test_add_to_faq_with_htmx_removes_the_row_and_announces_it(admin_client, tenant_a, admin_a, question) -> None:
    response = admin_client.post(
        f"/questions/{question.pk}/faq/",
        {f"q{question.pk}-question": "Do you service gas boilers?", f"q{question.pk}-answer": "Yes, all makes."},
        headers=HTMX,
    )

    html = _html(response)
    assert response.status_code == 200
    assert f'id="question-{question.pk}"' not in html  # nothing left to put in the row's place
    assert '<p id="question-status" hx-swap-oob="innerHTML">Added to the FAQ: Do you service gas boilers?</p>' in html
    assert '<h2 id="question-count" hx-swap-oob="innerHTML">0 open questions</h2>' in html
    with tenant_context(tenant_a.tenant):
        entry = FaqEntry.objects.get(question="Do you service gas boilers?")
        saved = UnansweredQuestion.objects.get(pk=question.pk)
        assert (entry.answer, saved.status, saved.faq_entry_id) == ("Yes, all makes.", "converted", entry.pk)
        assert list(TicketChange.objects.values_list("actor_id", "field", "new_value")) == [
            (admin_a.pk, "faq_added", "Do you service gas boilers?")
        ]
    # Made through the FAQ's own service: its audit event is there.
    assert list(AuditEvent.objects.filter(action="faq_entry.created").values_list("actor_id", "data__question")) == [
        (admin_a.pk, "Do you service gas boilers?")
    ]


def test_agents_see_the_questions_but_not_the_add_to_faq_form(agent_client, question) -> None:
    response = agent_client.get("/questions/")

    html = _html(response)
    assert response.status_code == 200
    assert [q.pk for q, _ in response.context["rows"]] == [question.pk]
    assert f'action="/questions/{question.pk}/faq/"' not in html
    assert "Add to FAQ</button>" not in html
    assert '<p class="tk-muted">An admin can add this question to the FAQ.</p>' in html
    assert f'hx-post="/questions/{question.pk}/dismiss/"' in html


def test_admins_see_the_add_to_faq_form(admin_client, question) -> None:
    html = _html(admin_client.get("/questions/"))

    assert f'hx-post="/questions/{question.pk}/faq/"' in html
    assert "An admin can add this question to the FAQ." not in html


def test_agents_cannot_add_to_the_faq(agent_client, tenant_a, question) -> None:
    before = _snapshot(tenant_a.tenant)
    audit_before = AuditEvent.objects.count()
    data = {f"q{question.pk}-question": "Do you service boilers?", f"q{question.pk}-answer": "Yes."}

    assert_not_found(agent_client.post(f"/questions/{question.pk}/faq/", data, headers=HTMX))
    assert_not_found(agent_client.post(f"/questions/{question.pk}/faq/", data))

    assert _snapshot(tenant_a.tenant) == before
    assert AuditEvent.objects.count() == audit_before


def test_agents_can_dismiss(agent_client, tenant_a, agent_a, question) -> None:
    response = agent_client.post(f"/questions/{question.pk}/dismiss/", headers=HTMX)

    assert response.status_code == 200
    with tenant_context(tenant_a.tenant):
        assert UnansweredQuestion.objects.get(pk=question.pk).status == "dismissed"
        assert list(TicketChange.objects.values_list("actor_id", "field")) == [(agent_a.pk, "faq_dismissed")]


def test_a_question_already_in_the_faq_is_refused_next_to_the_field(client_a, tenant_a, question) -> None:
    with tenant_context(tenant_a.tenant):
        FaqEntry.objects.get_or_create(question="Do you service boilers?", defaults={"answer": "Yes."})
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(
        f"/questions/{question.pk}/faq/",
        {f"q{question.pk}-question": "do you  service BOILERS?", f"q{question.pk}-answer": "Yes, gas ones."},
        headers=HTMX,
    )

    html = _html(response)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<li id="question-{question.pk}" class="card tk-question">')
    assert (
        f'<p class="tk-error" id="id_q{question.pk}-question_error" role="alert">'
        "There is already an entry with this question.</p>"
    ) in html
    assert f'aria-invalid="true" aria-describedby="id_q{question.pk}-question_error"' in html
    assert ">\nYes, gas ones.</textarea>" in html  # what was typed is kept
    assert _snapshot(tenant_a.tenant) == before


def test_a_question_already_in_the_faq_without_htmx_redirects_with_the_reason(client_a, tenant_a, question) -> None:
    with tenant_context(tenant_a.tenant):
        FaqEntry.objects.get_or_create(question="Do you service boilers?", defaults={"answer": "Yes."})
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(
        f"/questions/{question.pk}/faq/",
        {f"q{question.pk}-question": "Do you service boilers?", f"q{question.pk}-answer": "Yes."},
        follow=True,
    )

    assert response.redirect_chain == [("/questions/", 302)]
    assert '<li class="error">There is already an entry with this question.</li>' in _html(response)
    assert _snapshot(tenant_a.tenant) == before


def test_the_list_pages_by_25(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        questions = [UnansweredQuestionFactory(ticket=None) for _ in range(27)]

    first = client_a.get("/questions/")
    second = client_a.get("/questions/?page=2")

    newest_first = [q.pk for q in reversed(questions)]
    assert [q.pk for q, _ in first.context["rows"]] == newest_first[:25]
    assert [q.pk for q, _ in second.context["rows"]] == newest_first[25:]
    assert '<h2 id="question-count" class="tk-count">27 open questions</h2>' in _html(first)
    assert "<span>Page 1 of 2</span>" in _html(first)
    assert '<a href="?page=2" rel="next">Next</a>' in _html(first)
    assert '<a href="?page=1" rel="prev">Previous</a>' in _html(second)


def test_the_list_reads_a_fixed_number_of_queries(client_a, tenant_a, django_assert_max_num_queries) -> None:
    with tenant_context(tenant_a.tenant):
        for _ in range(30):
            call = CallFactory()
            UnansweredQuestionFactory(call=call, ticket=TicketFactory(call=call))
    client_a.get("/questions/")  # warm the session and the site caches

    with django_assert_max_num_queries(12):
        response = client_a.get("/questions/")

    assert len(response.context["rows"]) == 25


def test_add_to_faq_without_htmx_redirects_with_a_message(client_a, tenant_a, question) -> None:
    response = client_a.post(
        f"/questions/{question.pk}/faq/",
        {f"q{question.pk}-question": "Do you service boilers?", f"q{question.pk}-answer": "Yes."},
        follow=True,
    )

    assert response.redirect_chain == [("/questions/", 302)]
    assert '<li class="success">Added to the FAQ: Do you service boilers?</li>' in _html(response)
    with tenant_context(tenant_a.tenant):
        assert UnansweredQuestion.objects.get(pk=question.pk).status == "converted"


def test_add_to_faq_without_an_answer_keeps_the_row_with_the_error(client_a, tenant_a, question) -> None:
    before = _snapshot(tenant_a.tenant)

    response = client_a.post(
        f"/questions/{question.pk}/faq/",
        {f"q{question.pk}-question": "Do you service boilers?", f"q{question.pk}-answer": "  "},
        headers=HTMX,
    )

    html = _html(response)
    assert html.lstrip().startswith(f'<li id="question-{question.pk}" class="card tk-question">')
    assert (f'<p class="tk-error" id="id_q{question.pk}-answer_error" role="alert">The answer is required.</p>') in html
    assert 'class="tk-error" role="alert"' not in html  # no summary for field errors
    assert ">\nDo you service boilers?</textarea>" in html
    assert _snapshot(tenant_a.tenant) == before


@pytest.mark.parametrize("action", ["faq", "dismiss"])
def test_a_question_handled_meanwhile_shows_why(client_a, tenant_a, question, action: str) -> None:
    with tenant_context(tenant_a.tenant):
        UnansweredQuestion.objects.filter(pk=question.pk).update(status="dismissed")
    before = _snapshot(tenant_a.tenant)

    data = {f"q{question.pk}-question": "Q?", f"q{question.pk}-answer": "A."}
    response = client_a.post(f"/questions/{question.pk}/{action}/", data, headers=HTMX)

    assert '<p class="tk-error" role="alert">This question has already been handled.</p>' in _html(response)
    assert _snapshot(tenant_a.tenant) == before


def test_dismiss_with_htmx_removes_the_row(client_a, tenant_a, question) -> None:
    with tenant_context(tenant_a.tenant):
        UnansweredQuestionFactory(question="Another one?")
        entries = FaqEntry.objects.count()

    response = client_a.post(f"/questions/{question.pk}/dismiss/", headers=HTMX)

    html = _html(response)
    assert '<p id="question-status" hx-swap-oob="innerHTML">Dismissed: Do you service boilers?</p>' in html
    assert '<h2 id="question-count" hx-swap-oob="innerHTML">1 open question</h2>' in html
    with tenant_context(tenant_a.tenant):
        assert UnansweredQuestion.objects.get(pk=question.pk).status == "dismissed"
        assert FaqEntry.objects.count() == entries
        assert list(TicketChange.objects.values_list("actor_id", "field")) == [(tenant_a.owner.pk, "faq_dismissed")]


def test_dismiss_without_htmx_redirects_with_a_message(client_a, tenant_a, question) -> None:
    response = client_a.post(f"/questions/{question.pk}/dismiss/", follow=True)

    assert response.redirect_chain == [("/questions/", 302)]
    assert '<li class="success">Dismissed: Do you service boilers?</li>' in _html(response)


def test_questions_are_hidden_from_other_tenants_and_strangers(
    intruder_client, anonymous_client, tenant_a, question
) -> None:
    before = _snapshot(tenant_a.tenant)
    data = {f"q{question.pk}-question": "Q?", f"q{question.pk}-answer": "A."}

    assert_not_found(intruder_client.get("/questions/"))
    assert_sent_to_sign_in(anonymous_client.get("/questions/"), "/questions/")
    for action in ("faq", "dismiss"):
        url = f"/questions/{question.pk}/{action}/"
        assert_not_found(intruder_client.post(url, data, headers=HTMX))
        assert_sent_to_sign_in(anonymous_client.post(url, data), url)
    assert _snapshot(tenant_a.tenant) == before


def test_question_changes_need_post_csrf_and_an_existing_question(client_a, csrf_client, tenant_a, question) -> None:
    before = _snapshot(tenant_a.tenant)
    data = {f"q{question.pk}-question": "Q?", f"q{question.pk}-answer": "A."}

    for action in ("faq", "dismiss"):
        assert client_a.get(f"/questions/{question.pk}/{action}/").status_code == 405
        assert csrf_client.post(f"/questions/{question.pk}/{action}/", data).status_code == 403
        assert_not_found(client_a.post(f"/questions/987654/{action}/", data))
    assert _snapshot(tenant_a.tenant) == before
