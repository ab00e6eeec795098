"""Demo data for the demo business: a month of calls, the tickets they made and the team's work on them.

``manage.py seed_demo`` calls :func:`demo_data_build` so that every page of the
demo tenant has something real to show: call history with transcripts, turn
latencies and a few recordings, tickets in every status with their activity
log, a callback queue with overdue and claimed items, unanswered questions
(some already turned into FAQ entries) and metered usage.

How it is made, so the data is the product's own and not a look-alike:

- Calls are written as the call pipeline writes them: the call row, one
  utterance per turn (greeting, reason, name, number, read-back, confirmation,
  goodbye), one latency row per agent reply, and the captured outcome with
  the pipeline's own summary. Tickets then come from
  ``tickets.services.ticket_create_from_call``, so their fields, callbacks and
  unanswered questions are the real thing; usage comes from ``billing.services``.
- The team's work (assignments, callback attempts, notes, status changes,
  FAQ answers) goes through the same services the pages use.
- The story is planned over 30 days and played back in time order; steps
  that would lie in the future are left out, which is what makes recent
  tickets new and old ones closed. The services run at the real current
  time and stamp it; afterwards every time stamped while a step ran is set,
  with ``QuerySet.update``, to the moment that step happens in the story,
  and what the services worked out from the clock (SLA and callback due
  times, rescheduled callbacks and their audit rows) is worked out again
  from the story's times. The clock itself is never touched. One thing the
  story cannot replay: a ticket's time waiting on the customer or on parts
  is not given back to its SLA (at the real resume time the story's due
  time has long passed), so every ticket is due its SLA after its start,
  as its activity log says.
- Recordings are stereo WAVs (caller left, agent right, 8 kHz, as the
  pipeline records them) spoken by espeak-ng; the utterance times of those
  calls are the audio's own, so "play from here" lands on the words.

Deterministic (a fixed plan and a seeded random generator; times are relative
to ``now``) and idempotent: nothing is added to a tenant that has calls.
"""

from __future__ import annotations

import heapq
import io
import random
import shutil
import subprocess
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import structlog
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import UsageRecord
from billing.services import usage_record_call
from calls.dialogue.policy import read_back_number
from calls.dialogue.summary import summary
from calls.models import AgentConfig, Call, FaqEntry, TurnLatency, Utterance
from calls.pipeline.protocols import CallOutcome
from tenants.models import AuditEvent, Membership, PhoneNumber, Tenant, User
from tenants.services import membership_add
from tickets.models import Callback, Ticket, TicketChange, UnansweredQuestion
from tickets.services import (
    callback_due,
    callback_next,
    callback_outcome_log,
    ticket_assign,
    ticket_create,
    ticket_create_from_call,
    ticket_note_add,
    ticket_sla_due,
    ticket_update,
    unanswered_question_dismiss,
    unanswered_question_to_faq,
)

logger = structlog.get_logger(__name__)

DEMO_SEED = 2024
DEMO_DAYS = 30
# How many calls of each kind; 33 of them ask for a callback.
CALL_KINDS: tuple[tuple[str, int], ...] = (
    ("request", 24),
    ("question", 5),
    ("faq", 5),
    ("human", 2),
    ("hangup_early", 2),
    ("hangup_late", 2),
)
CALLBACK_KINDS = frozenset({"request", "question", "human", "hangup_late"})
DEMO_RECORDINGS = 5
RECORDING_RATE = 8000
ESPEAK_RATE = 22050
AGENT_VOICE = "en-us"
CALLER_VOICES = ("en-us+f3", "en-gb+m3", "en-us+m7", "en-gb-x-rp+f2", "en-us+f4")
DEMO_AGENTS: tuple[tuple[str, str, str], ...] = (
    ("sam.rivera@acme.localhost", "Sam", "Rivera"),
    ("priya.shah@acme.localhost", "Priya", "Shah"),
)


@dataclass(frozen=True)
class DemoResult:
    """What the demo tenant holds after a build; ``created`` is False when it already had data."""

    created: bool
    calls: int
    tickets: int
    callbacks: int
    unanswered_questions: int
    recordings: int


