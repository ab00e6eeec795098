"""Plays the demo month back in time order through the services, then moves its times into the story."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.apps import apps
from django.core.files.base import ContentFile
from django.db import models
from django.db.models import Case, F, Value, When
from django.utils import timezone

from billing.models import UsageRecord
from billing.services import usage_record_call
from calls.dialogue.readback import read_back_number
from calls.dialogue.summary import summary
from calls.models import AgentConfig, Call, FaqEntry, TurnLatency, Utterance
from calls.pipeline.protocols import CallOutcome
from calls.selectors import business_profile_current
from tenants.models import AuditEvent, PhoneNumber, Tenant, User
from tickets.models import Callback, Ticket, UnansweredQuestion
from tickets.services import (
    callback_next,
    callback_outcome_log,
    ticket_assign,
    ticket_create,
    ticket_create_from_call,
    ticket_note_add,
    ticket_update,
    unanswered_question_dismiss,
    unanswered_question_to_faq,
)
from voicedesk.demo.recordings import ESPEAK_RATE, espeak, stereo_wav
from voicedesk.demo.story import (
    AGENT_VOICE,
    AREA_CODES,
    BOOKINGS,
    CALL_KINDS,
    CALLER_NAMES,
    CALLER_VOICES,
    DEMO_DAYS,
    HUMAN_REPLY,
    HUMAN_TOPICS,
    PREFERRED_TIMES,
    PROBLEMS,
    QUESTIONS,
    UNANSWERED,
    WEB_TICKETS,
    Caller,
    CallPlan,
    Line,
    Moment,
    Problem,
    agent_line,
    empathy,
)


class DemoBuilder:
    """Plans the month, then plays it back in time order through the services."""

    def __init__(self, *, tenant: Tenant, staff: list[User], now: datetime, rng: random.Random) -> None:
        self.tenant = tenant
        self.owner, *self.agents = staff
        self.staff = staff
        self.now = now
        self.rng = rng
        config = AgentConfig.objects.first()
        self.business = config.business_name if config else tenant.name
        self.zone = business_profile_current().zone
        self.greeting = (config.greeting if config else "") or f"Thanks for calling {self.business}. How can I help?"
        self.faqs = {entry.question: entry.answer for entry in FaqEntry.objects.filter(is_active=True)}
        phone = PhoneNumber.objects.filter(tenant=tenant).order_by("created_at").first()
        self.dialled = phone.e164 if phone else "+15550100100"
        self.calls: list[CallPlan] = []
        self._events: list[tuple[datetime, int, Callable[[], object]]] = []
        self._sequence = 0
        self._questions_seen = 0
        self._moments: list[Moment] = []
        self._at = now  # the story's time of the step running

    # -- the plan ----------------------------------------------------------------
    def plan(self, *, recordings: int) -> None:
        rng = self.rng
        kinds = [kind for kind, count in CALL_KINDS for _ in range(count)]
        rng.shuffle(kinds)
        # The newest call is a request, so the dashboard opens on a fresh ticket with a callback.
        newest_request = max(i for i, kind in enumerate(kinds) if kind == "request")
        kinds[newest_request], kinds[-1] = kinds[-1], kinds[newest_request]
        times = self._call_times(len(kinds))
        callers = self._callers(len(kinds))
        problems = list(PROBLEMS)
        rng.shuffle(problems)
        humans = list(HUMAN_TOPICS)
        for index, (kind, started_at, caller) in enumerate(zip(kinds, times, callers, strict=True)):
            problem: Problem | None = None
            if kind in ("request", "question", "hangup_late"):
                problem = problems[index % len(problems)]
            elif kind == "human":
                problem = humans.pop(0)
            plan = CallPlan(index=index, kind=kind, started_at=started_at, caller=caller, problem=problem)
            plan.caller_voice = CALLER_VOICES[index % len(CALLER_VOICES)]
            self._script(plan)
            self.calls.append(plan)
        recorded = [plan for plan in reversed(self.calls) if plan.kind == "request"][:recordings]
        for plan in recorded:
            plan.recorded = True
        self._synthesize([line for plan in recorded for line in plan.lines], recorded)
        for plan in self.calls:
            for line in plan.lines:
                if line.audio is None:
                    # Spoken at about 2.6 words a second, plus the breath around it.
                    line.seconds = round(len(line.text.split()) / 2.6 + 0.4, 2)

    def _call_times(self, count: int) -> list[datetime]:
        """Spread over the month, mostly in working hours; the newest are minutes and hours old."""
        rng, now = self.rng, self.now
        hours = list(range(7, 21))
        weights = [2, 5, 7, 7, 6, 4, 4, 5, 6, 5, 4, 2, 2, 1]
        times = []
        for slot in range(2, count):
            # Denser towards today: the business has been using VoiceDesk more and more.
            days_ago = (DEMO_DAYS - 1) * ((slot + rng.random()) / count) ** 1.4
            moment = (now - timedelta(days=days_ago)).replace(
                hour=rng.choices(hours, weights)[0], minute=rng.randrange(60), second=rng.randrange(60), microsecond=0
            )
            times.append(min(max(moment, now - timedelta(days=DEMO_DAYS - 0.5)), now - timedelta(hours=6)))
        # So the dashboard opens on something that just happened.
        times.append(now - timedelta(hours=2, minutes=rng.randrange(180)))
        times.append(now - timedelta(minutes=15 + rng.randrange(60)))
        return sorted(times)

    def _callers(self, count: int) -> list[Caller]:
        rng = self.rng
        names = list(CALLER_NAMES)
        rng.shuffle(names)
        people = [
            Caller(name=name, number=f"+1{rng.choice(AREA_CODES)}55501{index:02d}") for index, name in enumerate(names)
        ]
        # A few customers call more than once in a month.
        callers = people[: count - 6] + rng.sample(people[:12], 6) if count > len(people) else people[:count]
        rng.shuffle(callers)
        return callers

    def _script(self, plan: CallPlan) -> None:
        """The conversation of one call, as the receptionist policy runs it, and what it captured."""
        rng, caller, problem = self.rng, plan.caller, plan.problem
        agent = agent_line
        lines = [agent(self.greeting)]
        fields: dict[str, str] = {}
        if plan.kind == "hangup_early":
            lines.append(self._caller_line("Oh, sorry, I think I dialled the wrong number.", 0.74))
            plan.lines = lines
            plan.outcome = CallOutcome(completed=False)
            return
        if plan.kind == "faq":
            questions = rng.sample(sorted(self.faqs), min(2, len(self.faqs)))
            plan.faq_questions = questions
            for opener, question in zip(("Hi, ", "Yes, "), questions, strict=False):
                lines.append(self._caller_line(f"{opener}{question[0].lower()}{question[1:]}"))
                lines.append(agent(f"{self.faqs[question]} Is there anything else I can help with?"))
            lines.append(self._caller_line("No, that's everything. Thanks, bye."))
            lines.append(agent(f"Thanks for calling {self.business}. Have a great day. Goodbye!"))
            plan.lines = lines
            plan.outcome = CallOutcome(
                category="general", faq_answered=questions, confirmed=True, completed=True, resolved=True
            )
            return
        assert problem is not None
        fields["reason"] = problem.reason
        if plan.kind == "human":
            lines.append(self._caller_line(f"Hi, could I speak to someone from the team? It's about {problem.reason}."))
            lines.append(agent(f"{HUMAN_REPLY} Could I have your name, please?"))
        else:
            lines.append(self._caller_line(f"Hi, {problem.reason}."))
            lines.append(agent(f"{empathy(problem.priority)} Could I have your name, please?"))
        if plan.kind == "hangup_late":
            plan.lines = lines
            plan.outcome = CallOutcome(
                fields=fields,
                reason=problem.reason,
                category=problem.category,
                priority=problem.priority,  # type: ignore[arg-type]
                callback_requested=True,
                completed=False,
            )
            return
        lines.append(self._caller_line(rng.choice(("It's {}.", "My name is {}.", "{}.")).format(caller.name)))
        if rng.random() < 0.6:
            # The policy asks for most names to be spelled: a turn is cheaper than a wrong name.
            lines.append(agent("Thanks. Could you spell your name for me, letter by letter?"))
            spelled = ", ".join("-".join(part.upper().replace("'", "")) for part in caller.name.split())
            lines.append(self._caller_line(f"{spelled}."))
        fields["name"] = caller.name
        number = caller.number
        if rng.random() < 0.4:
            lines.append(
                agent(f"Thanks, {caller.first_name}. Shall we call you back on the number you're calling from?")
            )
            lines.append(self._caller_line("Yes, that's fine."))
        else:
            if rng.random() < 0.25:
                number = f"+1{rng.choice(AREA_CODES)}55501{rng.randrange(50, 90):02d}"
            lines.append(agent(f"Thanks, {caller.first_name}. What's the best number to reach you on?"))
            digits = number[2:]
            lines.append(self._caller_line(f"It's {digits[:3]}-{digits[3:6]}-{digits[6:]}."))
        fields["callback_number"] = number
        if rng.random() < 0.4:
            preferred = rng.choice(PREFERRED_TIMES)
            lines.append(agent("What day and time would suit you best?"))
            lines.append(self._caller_line(f"{preferred[0].upper()}{preferred[1:]}, if possible."))
            fields["preferred_time"] = preferred
        parts = [caller.name, read_back_number(number)]
        if "preferred_time" in fields:
            parts.append(fields["preferred_time"])
        lines.append(agent(f"Let me read that back: {'; '.join(parts)}. Is that right?"))
        lines.append(self._caller_line(rng.choice(("Yes, that's right.", "Yep, that's correct.", "Yes."))))
        lines.append(agent("Is there anything else I can help with?"))
        unanswered: list[str] = []
        if plan.kind == "question":
            plan.question = QUESTIONS[self._questions_seen % len(QUESTIONS)]
            self._questions_seen += 1
            lines.append(self._caller_line(f"Actually, yes. {plan.question[0]}"))
            lines.append(agent(f"{UNANSWERED} Is there anything else I can help with?"))
            unanswered.append(plan.question[0])
        lines.append(self._caller_line(rng.choice(("No, that's all. Thanks.", "No, that's it, thank you."))))
        lines.append(
            agent(f"Thanks for calling {self.business}. Someone from the team will be in touch soon. Goodbye!")
        )
        plan.lines = lines
        plan.outcome = CallOutcome(
            fields=fields,
            reason=problem.reason,
            category=problem.category,
            priority=problem.priority,  # type: ignore[arg-type]
            unanswered_questions=unanswered,
            wants_human=plan.kind == "human",
            callback_requested=True,
            confirmed=True,
            completed=True,
        )

    def _caller_line(self, text: str, confidence: float | None = None) -> Line:
        return Line("caller", text, round(confidence or self.rng.uniform(0.82, 0.97), 3))

    def _synthesize(self, lines: list[Line], plans: list[CallPlan]) -> None:
        if not lines:
            return
        voice_of = {id(line): plan.caller_voice for plan in plans for line in plan.lines}

        def speak(line: Line) -> None:
            voice = AGENT_VOICE if line.speaker == "agent" else voice_of[id(line)]
            line.audio = espeak(line.text, voice)
            line.seconds = round(len(line.audio) / ESPEAK_RATE, 3)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(speak, lines))

    # -- playing it back -----------------------------------------------------------
    def at(self, when: datetime, step: Callable[[], object]) -> None:
        """Schedule ``step`` for ``when``; steps after now never happen."""
        if when >= self.now - timedelta(minutes=5):
            return
        self._sequence += 1
        heapq.heappush(self._events, (when, self._sequence, step))

    def run(self) -> None:
        for plan in self.calls:
            self.at(plan.started_at, partial(self._call_record, plan))
        for spec in WEB_TICKETS:
            when = self.now - timedelta(days=spec["days_ago"])
            self.at(when, partial(self._web_ticket, spec, when))
        while self._events:
            when, _, step = heapq.heappop(self._events)
            self._play(when, step)
        self._stamps_backdate(self._moments)
        # Someone is working the queue right now: after the backdating, so the queue is in the story's order.
        self._play(self.now - timedelta(minutes=3), partial(callback_next, actor=self.agents[0]))
        self._stamps_backdate(self._moments[-1:])

    def _play(self, when: datetime, step: Callable[[], object]) -> None:
        """Run ``step`` now, noting the real time it took so its stamps can become ``when``."""
        self._at = when
        started = timezone.now()
        step()
        self._moments.append(Moment(at=when, real_start=started, real_end=timezone.now()))

    # -- backdating ------------------------------------------------------------------
    def _stamped(self) -> list[models.QuerySet[Any]]:
        """Every table the build writes to: the tenant's calls and help desk, its usage and audit rows."""
        tables: list[models.QuerySet[Any]] = [
            model._default_manager.all()
            for label in ("calls", "tickets")
            for model in apps.get_app_config(label).get_models()
        ]
        return [*tables, UsageRecord.objects.filter(tenant=self.tenant), AuditEvent.objects.filter(tenant=self.tenant)]

    def _stamps_backdate(self, moments: Sequence[Moment]) -> None:
        """Set every time stamped while a step ran to the moment that step happens in the story.

        Real times and story times never mix up: the story ends before the
        build starts, so only stamps fall inside the steps' real spans.
        """
        if not moments:
            return
        span = (moments[0].real_start, moments[-1].real_end)
        for rows in self._stamped():
            for column in rows.model._meta.concrete_fields:
                if not isinstance(column, models.DateTimeField):
                    continue
                name = column.attname
                story_time = Case(
                    *(
                        When(**{f"{name}__range": (moment.real_start, moment.real_end)}, then=Value(moment.at))
                        for moment in moments
                    ),
                    default=F(name),
                    output_field=models.DateTimeField(),
                )
                rows.filter(**{f"{name}__range": span}).update(**{name: story_time})

    def _callback_log(
        self,
        *,
        callback_id: int,
        actor: User,
        outcome: str,
        note: str = "",
        reschedule_at: datetime | None = None,
        resolve_ticket: bool = False,
    ) -> None:
        """``callback_outcome_log`` at this step of the story, on the story's clock."""
        callback_outcome_log(
            callback_id=callback_id,
            actor=actor,
            outcome=outcome,
            note=note,
            reschedule_at=reschedule_at,
            resolve_ticket=resolve_ticket,
            now=self._at,
        )

    def _call_record(self, plan: CallPlan) -> None:
        rng = self.rng
        answered_at = plan.started_at + timedelta(seconds=rng.uniform(0.8, 3.5))
        call = Call.objects.create(
            carrier=Call.Carrier.TWILIO,
            carrier_call_id=f"CA{rng.getrandbits(128):032x}",
            stream_id=f"MZ{rng.getrandbits(128):032x}",
            from_number=plan.caller.number,
            to_number=self.dialled,
            status=Call.Status.IN_PROGRESS,
            answered_at=answered_at,
        )
        utterances, latencies, length = self._timeline(call, plan)
        Utterance.objects.bulk_create(utterances)
        TurnLatency.objects.bulk_create(latencies)
        ended_at = answered_at + timedelta(seconds=length + rng.uniform(0.5, 1.5))
        data = asdict(plan.outcome)
        data["summary"] = summary(plan.outcome)
        agent_seconds = sum(line.seconds for line in plan.lines if line.speaker == "agent")
        data["frames_sent"] = int(agent_seconds * 50)
        data["frames_late"] = rng.choice((0, 0, 0, 1, 2))
        # ``started_at`` is stamped on insert; the story's time goes in now, so the ticket's SLA counts from it.
        call.started_at = plan.started_at
        call.status = Call.Status.COMPLETED if plan.completed else Call.Status.ABANDONED
        call.end_reason = "agent_hangup" if plan.completed else "caller_hangup"
        call.ended_at = ended_at
        call.captured = data
        if plan.recorded:
            call.recording.save(f"call-{call.pk}.wav", ContentFile(stereo_wav(utterances, plan.lines)), save=False)
        call.save()
        self.at(ended_at + timedelta(seconds=2), lambda: self._ticket_from_call(plan, call.pk))

    def _timeline(self, call: Call, plan: CallPlan) -> tuple[list[Utterance], list[TurnLatency], float]:
        """Utterance times from the lines' lengths: the caller answers after a pause, the agent after its latency."""
        rng = self.rng
        utterances: list[Utterance] = []
        latencies: list[TurnLatency] = []
        clock = 0.3
        previous: str | None = None
        for line in plan.lines:
            if line.speaker == "agent" and previous == "caller":
                latency = self._latency(call, len(latencies))
                latencies.append(latency)
                clock += latency.first_frame_ms / 1000
            elif line.speaker == "caller":
                clock += rng.uniform(0.35, 1.2)
            start, end = round(clock, 3), round(clock + line.seconds, 3)
            utterances.append(
                Utterance(
                    call=call,
                    speaker=line.speaker,
                    text=line.text,
                    start_s=start,
                    end_s=end,
                    confidence=line.confidence,
                )
            )
            clock = end
            previous = line.speaker
        return utterances, latencies, clock

    def _latency(self, call: Call, turn_index: int) -> TurnLatency:
        rng = self.rng
        transcript = min(max(rng.gauss(330, 60), 180), 700)
        if rng.random() < 0.07:
            transcript += rng.uniform(400, 800)  # a long utterance, or a busy server
        decision = transcript + rng.uniform(4, 40)
        first_audio = decision + rng.uniform(70, 190)
        first_frame = first_audio + rng.uniform(15, 60)
        return TurnLatency(
            call=call,
            turn_index=turn_index,
            transcript_ms=round(transcript, 1),
            decision_ms=round(decision, 1),
            first_audio_ms=round(first_audio, 1),
            first_frame_ms=round(first_frame, 1),
        )

    def _ticket_from_call(self, plan: CallPlan, call_id: int) -> None:
        ticket = ticket_create_from_call(call_id=call_id, now=self._at)
        usage_record_call(tenant=self.tenant, call_id=call_id)
        start = self._at  # when the ticket is made in the story; its created_at is still the real time
        if plan.kind == "hangup_early":
            self.at(start + timedelta(minutes=self.rng.uniform(20, 90)), lambda: self._close_silent(ticket.pk))
        elif plan.kind == "faq":
            if self.rng.random() < 0.5:
                self.at(
                    start + timedelta(days=self.rng.uniform(2, 4)),
                    lambda: ticket_update(ticket_id=ticket.pk, actor=self.owner, status=Ticket.Status.CLOSED),
                )
        else:
            assert plan.problem is not None
            self._work(ticket, plan.problem, start)
        if plan.question is not None:
            self._question_follow_up(ticket, plan.question, start)

    def _close_silent(self, ticket_id: int) -> None:
        ticket_note_add(
            ticket_id=ticket_id, actor=self.owner, body="No message: the caller hung up during the greeting."
        )
        ticket_update(ticket_id=ticket_id, actor=self.owner, status=Ticket.Status.CLOSED)

    def _work(self, ticket: Ticket, problem: Problem, start: datetime) -> None:
        """The team's work on a ticket with a callback: assign, call back, fix, resolve, sometimes close."""
        rng = self.rng
        worker = rng.choice(self.staff)
        urgency = {"urgent": 0.15, "high": 1.5, "normal": 6.0, "low": 20.0}[problem.priority]
        assign_at = start + timedelta(minutes=rng.uniform(5, 40) * min(urgency, 1.0) + 3)
        self.at(assign_at, lambda: ticket_assign(ticket_id=ticket.pk, actor=self.owner, assignee=worker))
        urgent = problem.priority == "urgent"
        first_try = self._office(assign_at + timedelta(hours=urgency * rng.uniform(0.6, 1.4)), urgent=urgent)
        reached_at = first_try
        callback = Callback.objects.filter(ticket=ticket).first()
        if callback is None:
            return
        age = self.now - start
        if age < timedelta(days=1.5) and problem.priority != "urgent":
            # Not yet worked: it waits in the queue, perhaps after one missed try.
            if rng.random() < 0.5:
                self.at(
                    first_try,
                    partial(
                        self._callback_log,
                        callback_id=callback.pk,
                        actor=worker,
                        outcome=Callback.Outcome.NO_ANSWER,
                        reschedule_at=self._office(first_try + timedelta(hours=3)),
                    ),
                )
            return
        if age < timedelta(days=4) and rng.random() < 0.5:
            self._hard_to_reach(callback.pk, worker, first_try)
            return
        if rng.random() < 0.35:
            missed = rng.choice((Callback.Outcome.NO_ANSWER, Callback.Outcome.VOICEMAIL))
            reached_at = self._office(first_try + timedelta(hours=rng.uniform(1.5, 4)), urgent=urgent)
            self.at(
                first_try,
                lambda: self._callback_log(
                    callback_id=callback.pk,
                    actor=worker,
                    outcome=missed,
                    note="Left a message with our number." if missed == Callback.Outcome.VOICEMAIL else "",
                    reschedule_at=reached_at,
                ),
            )
        if problem.category == "billing":
            # Sorted on the phone: the callback resolves the ticket.
            self.at(
                reached_at,
                lambda: self._callback_log(
                    callback_id=callback.pk,
                    actor=worker,
                    outcome=Callback.Outcome.REACHED,
                    note=problem.fix,
                    resolve_ticket=True,
                ),
            )
            return
        booking = rng.choice(BOOKINGS)

        def reached() -> None:
            self._callback_log(
                callback_id=callback.pk, actor=worker, outcome=Callback.Outcome.REACHED, note=f"Booked for {booking}."
            )
            ticket_update(ticket_id=ticket.pk, actor=worker, status=Ticket.Status.OPEN)

        self.at(reached_at, reached)
        visit = reached_at + timedelta(hours={"urgent": 1.5, "high": 8, "normal": 30, "low": 70}[problem.priority])
        visit = self._office(visit + timedelta(hours=rng.uniform(0, 6)), urgent=urgent)
        if rng.random() < 0.25:
            self.at(visit, lambda: self._wait_for_parts(ticket.pk, worker))
            visit = self._office(visit + timedelta(days=rng.uniform(1.5, 3)))
            self.at(visit - timedelta(hours=1), lambda: ticket_update(ticket_id=ticket.pk, actor=worker, status="open"))
        self.at(visit, lambda: self._resolve(ticket.pk, worker, problem.fix))
        if rng.random() < 0.5:
            self.at(
                visit + timedelta(days=rng.uniform(2, 4)),
                lambda: ticket_update(ticket_id=ticket.pk, actor=self.owner, status=Ticket.Status.CLOSED),
            )

    def _office(self, when: datetime, *, urgent: bool = False) -> datetime:
        """``when`` moved into the team's working day (8 am to 7 pm, the business's time), unless it is urgent."""
        when = when.replace(microsecond=0)
        if urgent:
            return when
        local = when.astimezone(self.zone)
        if local.hour < 8:
            local = local.replace(hour=8, minute=self.rng.randrange(5, 50))
        elif local.hour >= 19:
            local = (local + timedelta(days=1)).replace(hour=8, minute=self.rng.randrange(5, 50))
        return local.astimezone(when.tzinfo)

    def _hard_to_reach(self, callback_id: int, worker: User, first_try: datetime) -> None:
        """Two tries without an answer: the callback stays in the queue, due again later (perhaps overdue by now)."""
        second_try = self._office(first_try + timedelta(hours=self.rng.uniform(2, 5)))
        self.at(
            first_try,
            partial(
                self._callback_log,
                callback_id=callback_id,
                actor=worker,
                outcome=Callback.Outcome.NO_ANSWER,
                reschedule_at=second_try,
            ),
        )
        self.at(
            second_try,
            partial(
                self._callback_log,
                callback_id=callback_id,
                actor=worker,
                outcome=Callback.Outcome.VOICEMAIL,
                note="Second voicemail; will try again tomorrow.",
                reschedule_at=second_try + timedelta(days=1),
            ),
        )

    def _wait_for_parts(self, ticket_id: int, worker: User) -> None:
        ticket_note_add(ticket_id=ticket_id, actor=worker, body="Needs a part; ordered from the supplier.")
        ticket_update(ticket_id=ticket_id, actor=worker, status=Ticket.Status.PENDING)

    def _resolve(self, ticket_id: int, worker: User, fix: str) -> None:
        ticket_note_add(ticket_id=ticket_id, actor=worker, body=fix)
        ticket_update(ticket_id=ticket_id, actor=worker, status=Ticket.Status.RESOLVED)

    def _question_follow_up(self, ticket: Ticket, question: tuple[str, str, str], start: datetime) -> None:
        asked, fate, answer = question
        unanswered = UnansweredQuestion.objects.filter(ticket=ticket, question=asked).first()
        if unanswered is None or fate == "open":
            return
        when = start + timedelta(hours=self.rng.uniform(18, 30))
        if fate == "faq":
            self.at(
                when,
                partial(
                    unanswered_question_to_faq,
                    question_id=unanswered.pk,
                    actor=self.owner,
                    question=asked,
                    answer=answer,
                ),
            )
        else:
            self.at(when, partial(unanswered_question_dismiss, question_id=unanswered.pk, actor=self.owner))

    def _web_ticket(self, spec: dict[str, Any], when: datetime) -> None:
        ticket = ticket_create(
            actor=self.owner,
            subject=spec["subject"],
            description=spec["description"],
            caller_name=spec["caller_name"],
            callback_number=spec["callback_number"],
            email=spec["email"],
            category=spec["category"],
            tags=spec["tags"],
            priority=spec["priority"],
            source=Ticket.Source.WEB,
            now=when,
        )
        story = spec["story"]
        if story == "new":
            return
        worker = self.agents[1]
        self.at(
            when + timedelta(minutes=25), lambda: ticket_assign(ticket_id=ticket.pk, actor=self.owner, assignee=worker)
        )
        self.at(when + timedelta(hours=2), lambda: ticket_update(ticket_id=ticket.pk, actor=worker, status="open"))
        if story == "pending":
            self.at(when + timedelta(hours=3), lambda: self._waiting_on_customer(ticket.pk, worker))
        elif story == "resolved":
            self.at(
                when + timedelta(days=1, hours=2),
                lambda: self._resolve(ticket.pk, worker, "Replaced the toilet tank; old one taken away."),
            )

    def _waiting_on_customer(self, ticket_id: int, worker: User) -> None:
        ticket_note_add(ticket_id=ticket_id, actor=worker, body="Asked for the floor plan by email before quoting.")
        ticket_update(ticket_id=ticket_id, actor=worker, status=Ticket.Status.PENDING)
