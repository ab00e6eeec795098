import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from calls.models import Call
from tests.calls.factories_history import call_at
from tests.factories import (
    CallbackFactory,
    CallFactory,
    MembershipFactory,
    TicketFactory,
    TurnLatencyFactory,
    UnansweredQuestionFactory,
)
from tickets.models import Callback, FaqAnswer, Ticket
from voicedesk.insights.views import percent_label

# Sunday 10 March 2030, 15:00 UTC.
NOW = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)
HX = {"HX-Request": "true"}


VARY = {"Cookie", "HX-Request", "HX-Boosted", "HX-History-Restore-Request"}


def _vary(response) -> set[str]:
    """The request headers a response says it depends on (their order is the middleware's)."""
    return {header.strip() for header in response["Vary"].split(",")}


def _chart_data(response) -> dict:
    match = re.search(r'<script id="analytics-data" type="application/json">(.*?)</script>', response.content.decode())
    assert match is not None
    return json.loads(match.group(1))


def _squeeze(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def client_now(tenant_a) -> Iterator[Client]:
    """Tenant A's owner, signed in at ``NOW`` (a session from the real today would have expired by then)."""
    with time_machine.travel(NOW, tick=False):
        client = Client(HTTP_HOST=tenant_a.host)
        client.force_login(tenant_a.owner)
        yield client


@pytest.fixture
def busy_week(tenant_a) -> None:
    """Saturday 9 March: 4 completed calls (one never answered) and 1 abandoned; 20 days earlier 1 more.

    Plus three tickets (two resolved), two callbacks, three questions and five timed turns, all on Saturday.
    """
    with tenant_context(tenant_a.tenant), time_machine.travel(NOW - timedelta(days=1), tick=False):
        saturday = datetime(2030, 3, 9, 10, 0, tzinfo=UTC)
        for minute, talk in enumerate([60, 120, 180]):
            call_at(saturday + timedelta(minutes=minute), talk_s=talk)
        call_at(saturday + timedelta(hours=2), talk_s=None, status=Call.Status.ABANDONED)
        call_at(NOW - timedelta(days=20), talk_s=600)
        leak = TicketFactory(category="leak", priority="urgent")
        TicketFactory(category="leak")
        billing = TicketFactory(category="billing")
        Ticket.objects.filter(pk=leak.pk).update(status="resolved", resolved_at=NOW - timedelta(hours=20))
        Ticket.objects.filter(pk=billing.pk).update(status="resolved", resolved_at=NOW - timedelta(hours=18))
        CallbackFactory(ticket=leak, attempts=2, outcome=Callback.Outcome.REACHED)
        CallbackFactory(ticket=billing, attempts=1, outcome=Callback.Outcome.NO_ANSWER)
        FaqAnswer.objects.create(ticket=leak, question="What are your opening hours?")
        UnansweredQuestionFactory(ticket=leak, question="Do you fix boilers?")
        UnansweredQuestionFactory(ticket=billing, question="do you fix boilers?")
        call = CallFactory()
        for index, ms in enumerate([100.0, 200.0, 300.0, 400.0, 500.0]):
            TurnLatencyFactory(call=call, turn_index=index, first_frame_ms=ms)


def test_analytics_shows_the_figures_of_the_default_30_days(client_now, busy_week) -> None:
    response = client_now.get("/analytics/")
    body = response.content.decode()

    assert response.status_code == 200
    assert response.context["period"].days == 30
    assert '<a href="/analytics/?days=30"' in body
    assert re.search(r'hx-get="/analytics/\?days=30"[^>]*\s+aria-current="page">Last 30 days</a>', body)
    assert "9 Feb 2030 to 10 Mar 2030 (UTC)." in body
    stats = _text(body.split('aria-label="Key figures">', 1)[1].split("</ul>", 1)[0])
    # Calls: 4 on Saturday (3 answered, 1 abandoned), the latencies' call, 1 twenty days ago.
    # Handle time: (60 + 120 + 180 + 600) / 4 s. Resolution: 4 h and 6 h.
    assert stats == (
        "6 calls 4 min 0 s average handle time 5 h 0 min median time to resolution "
        "50% callbacks reached 33% questions answered from the FAQ"
    )
    charts = _chart_data(response)
    calls = charts["callsPerDay"]
    assert len(calls["labels"]) == 30
    assert (calls["labels"][-2], calls["completed"][-2], calls["abandoned"][-2]) == ("2030-03-09", 4, 1)
    assert calls["handleSeconds"][-2] == 120.0
    assert (calls["labels"][9], calls["completed"][9], calls["handleSeconds"][9]) == ("2030-02-18", 1, 600.0)
    assert sum(calls["completed"]) == 5
    assert charts["ticketsByCategory"] == {"labels": ["leak", "billing"], "counts": [2, 1]}
    assert charts["ticketsByPriority"] == {"labels": ["Urgent", "High", "Normal", "Low"], "counts": [1, 0, 2, 0]}
    assert charts["latency"]["labels"] == [
        "Pause seen", "Transcript", "Turn ended", "Decision", "First audio", "First frame"
    ]  # fmt: skip
    assert charts["latency"]["p50"][5] == 300.0
    assert charts["latency"]["p95"][5] == 480.0
    assert "<dt>Success rate</dt><dd>50% (1 reached of 2 tried)</dd>" in body
    assert "<dt>Attempts</dt><dd>3 (1.5 per callback tried)</dd>" in body
    assert "<dt>Answered</dt><dd>33% (1 of 3 questions)</dd>" in body
    assert (
        "<dt>Median</dt><dd>5 h 0 min</dd><dt>Average</dt><dd>5 h 0 min</dd><dt>Tickets resolved</dt><dd>2</dd>"
        in _squeeze(body)
    )
    top = _text(body.split("Top unanswered questions", 1)[1].split("</table>", 1)[0])
    assert re.search(r"Question Times asked Last asked (do|Do) you fix boilers\? 2 2030-03-09 15:00$", top), top


def test_the_numbers_of_every_chart_are_in_tables(client_now, busy_week) -> None:
    body = client_now.get("/analytics/?days=7").content.decode()

    day_table = _text(body.split("<summary>Calls per day as a table</summary>", 1)[1].split("</table>", 1)[0])
    assert day_table.startswith("Day Completed Abandoned All calls Average handle time Mon 4 Mar 0 0 0 —")
    assert day_table.endswith("Sat 9 Mar 4 1 5 2 min 0 s Sun 10 Mar 0 0 0 —")
    latency_table = _text(body.split("<summary>Latency per stage as a table</summary>", 1)[1].split("</table>", 1)[0])
    assert latency_table == (
        "Stage p50 (ms) p95 (ms) Pause seen 150 150 Transcript 420 420 Turn ended 430 430 Decision 450 450 "
        "First audio 560 560 First frame 300 480"
    )
    category_table = _text(
        body.split("<summary>Tickets by category as a table</summary>", 1)[1].split("</table>", 1)[0]
    )
    assert category_table == "Category Tickets leak 2 billing 1"
    priority_table = _text(
        body.split("<summary>Tickets by priority as a table</summary>", 1)[1].split("</table>", 1)[0]
    )
    assert priority_table == "Priority Tickets Urgent 1 High 0 Normal 2 Low 0"
    assert body.count('<canvas data-chart="') == 4
    assert "vendor/chart-4.6.1.umd.min.js" in body
    assert "js/analytics.js" in body


def test_the_period_selector_narrows_the_figures(client_now, busy_week) -> None:
    week = client_now.get("/analytics/", {"days": "7"})
    quarter = client_now.get("/analytics/", {"days": "90"})

    assert (week.context["calls_total"], week.context["calls_completed"], week.context["calls_abandoned"]) == (5, 4, 1)
    assert len(_chart_data(week)["callsPerDay"]["labels"]) == 7
    assert week.context["summary"]["handle_time"] == {"average_seconds": 120.0, "calls": 3}
    assert (quarter.context["calls_total"], len(_chart_data(quarter)["callsPerDay"]["labels"])) == (6, 90)
    assert quarter.context["period"].first_day == date(2029, 12, 11)


def test_test_calls_are_left_out_until_the_page_is_asked_to_include_them(client_now, busy_week, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call_at(datetime(2030, 3, 9, 12, 0, tzinfo=UTC), talk_s=30, carrier="browser", is_test=True)

    default = client_now.get("/analytics/", {"days": "7"})
    including = client_now.get("/analytics/", {"days": "7", "test_calls": "1"})

    assert (default.context["calls_total"], including.context["calls_total"]) == (5, 6)
    assert "Test calls are left out." in _text(default.content.decode())
    assert 'href="/analytics/?days=7&amp;test_calls=1"' in default.content.decode()
    body = including.content.decode()
    assert "Including test calls." in _text(body)
    # The period links keep the choice.
    assert 'href="/analytics/?days=30&amp;test_calls=1"' in body


def test_htmx_gets_the_body_fragment_and_an_announcement(client_now, busy_week) -> None:
    response = client_now.get("/analytics/", {"days": "7"}, headers=HX)
    body = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<div id="analytics-body"')
    assert '<span hx-swap-oob="innerHTML:#analytics-announce">Showing the last 7 days.</span>' in body
    assert _chart_data(response)["callsPerDay"]["labels"][0] == "2030-03-04"
    assert _vary(response) == VARY


def test_the_full_page_varies_on_the_htmx_headers_too(client_now, busy_week) -> None:
    page = client_now.get("/analytics/", {"days": "7"})
    restored = client_now.get("/analytics/", {"days": "7"}, headers=HX | {"HX-History-Restore-Request": "true"})

    assert _vary(page) == VARY
    assert "<html" in page.content.decode()
    assert "<html" in restored.content.decode()
    assert "hx-swap-oob" not in restored.content.decode()


@pytest.mark.parametrize("days", ["14", "abc", "-7"])
def test_an_unknown_period_is_400_and_shows_no_figures(client_a, days: str) -> None:
    response = client_a.get("/analytics/", {"days": days})

    assert response.status_code == 400
    assert "Choose one of the periods above: 7, 30 or 90 days." in response.content.decode()
    assert "summary" not in response.context
    assert b"analytics-data" not in response.content


def test_empty_analytics_say_so(client_a) -> None:
    body = client_a.get("/analytics/").content.decode()

    for message in [
        "No calls in this period.",
        "No tickets in this period.",
        "No tickets were resolved in this period.",
        "No callbacks were requested in this period.",
        "Callers asked no questions in this period.",
        "No open unanswered questions in this period.",
        "No answered turns in this period.",
    ]:
        assert message in body, message
    assert "<canvas" not in body


def test_analytics_is_a_fixed_number_of_queries(client_a, busy_week) -> None:
    with CaptureQueriesContext(connection) as captured:
        assert client_a.get("/analytics/").status_code == 200

    # Host, session, user, membership, time zone, then ten aggregates (and django-tenants' two schema switches),
    # the subscription (billing banner).
    assert len(captured) == 18


def test_agents_may_see_analytics(tenant_a) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(agent)

    response = client.get("/analytics/")

    assert response.status_code == 200
    assert '<a href="/analytics/" aria-current="page">Analytics</a>' in response.content.decode()


def test_strangers_get_404_and_anonymous_visitors_sign_in(tenant_a, tenant_b) -> None:
    stranger = Client(HTTP_HOST=tenant_a.host)
    stranger.force_login(tenant_b.owner)

    assert stranger.get("/analytics/").status_code == 404
    anonymous = Client(HTTP_HOST=tenant_a.host).get("/analytics/")
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/accounts/login/?next=/analytics/")


def test_figures_are_the_tenants_own(tenant_b, client_now, busy_week) -> None:
    with tenant_context(tenant_b.tenant):
        for _ in range(3):
            call_at(NOW - timedelta(hours=1))

    assert client_now.get("/analytics/", {"days": "7"}).context["calls_total"] == 5


def test_percent_label() -> None:
    assert (percent_label(None), percent_label(2 / 3), percent_label(1.0)) == ("—", "67%", "100%")