@dataclass(frozen=True)
class Problem:
    """Why someone calls a plumber: as the caller says it, and how the job ends."""

    reason: str
    category: str
    priority: str
    fix: str


PROBLEMS: tuple[Problem, ...] = (
    Problem("my kitchen sink is leaking under the cabinet", "leak", "normal", "Replaced the P-trap washer; dry now."),
    Problem(
        "there's water coming through the ceiling from the upstairs bathroom",
        "leak",
        "urgent",
        "Resealed the shower tray and replaced a split waste pipe; ceiling needs drying out.",
    ),
    Problem("the basement is flooding after the storm", "leak", "urgent", "Cleared the floor drain, pumped out."),
    Problem(
        "we have no heat and the boiler shows an error code",
        "heating",
        "urgent",
        "Faulty ignition lead on the boiler; replaced, heating back on.",
    ),
    Problem("the boiler is making a loud banging noise", "heating", "normal", "Power-flushed the system, bled rads."),
    Problem("the radiators upstairs stay cold", "heating", "normal", "Balanced the system and freed a stuck valve."),
    Problem("I'd like to book the annual boiler service", "heating", "low", "Annual service done, certificate sent."),
    Problem("the shower drain is completely blocked", "drains", "normal", "Cleared a hair clog from the shower trap."),
    Problem(
        "the main sewer line is backing up into the basement",
        "drains",
        "high",
        "Jetted the main line; roots found at the boundary, quote sent for relining.",
    ),
    Problem("the kitchen drain empties very slowly", "drains", "low", "Snaked the kitchen drain, grease build-up."),
    Problem("I need a quote to replace our old water heater", "installation", "low", "Quote sent: 50 gallon gas unit."),
    Problem(
        "we want a new bathroom vanity and faucet installed",
        "installation",
        "low",
        "Vanity and faucet fitted, customer happy.",
    ),
    Problem("I'd like an outside tap fitted in the garden", "installation", "low", "Frost-free sillcock installed."),
    Problem(
        "I have a question about the invoice you sent last week",
        "billing",
        "low",
        "Explained the call-out fee on the invoice; no change needed.",
    ),
    Problem(
        "I think I was charged twice for the same visit",
        "billing",
        "normal",
        "Duplicate card payment confirmed; refund issued.",
    ),
    Problem("the toilet keeps running all night", "leak", "normal", "Replaced the fill valve and flapper."),
    Problem(
        "I smell gas near the water heater", "heating", "urgent", "Loose flare fitting on the gas line; tightened."
    ),
    Problem(
        "a pipe burst under the sink and water is everywhere",
        "leak",
        "urgent",
        "Replaced the burst section and both shut-off valves.",
    ),
    Problem(
        "the water pressure in the whole house dropped",
        "general",
        "normal",
        "Pressure reducing valve had failed; replaced.",
    ),
    Problem("the garbage disposal is jammed", "drains", "low", "Freed the disposal, reset the motor."),
    Problem("the sump pump stopped working", "drains", "high", "Float switch stuck; replaced the switch."),
    Problem(
        "the water heater is leaking from the bottom", "leak", "high", "Tank had failed; replaced the water heater."
    ),
)
HUMAN_TOPICS: tuple[Problem, ...] = (
    Problem(
        "the quote Dave gave us for a new boiler", "heating", "normal", "Went through the boiler quote; booked in."
    ),
    Problem("the work you did on our bathroom last week", "general", "normal", "Follow-up visit booked and done."),
)
# Questions the FAQ could not answer, oldest call first, and what the owner did about them.
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "Do you install tankless water heaters?",
        "faq",
        "Yes, we install and service tankless water heaters from all major brands.",
    ),
    ("Are you licensed to work on commercial buildings?", "faq", "Yes, we are licensed for commercial work."),
    ("Do you clean septic tanks?", "dismiss", ""),
    ("Do you offer a discount for seniors?", "open", ""),
    ("Can you remove an old oil tank?", "open", ""),
)
CALLER_NAMES = (
    "Maria Gonzalez",
    "James Carter",
    "Linda Nguyen",
    "Robert Chin",
    "Patricia Owens",
    "Michael Brennan",
    "Aisha Patel",
    "David Kowalski",
    "Jennifer Moore",
    "Carlos Rivera",
    "Susan Whitaker",
    "Thomas Reed",
    "Emily Tran",
    "Daniel O'Connor",
    "Grace Kim",
    "Kevin Murphy",
    "Olivia Bennett",
    "Brian Foster",
    "Sofia Rossi",
    "Anthony Hughes",
    "Rachel Green",
    "Marcus Johnson",
    "Hannah Schultz",
    "Victor Alvarez",
    "Nancy Park",
    "George Adams",
    "Fatima Hassan",
    "Peter Novak",
    "Laura Jensen",
    "Samuel Brooks",
    "Chloe Martin",
    "Ethan Walsh",
    "Irene Costa",
    "Walter Fischer",
)
AREA_CODES = ("217", "312", "630", "773", "847")
PREFERRED_TIMES = (
    "tomorrow morning",
    "any time after 3 pm",
    "Thursday before noon",
    "as soon as possible",
    "Monday morning",
    "weekday evenings",
)
BOOKINGS = ("tomorrow at 9", "this afternoon", "Thursday morning", "Friday at 2", "first thing Monday")
WEB_TICKETS: tuple[dict[str, Any], ...] = (
    {
        "days_ago": 12.3,
        "subject": "Website quote request: kitchen remodel plumbing",
        "description": "Moving the sink to the island; needs new supply and drain lines. Asked for a quote.",
        "caller_name": "Helen Baxter",
        "callback_number": "+12175550190",
        "email": "helen.baxter@example.com",
        "category": "installation",
        "priority": "low",
        "tags": ["quote", "remodel"],
        "story": "pending",
    },
    {
        "days_ago": 6.2,
        "subject": "Emailed photos of a cracked toilet tank",
        "description": "Hairline crack on the tank, slow leak onto the floor. Photos attached to the email.",
        "caller_name": "Oscar Lindqvist",
        "callback_number": "+13125550191",
        "email": "oscar.l@example.com",
        "category": "leak",
        "priority": "normal",
        "tags": ["toilet"],
        "story": "resolved",
    },
    {
        "days_ago": 2.1,
        "subject": "Landlord asks for a yearly inspection of 4 units",
        "description": "Property manager for 12 Elm Street wants all four apartments checked before winter.",
        "caller_name": "Priscilla Vaughn",
        "callback_number": "+16305550192",
        "email": "pvaughn@elmstreet-rentals.example",
        "category": "general",
        "priority": "normal",
        "tags": ["landlord", "inspection"],
        "story": "open",
    },
    {
        "days_ago": 0.2,
        "subject": "Warranty paperwork for the new water heater",
        "description": "Customer needs the installation date and serial number for the manufacturer's warranty.",
        "caller_name": "Gary Whitmore",
        "callback_number": "+17735550193",
        "email": "gary.whitmore@example.com",
        "category": "billing",
        "priority": "low",
        "tags": ["warranty"],
        "story": "new",
    },
)

