"""The demo data builder: a month of real-looking activity, made through the services, once."""

from __future__ import annotations

import io
import itertools
import wave
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db.models import DateTimeField, Max, Min
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import UsageRecord
from calls.models import Call, FaqEntry, TurnLatency, Utterance
from tenants.models import Membership, Tenant
from tenants.services import phone_number_register, tenant_create
from tests.factories import UserFactory
from tickets.models import Callback, CallbackAttempt, Ticket, TicketChange, TicketNote, UnansweredQuestion
from tickets.services import ticket_sla_due
from voicedesk.demo.build import DemoResult, demo_data_build
from voicedesk.management.commands.seed_demo import DEMO_AGENT

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
        # Logging an attempt claims the callback: each one tried is the callback of whoever tried it.
        for callback in Callback.objects.exclude(attempts=0).prefetch_related("attempt_log"):
            assert {attempt.actor_id for attempt in callback.attempt_log.all()} == {callback.assignee_id}
        # Sam is working the queue right now: his next callback is one of his.
        assert Callback.objects.filter(completed_at=None, assignee__email="sam.rivera@acme.localhost").exists()
    agents = Membership.objects.filter(tenant=tenant, role="agent").values_list("user__email", flat=True)
    assert sorted(agents) == ["priya.shah@acme.localhost", "sam.rivera@acme.localhost"]
    with tenant_context(tenant):
        actors = set(TicketChange.objects.exclude(actor=None).values_list("actor__email", flat=True))
    assert actors == {owner.email, "priya.shah@acme.localhost", "sam.rivera@acme.localhost"}


def test_the_story_times_are_written_afterwards(tenant_a) -> None:
    """The services run at the real time; every timestamp is then moved into the story."""
    tenant, owner = _business("acme")
    before = timezone.now()

    demo_data_build(tenant=tenant, admin=owner, now=NOW, recordings=0)

    with tenant_context(tenant):
        # Nothing is left at the real time of the build (or counted from it): the story ends at NOW.
        for model in [*apps.get_app_config("calls").get_models(), *apps.get_app_config("tickets").get_models()]:
            for column in model._meta.concrete_fields:
                if isinstance(column, DateTimeField):
                    late = model.objects.filter(**{f"{column.name}__gte": before})
                    assert list(late.values_list("pk", flat=True)) == [], (model.__name__, column.name)
        assert TicketChange.objects.aggregate(last=Max("created_at"))["last"] < NOW
        # Due times in the audit rows too.
        for change in TicketChange.objects.filter(field__endswith="due_at"):
            for value in (change.old_value, change.new_value):
                assert value == "" or datetime.fromisoformat(value) < before, (change.field, value)
    assert not UsageRecord.objects.filter(tenant=tenant, created_at__gte=NOW).exists()


def test_due_times_are_counted_from_the_story(seeded) -> None:
    tenant, _, _ = seeded
    with tenant_context(tenant):
        tickets = Ticket.objects.select_related("call")
        assert len(tickets) == 44
        for ticket in tickets:
            start = ticket.call.started_at if ticket.call else ticket.created_at
            assert ticket.due_at == ticket_sla_due(priority=ticket.priority, start=start), ticket.pk
            assert ticket.created_at < ticket.due_at
        rescheduled = 0
        for callback in Callback.objects.select_related("ticket"):
            moves = TicketChange.objects.filter(ticket=callback.ticket, field="callback_due_at")
            moves = list(moves.order_by("created_at", "id"))
            due = callback.created_at
            if moves:
                rescheduled += 1
                due = datetime.fromisoformat(moves[0].old_value)
            assert callback.created_at <= due
            for move in moves:
                # Each reschedule starts from the due time before it and lies after the attempt that set it.
                assert datetime.fromisoformat(move.old_value) == due
                due = datetime.fromisoformat(move.new_value)
                assert due > move.created_at
            if moves:
                assert callback.due_at == due
        assert rescheduled > 5


def test_the_story_must_end_by_the_real_now(tenant_a) -> None:
    tenant, owner = _business("acme")

    with pytest.raises(ValueError, match="must not be in the future"):
        demo_data_build(tenant=tenant, admin=owner, now=timezone.now() + timedelta(hours=1))

    with tenant_context(tenant):
        assert (Call.objects.count(), Ticket.objects.count()) == (0, 0)


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
