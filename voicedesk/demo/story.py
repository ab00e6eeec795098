"""The demo month's story: what the callers want, what they say, how each job ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from calls.pipeline.protocols import CallOutcome

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
AGENT_VOICE = "en-us"
CALLER_VOICES = ("en-us+f3", "en-gb+m3", "en-us+m7", "en-gb-x-rp+f2", "en-us+f4")
DEMO_AGENTS: tuple[tuple[str, str, str], ...] = (
    ("sam.rivera@acme.localhost", "Sam", "Rivera"),
    ("priya.shah@acme.localhost", "Priya", "Shah"),
)


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

UNANSWERED = (
    "I'm sorry, I don't have that information, but I've noted your question "
    "and someone from the team will follow up with you."
)
HUMAN_REPLY = (
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


def agent_line(text: str) -> Line:
    return Line("agent", text)


def empathy(priority: str) -> str:
    if priority == "urgent":
        return "That sounds urgent. I'll flag it for our on-call plumber right away."
    if priority == "low":
        return "Happy to help with that."
    return "I'm sorry to hear that. I'll make sure someone from the team calls you back."