_UNANSWERED = (
    "I'm sorry, I don't have that information, but I've noted your question "
    "and someone from the team will follow up with you."
)
_HUMAN = (
    "Of course. I can't transfer you right now, but I'll have someone from the team call you back as soon as possible."
)


@dataclass(frozen=True)
class Caller:
    name: str
    number: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


@dataclass
class Line:
    """One utterance of a scripted call."""

    speaker: str
    text: str
    confidence: float | None = None
    seconds: float = 0.0  # how long it takes to say
    audio: np.ndarray | None = None  # int16 at ESPEAK_RATE, for recorded calls


@dataclass
class CallPlan:
    index: int
    kind: str
    started_at: datetime
    caller: Caller
    problem: Problem | None
    lines: list[Line] = field(default_factory=list)
    outcome: CallOutcome = field(default_factory=CallOutcome)
    question: tuple[str, str, str] | None = None
    faq_questions: list[str] = field(default_factory=list)
    recorded: bool = False
    caller_voice: str = CALLER_VOICES[0]

    @property
    def completed(self) -> bool:
        return not self.kind.startswith("hangup")


@dataclass(frozen=True)
class Moment:
    """One step of the story: when it happens in the story (``at``) and when it really ran."""

    at: datetime
    real_start: datetime
    real_end: datetime


