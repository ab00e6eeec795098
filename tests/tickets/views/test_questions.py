from datetime import UTC, datetime

import pytest
from django_tenants.utils import tenant_context

from calls.models import FaqEntry
from tests.factories import CallFactory, TicketFactory, UnansweredQuestionFactory
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


def test_add_to_faq_with_htmx_removes_the_row_and_announces_it(agent_client, tenant_a, agent_a, question) -> None:
    response = agent_client.post(
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
            (agent_a.pk, "faq_added", "Do you service gas boilers?")
        ]


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
    assert '<p class="tk-error" role="alert">Both the question and its answer are needed.</p>' in html
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
