"""The demo data builder: a month of real-looking activity, made through the services, once."""

from __future__ import annotations

import io
import itertools
import wave
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Max, Min
from django_tenants.utils import tenant_context

from billing.models import UsageRecord
from calls.models import Call, FaqEntry, TurnLatency, Utterance
from tenants.demo import DemoResult, demo_data_build
from tenants.management.commands.seed_demo import DEMO_AGENT
from tenants.models import Membership, Tenant
from tenants.services import phone_number_register, tenant_create
from tests.factories import UserFactory
from tickets.models import Callback, CallbackAttempt, Ticket, TicketChange, TicketNote, UnansweredQuestion

NOW = datetime(2025, 6, 18, 15, 30, tzinfo=UTC)


def _business(slug: str, number: str = "+15550100100") -> tuple[Tenant, object]:
    owner = UserFactory(email=f"owner@{slug}.test")
    tenant = tenant_create(name="Acme Plumbing & Heating", slug=slug, owner=owner, agent_defaults=DEMO_AGENT)
    phone_number_register(tenant=tenant, number=number)
    return tenant, owner


@pytest.fixture
def seeded(tenant_a) -> tuple[Tenant, object, DemoResult]:
    tenant, owner = _business("acme")
    return tenant, owner, demo_data_build(tenant=tenant, admin=owner, now=NOW)


def test_a_month_of_calls_tickets_and_callbacks(seeded) -> None:
    tenant, _, result = seeded

    assert result == DemoResult(created=True, calls=40, tickets=44, callbacks=33, unanswered_questions=5, recordings=5)
    with tenant_context(tenant):
        assert Counter(Call.objects.values_list("status", flat=True)) == {"completed": 36, "abandoned": 4}
        assert Counter(Ticket.objects.values_list("source", flat=True)) == {"phone": 40, "web": 4}
        span = Call.objects.aggregate(first=Min("started_at"), last=Max("started_at"))
        assert NOW - timedelta(days=30) <= span["first"] < NOW - timedelta(days=25)
        assert NOW - timedelta(hours=3) <= span["last"] < NOW
        for call in Call.objects.select_related("ticket"):
            assert call.started_at < call.answered_at < call.ended_at <= call.ticket.created_at
        assert UsageRecord.objects.filter(tenant=tenant).count() == 40


def test_every_call_has_a_plausible_transcript_latencies_and_some_recordings(seeded) -> None:
    tenant, _, _ = seeded
    with tenant_context(tenant):
        for call in Call.objects.prefetch_related("utterances", "turn_latencies"):
            lines = list(call.utterances.all())
            assert lines[0].speaker == "agent"
            assert lines[0].text == DEMO_AGENT["greeting"]
            assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(lines))
            replies = sum(1 for a, b in itertools.pairwise(lines) if (a.speaker, b.speaker) == ("caller", "agent"))
            latencies = list(call.turn_latencies.all())
            assert [t.turn_index for t in latencies] == list(range(replies))
            for turn in latencies:
                assert 180 <= turn.transcript_ms < turn.decision_ms < turn.first_audio_ms < turn.first_frame_ms < 2000
            if call.status == "completed":
                assert lines[-1].text.endswith("Goodbye!")
            if call.captured.get("confirmed") and call.captured["fields"]:
                texts = " ".join(u.text for u in lines)
                assert "Let me read that back: " + call.captured["fields"]["name"] in texts
        assert Utterance.objects.filter(speaker="caller", confidence__isnull=True).count() == 0
        assert TurnLatency.objects.count() > 200
        # Recordings: stereo phone audio (caller left, agent right) as long as the transcript.
        recorded = list(Call.objects.exclude(recording="").prefetch_related("utterances"))
        assert len(recorded) == 5
        for call in recorded:
            with call.recording.open("rb") as handle, wave.open(io.BytesIO(handle.read())) as wav:
                assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
                seconds = wav.getnframes() / 8000
            last = max(u.end_s for u in call.utterances.all())
            assert last < seconds <= last + 0.6


def test_the_team_work_has_a_history_through_the_services(seeded) -> None:
    tenant, owner, _ = seeded
    with tenant_context(tenant):
        statuses = Counter(Ticket.objects.values_list("status", flat=True))
        assert set(statuses) == {"new", "open", "pending", "resolved", "closed"}
        fields = set(TicketChange.objects.values_list("field", flat=True))
        assert {"created", "status", "assignee", "note", "callback_outcome", "faq_added", "faq_dismissed"} <= fields
        assert TicketChange.objects.filter(field="created").count() == 44
        assert TicketNote.objects.count() == TicketChange.objects.filter(field="note").count() > 10
        assert CallbackAttempt.objects.count() > 15
        for callback in Callback.objects.exclude(completed_at=None):
            assert callback.attempt_log.count() == callback.attempts >= 1
        assert Callback.objects.filter(completed_at=None).count() > 3
        # As of the build's "now": the queue has overdue callbacks and some still to come, and so do the tickets.
        queue_due = {c.due_at < NOW for c in Callback.objects.filter(completed_at=None)}
        assert queue_due == {True, False}
        open_due = {t.due_at < NOW for t in Ticket.objects.filter(status__in=["new", "open"])}
        assert open_due == {True, False}
        assert TicketChange.objects.aggregate(last=Max("created_at"))["last"] < NOW
        assert Counter(UnansweredQuestion.objects.values_list("status", flat=True)) == {
            "converted": 2,
            "dismissed": 1,
            "open": 2,
        }
        assert FaqEntry.objects.count() == len(DEMO_AGENT["faqs"]) + 2
        claimed = Callback.objects.exclude(assignee=None)
        assert claimed.count() == 1
    agents = Membership.objects.filter(tenant=tenant, role="agent").values_list("user__email", flat=True)
    assert sorted(agents) == ["priya.shah@acme.localhost", "sam.rivera@acme.localhost"]
    with tenant_context(tenant):
        assert claimed.get().assignee.email == "sam.rivera@acme.localhost"
        actors = set(TicketChange.objects.exclude(actor=None).values_list("actor__email", flat=True))
    assert actors == {owner.email, "priya.shah@acme.localhost", "sam.rivera@acme.localhost"}


def test_a_second_build_adds_nothing(seeded) -> None:
    tenant, owner, _first = seeded
    with tenant_context(tenant):
        changes = TicketChange.objects.count()

    again = demo_data_build(tenant=tenant, admin=owner, now=NOW + timedelta(days=1))

    assert again == DemoResult(created=False, calls=40, tickets=44, callbacks=33, unanswered_questions=5, recordings=5)
    with tenant_context(tenant):
        assert TicketChange.objects.count() == changes
    assert Membership.objects.filter(tenant=tenant).count() == 3


def test_the_same_seed_and_time_give_the_same_month(tenant_a) -> None:
    def story(slug: str, number: str) -> list[tuple]:
        tenant, owner = _business(slug, number)
        demo_data_build(tenant=tenant, admin=owner, now=NOW, recordings=0)
        with tenant_context(tenant):
            return list(
                Ticket.objects.order_by("created_at").values_list(
                    "created_at", "subject", "caller_name", "status", "priority", "assignee__email"
                )
            )

    first, second = story("acme", "+15550100100"), story("acmetwo", "+15550100101")

    assert len(first) == 44
    # The owners differ by name only; everything else is the same story.
    assert [row[:5] for row in first] == [row[:5] for row in second]