def demo_data_build(
    *,
    tenant: Tenant,
    admin: User,
    now: datetime | None = None,
    seed: int = DEMO_SEED,
    recordings: int = DEMO_RECORDINGS,
) -> DemoResult:
    """Fill ``tenant`` with a month of demo activity; do nothing if it already has calls.

    ``admin`` is the business's owner or admin; two demo agents join the team.
    ``now`` is when the story ends (default: the current time); it must not
    be in the future. Recordings need the ``espeak-ng`` program and are
    skipped without it.
    """
    with tenant_context(tenant):
        if Call.objects.exists():
            return _result(created=False)
    real_now = timezone.now()
    if now is not None and now > real_now:
        # The backdating tells story times from real ones by the real time being later.
        raise ValueError(f"the demo's now ({now.isoformat()}) must not be in the future")
    now = (now or real_now).replace(microsecond=0)
    staff = [admin, *_demo_agents(tenant=tenant, actor=admin)]
    with tenant_context(tenant):
        builder = _DemoBuilder(tenant=tenant, staff=staff, now=now, rng=random.Random(seed))
        builder.plan(recordings=recordings if shutil.which("espeak-ng") else 0)
        with transaction.atomic():
            builder.run()
        result = _result(created=True)
    logger.info("demo_data_built", tenant=tenant.schema_name, calls=result.calls, tickets=result.tickets)
    return result


def _result(*, created: bool) -> DemoResult:
    return DemoResult(
        created=created,
        calls=Call.objects.count(),
        tickets=Ticket.objects.count(),
        callbacks=Callback.objects.count(),
        unanswered_questions=UnansweredQuestion.objects.count(),
        recordings=Call.objects.exclude(recording="").count(),
    )


def _demo_agents(*, tenant: Tenant, actor: User) -> list[User]:
    """Two agents who work the queue; they cannot sign in (no password)."""
    agents = []
    for email, first, last in DEMO_AGENTS:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=None, first_name=first, last_name=last)
        if not Membership.objects.filter(user=user, tenant=tenant).exists():
            membership_add(tenant=tenant, user=user, role=Membership.Role.AGENT, actor=actor)
        agents.append(user)
    return agents


class _DemoBuilder:
    """Plans the month, then plays it back in time order through the services."""

    def __init__(self, *, tenant: Tenant, staff: list[User], now: datetime, rng: random.Random) -> None:
        self.tenant = tenant
        self.owner, *self.agents = staff
        self.staff = staff
        self.now = now
        self.rng = rng
        config = AgentConfig.objects.first()
        self.business = config.business_name if config else tenant.name
        self.zone = ZoneInfo(config.timezone if config else "UTC")
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
        # Per callback, the story's times it was rescheduled to, in order.
        self._reschedules: dict[int, list[datetime]] = {}

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
        agent = _agent_line
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
            lines.append(agent(f"{_HUMAN} Could I have your name, please?"))
        else:
            lines.append(self._caller_line(f"Hi, {problem.reason}."))
            lines.append(agent(f"{_empathy(problem.priority)} Could I have your name, please?"))
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
            lines.append(agent(f"{_UNANSWERED} Is there anything else I can help with?"))
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
            line.audio = _espeak(line.text, voice)
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
        self._dues_backdate()
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

    def _dues_backdate(self) -> None:
        """Work the due times the services counted from the real clock out again, from the story's times.

        Tickets: the SLA from their start (the call, else their creation).
        Callbacks: due by priority from their creation, then each reschedule
        as the story had it, in their audit rows too.
        """
        build_start = self._moments[0].real_start if self._moments else self.now
        tickets = Ticket.objects.filter(due_at__gte=build_start).select_related("call")
        for ticket in tickets.only("id", "priority", "created_at", "call__started_at"):
            start = ticket.call.started_at if ticket.call is not None else ticket.created_at
            Ticket.objects.filter(pk=ticket.pk).update(due_at=ticket_sla_due(priority=ticket.priority, start=start))
        callbacks = Callback.objects.filter(due_at__gte=build_start)
        for callback in callbacks.only("id", "ticket_id", "priority", "created_at"):
            due = callback_due(callback.priority, callback.created_at)
            moves = TicketChange.objects.filter(ticket_id=callback.ticket_id, field="callback_due_at").order_by(
                "created_at", "id"
            )
            story = self._reschedules.get(callback.pk, [])
            if moves.count() != len(story):
                raise RuntimeError(f"callback {callback.pk}: {moves.count()} reschedules logged, {len(story)} played")
            for move, rescheduled in zip(moves, story, strict=True):
                TicketChange.objects.filter(pk=move.pk).update(
                    old_value=due.astimezone(UTC).isoformat(), new_value=rescheduled.astimezone(UTC).isoformat()
                )
                due = rescheduled
            Callback.objects.filter(pk=callback.pk).update(due_at=due)

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
        """``callback_outcome_log`` at this step of the story.

        The service only reschedules to a time after the real now, so it gets
        the story's new time as far after the real now as it is after this
        step; ``_dues_backdate`` puts the story's time back.
        """
        real_reschedule = None if reschedule_at is None else timezone.now() + (reschedule_at - self._at)
        callback_outcome_log(
            callback_id=callback_id,
            actor=actor,
            outcome=outcome,
            note=note,
            reschedule_at=real_reschedule,
            resolve_ticket=resolve_ticket,
        )
        if reschedule_at is not None:
            self._reschedules.setdefault(callback_id, []).append(reschedule_at)

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
            call.recording.save(f"call-{call.pk}.wav", ContentFile(_stereo_wav(utterances, plan.lines)), save=False)
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
        ticket = ticket_create_from_call(call_id=call_id)
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


def _agent_line(text: str) -> Line:
    return Line("agent", text)


def _empathy(priority: str) -> str:
    if priority == "urgent":
        return "That sounds urgent. I'll flag it for our on-call plumber right away."
    if priority == "low":
        return "Happy to help with that."
    return "I'm sorry to hear that. I'll make sure someone from the team calls you back."


def _espeak(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng: int16 mono samples at ``ESPEAK_RATE``."""
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "165", "--stdout", "--", text],
        capture_output=True,
        check=True,
        timeout=30,
    )
    # espeak streams, so its header sizes are placeholders: the samples run from "data" to the end.
    start = result.stdout.index(b"data") + 8
    data = result.stdout[start:]
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


def _stereo_wav(utterances: list[Utterance], lines: list[Line]) -> bytes:
    """The call as the pipeline records it: caller left, agent right, 8 kHz 16-bit."""
    length = int((max(u.end_s for u in utterances) + 0.5) * RECORDING_RATE)
    stereo = np.zeros((length, 2), dtype=np.int16)
    for utterance, line in zip(utterances, lines, strict=True):
        if line.audio is None or len(line.audio) == 0:
            continue
        samples = _resample(line.audio)
        begin = int(utterance.start_s * RECORDING_RATE)
        end = min(begin + len(samples), length)
        stereo[begin:end, 0 if line.speaker == "caller" else 1] = samples[: end - begin]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RECORDING_RATE)
        wav.writeframes(stereo.tobytes())
    return buffer.getvalue()


def _resample(samples: np.ndarray) -> np.ndarray:
    """espeak's 22050 Hz down to the phone's 8000 Hz (linear: good enough for a demo voice)."""
    count = int(len(samples) * RECORDING_RATE / ESPEAK_RATE)
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples.astype(np.float32)).astype(np.int16)
