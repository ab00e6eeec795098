"""Which of a business's ticket categories a call is about.

A business describes each category in a sentence and a few example phrases
(``CategoryGuide``); common category names get a default description from
``DEFAULT_GUIDES`` until the business writes its own, and a business's help
desk adds examples whenever an agent moves a phone ticket to another
category. ``CategoryClassifier`` compares the caller's reason with every
description and example under the MiniLM sentence embedder and returns the
closest category with its confidence; below ``CONFIDENCE_THRESHOLD`` the call
goes to "general" and the ticket is flagged for a person to check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from calls.dialogue.extract.text import normalize, stem
from calls.pipeline.protocols import TextEmbedder

GENERAL = "general"
# Category names that mean "calls that cannot wait".
_EMERGENCY = re.compile(r"^(?:emergenc(?:y|ies)|urgent)\b")
# Cosine similarity (all-MiniLM-L6-v2) of the caller's reason with the
# closest description or example from which a category is trusted; below it
# the ticket goes to "general" with a review flag. Measured on the tune half
# of the scenario corpus and the public scenarios: reasons about a category
# score 0.35-0.75 against its guide, unrelated ones under 0.3.
CONFIDENCE_THRESHOLD = 0.3
# Closer than this to the runner-up, the choice is kept but flagged for review.
REVIEW_MARGIN = 0.02
# The category's own word in the reason ("a quote", "my insurance") counts this much extra.
NAME_BONUS = 0.08
# A sentence saying what the caller does not want ("I don't want to cancel it") is left out: it
# names the wrong category, as near as a request would.
_NOT_WANTED = re.compile(
    r"\b(?:don't|do not|doesn't|does not|didn't|did not|not|never|no)\s+"
    r"(?:want|need|wish|mean|plan|intend|looking|trying|asking)(?:ing)?\s+to\b"
)


@dataclass(frozen=True, slots=True)
class CategoryGuide:
    """A category as the business describes it: what belongs there, and how callers say it."""

    name: str
    description: str = ""
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CategoryChoice:
    """The category chosen for a reason, how sure, and whether a person should check it."""

    name: str
    confidence: float
    review: bool = False


# Default descriptions for category names common across trades, keyed by
# the name's stem (see ``stem``). A business's own description replaces one.
DEFAULT_GUIDES: dict[str, tuple[str, tuple[str, ...]]] = {
    # Homes and buildings
    "leak": (
        "water leaking, dripping or escaping from a pipe, tap, sink, roof or ceiling",
        ("the pipe under the sink drips", "a damp patch keeps spreading", "a pipe burst", "the tap keeps dripping"),
    ),
    "heat": (
        "heating not working: boiler, furnace, radiators, no heat or no hot water",
        ("the boiler is making a banging noise", "radiators are cold", "the furnace won't turn on"),
    ),
    "cool": (
        "air conditioning or cooling not working, the house is too hot",
        ("the AC is blowing warm air", "air conditioner stopped cooling", "the heat pump won't cool"),
    ),
    "hvac": (
        "heating, ventilation and air conditioning systems: furnace, boiler, AC, ducts",
        ("my furnace is broken", "the AC isn't cooling", "service my heating system"),
    ),
    "drain": (
        "blocked or slow drains, clogged toilets, sewer backups",
        ("the bath drains very slowly", "my toilet is clogged", "the sewer is backing up"),
    ),
    "plumb": (
        "plumbing: pipes, taps, toilets, water heaters and leaks",
        ("a pipe is leaking", "my faucet needs replacing", "the water heater is broken"),
    ),
    "electr": (
        "electrical wiring, outlets, breakers, lights and power problems",
        ("my outlets stopped working", "the breaker keeps tripping", "lights are flickering", "sparks from a socket"),
    ),
    "install": (
        "installing or fitting something new, and quotes for new equipment",
        ("fit a new bathroom", "put in a new dishwasher", "set up new equipment"),
    ),
    "repair": (
        "fixing something that is broken, damaged, faulty or leaking: leaks, holes, cracks, storm damage",
        (
            "it's broken and needs fixing",
            "a hole needs patching",
            "damaged in the storm",
            "something fell on it",
            "it stopped working properly",
            "a part has come loose or come off",
            "it keeps slipping and sticking",
            "can someone take a look at it and fix it",
            "it got knocked down and needs putting back up",
        ),
    ),
    "replac": (
        "replacing something old or worn out with a new one",
        ("it is worn out and needs replacing", "time for a brand new one", "swap the old unit for a new one"),
    ),
    "maintenan": (
        "routine servicing, tune-ups and upkeep",
        ("annual service", "regular maintenance visit", "tune-up"),
    ),
    "annual": (
        "the yearly service when nothing is wrong: a check-over, oil, filters, plugs and worn parts renewed",
        (
            "get it looked over before the season starts",
            "nothing's wrong, it's just due its yearly service",
            "change the oil and the filters and give it a once-over",
        ),
    ),
    "sweep": (
        "chimney sweeping: cleaning soot and creosote out of a chimney, flue or stove pipe",
        (
            "get the chimney swept",
            "clean the flue before we light the fire again",
            "we're about to start using the fireplace or wood stove for the winter",
        ),
    ),
    "inspect": (
        "an inspection, survey, assessment or check before buying, selling or for safety",
        ("a home inspection before we buy", "a safety check", "someone to look it over and report"),
    ),
    "gutter": (
        "gutters and downpipes: cleaning, blocked, overflowing, fallen or damaged gutters",
        ("the gutters are overflowing", "gutter fell off", "clean the gutters"),
    ),
    "roof": (
        "roofs: leaks, missing shingles or tiles, storm damage, replacement",
        ("shingles blew off", "a leak in the roof", "the roof needs replacing"),
    ),
    "clean": (
        "cleaning services for homes, offices, carpets or windows",
        ("a deep clean of my house", "clean the carpets", "end of tenancy cleaning"),
    ),
    "landscap": (
        "gardens, lawns, trees, hedges and outdoor landscaping",
        ("mow the lawn", "trim the hedges", "a tree needs cutting back"),
    ),
    "lockout": (
        "locked out of a home, car or business, keys lost or locked inside",
        ("I can't get into my flat", "keys left inside", "lost my keys and can't get in"),
    ),
    "rekey": (
        "rekeying or changing locks so old keys no longer work, after moving or a break-in",
        (
            "change the locks after a tenant moved out",
            "new keys so the old ones stop working",
            "we just moved in and want every lock changed",
        ),
    ),
    "safe": (
        "safes and vaults: opening, combinations, repairs",
        ("the safe is jammed", "open a locked safe", "change the code on a safe"),
    ),
    "automotive": (
        "car and vehicle keys, key fobs, transponder keys and car locks",
        ("I need a new car key", "my key fob stopped working", "lost the only key to my car"),
    ),
    "security": (
        "alarms, cameras, access control and keeping a property secure",
        ("install a security camera", "the alarm keeps going off", "access control for the office"),
    ),
    # Pests
    "rodent": (
        "mice, rats and other rodents",
        ("we have mice in the kitchen", "rats in the garage", "droppings in the attic"),
    ),
    "insect": (
        "insects: wasps, bees, ants, cockroaches, bed bugs, fleas, spiders",
        ("hornets under the eaves", "ants in the kitchen", "bed bugs", "cockroaches"),
    ),
    "termite": (
        "termites and wood-destroying insects",
        ("termite damage", "swarmers near the windows", "mud tubes on the foundation"),
    ),
    "wildlife": (
        "wild animals: raccoons, squirrels, bats, birds, snakes, skunks",
        ("raccoons in the attic", "a squirrel in the chimney", "bats in the loft", "a snake in the yard"),
    ),
    "pest": (
        "pest control: insects, rodents and other pests",
        ("we have a pest problem", "mice and ants", "need an exterminator"),
    ),
    # Vehicles
    "brake": (
        "brakes: grinding, squeaking, soft pedal, pads and rotors",
        ("the brake pedal feels soft", "brakes squeal when I stop", "new brake pads"),
    ),
    "engine": (
        "engine problems: check engine light, misfires, stalling, strange noises, won't start",
        ("the engine is making a knocking noise", "the car stalls at lights", "warning light on the dashboard"),
    ),
    "tire": (
        "tires: flats, punctures, new tires, rotation, alignment",
        ("a puncture", "flat tire", "need new tires", "wheel alignment"),
    ),
    "tow": (
        "towing a vehicle that cannot be driven, breakdowns and roadside help",
        ("my car broke down", "I need a tow", "stuck on the side of the road"),
    ),
    "oil": ("oil changes and fluid services", ("I need an oil change", "time for my oil service")),
    "transmission": ("transmission and gearbox problems", ("the transmission is slipping", "hard to shift gears")),
    # Health and care
    "appointment": (
        "booking, changing or cancelling an appointment or visit",
        ("make an appointment", "reschedule my visit", "cancel my appointment", "a check-up"),
    ),
    "book": (
        "booking, changing or cancelling an appointment",
        ("book a cut and blow-dry", "make a booking", "reschedule my appointment", "cancel my booking"),
    ),
    "reserv": (
        "reservations: booking a room, a table, a stay or a date, and changing one",
        ("I'd like to book a room for two nights", "reserve a table for four", "we want to stay the weekend"),
    ),
    "immediate": (
        "a death that has just happened: bringing the person into care and arranging the funeral now",
        (
            "my mother passed away this morning",
            "my husband died last night and we need a funeral home to take care of him",
            "the hospital asked which funeral home will be collecting her",
        ),
    ),
    "emergency": (
        "an emergency: danger to a person or animal right now, poisoning, bleeding, severe pain, not breathing",
        ("my cat swallowed something toxic", "he's bleeding badly", "she can't breathe properly", "it's an emergency"),
    ),
    "urgent": (
        "something that cannot wait and needs help today",
        ("this is urgent", "I need someone today", "it can't wait"),
    ),
    "injur": (
        "a new injury or pain: sprains, strains, back or neck pain, sports injuries, after an accident",
        (
            "I sprained my ankle running",
            "hurt my neck in a car accident",
            "pain in my lower back",
            "I hurt my shoulder",
        ),
    ),
    "rehab": (
        "rehabilitation and recovery after surgery or a long-term condition",
        ("rehab after my knee surgery", "recovering from a hip replacement", "exercises after an operation"),
    ),
    "massage": (
        "massage therapy for relaxation, tension or sore muscles",
        ("I'd like a sports massage", "book a deep tissue massage", "my muscles are tight"),
    ),
    "vaccin": (
        "vaccinations, shots and boosters",
        ("my puppy is due for shots", "annual boosters", "is my dog due for vaccines"),
    ),
    "surger": (
        "surgery and operations: spaying, neutering, procedures, recovery after an operation",
        ("book a spay", "my dog needs surgery", "how is he doing after the operation"),
    ),
    "pharmac": (
        "medication, prescriptions and refills",
        ("a repeat prescription", "more tablets for my dog", "order more medicine"),
    ),
    "prescription": (
        "prescriptions and medication refills",
        ("I need a refill of my prescription", "renew my medication"),
    ),
    "dental": ("teeth and dental care", ("a toothache", "a broken tooth", "dental cleaning")),
    "insurance": (
        "insurance: whether a policy covers a service, claims with an insurer, insurance details",
        ("is this covered by my plan", "which insurers do you accept"),
    ),
    "referral": ("referrals from or to a doctor or specialist", ("I have a referral from my doctor",)),
    "new patient": ("registering as a new patient or client", ("we've never been before", "register a new pet")),
    # Grooming, salons
    "groom": (
        "grooming a pet: baths, haircuts, full grooms, trims",
        ("my dog needs a bath and haircut", "a puppy trim", "a bath and brush"),
    ),
    "nail": ("nail trims and nail care", ("my dog's nails need clipping", "a nail trim", "a manicure")),
    "daycare": (
        "day care and boarding: looking after a pet or child during the day or overnight",
        ("look after my dog while I work", "overnight boarding", "someone to mind him for the day"),
    ),
    "color": (
        "hair colour: dyeing, highlights, balayage, colour correction",
        ("I want highlights", "dye my hair", "fix my colour", "balayage"),
    ),
    "colour": ("hair colour: dyeing, highlights, colour correction", ("I want highlights", "dye my hair")),
    "bridal": (
        "weddings and bridal parties: hair and make-up for the wedding day",
        ("hair for my wedding", "my bridal party needs styling", "a wedding trial"),
    ),
    "hair": ("haircuts and styling", ("I need a haircut", "a trim and blow dry")),
    # Complaints, money, admin
    "complaint": (
        "the caller is unhappy with the service they received or wants to complain; something went wrong",
        (
            "I'd like to file a complaint",
            "not happy with the work you did",
            "unhappy with the service",
            "something went wrong after my visit",
        ),
    ),
    "claim": (
        "a claim for damage or loss: something broken, lost or damaged by the company or its crew",
        ("the movers scratched my piano", "items were damaged", "a box went missing", "file a claim"),
    ),
    "bill": (
        "bills, invoices, charges, payments and refunds",
        ("a question about my bill", "I was charged twice", "my invoice is wrong", "I want a refund"),
    ),
    "payment": ("payments, charges and paying a bill", ("I want to pay my bill", "my payment failed")),
    "refund": ("refunds and money back", ("I'd like a refund", "when will I get my money back")),
    "quote": (
        "a price estimate or quote for a job",
        ("I need a quote", "how much would it cost to move", "an estimate for the work"),
    ),
    "estimat": ("a price estimate for a job", ("I need an estimate", "how much would it cost")),
    "sale": ("buying products or services, pricing and new orders", ("I want to buy", "pricing for a new order")),
    "order": ("orders: placing, tracking or changing an order", ("where is my order", "change my order")),
    "deliver": (
        "deliveries: when they arrive, missed or late deliveries",
        (
            "my delivery is late",
            "it still hasn't arrived",
            "the order never turned up",
            "it was meant to come today",
            "the things we rented haven't been dropped off yet",
        ),
    ),
    "return": ("returns and exchanges", ("I want to return this", "exchange an item")),
    "freez": (
        "pausing a membership, subscription or plan for a while without cancelling it",
        ("put my membership on hold", "pause my subscription while I'm away", "freeze my account for two months"),
    ),
    "rebook": (
        "changing or rebooking something already booked: new dates, times or a replacement booking",
        ("my flight was cancelled and I need another one", "move my booking to next week", "change the dates"),
    ),
    "cancel": ("cancelling a service, booking or contract", ("I want to cancel", "cancel my subscription")),
    "storage": (
        "storing belongings or furniture for a while",
        ("somewhere to keep our things for a while", "a storage unit", "keep boxes in storage"),
    ),
    "mov": ("moving home or office: packing, moving day, relocation", ("we're moving next month",)),
    # Accounting and legal
    "tax": (
        "taxes: tax returns, filing, deadlines, tax advice",
        ("file my tax return", "help with my taxes", "a question about my tax bill"),
    ),
    "bookkeep": (
        "bookkeeping: keeping the books, accounts and records",
        ("monthly bookkeeping", "someone to keep our books", "reconcile our accounts"),
    ),
    "payroll": (
        "payroll: paying employees, payslips and payroll taxes",
        ("set up payroll for my staff", "run payroll for my employees", "payslips"),
    ),
    "audit": (
        "audits: an audit by the tax office or a financial audit, representation",
        ("the tax office wrote to say they will audit us", "help during an audit"),
    ),
    "legal": ("legal advice and cases", ("I need a lawyer", "legal advice about a contract")),
    "consult": ("a consultation or first meeting", ("book a consultation", "a first meeting to discuss")),
    # IT and offices
    "outage": (
        "a service, network, internet or system is down for everyone",
        ("the internet is out", "the server is down", "the whole system stopped"),
    ),
    "account": (
        "user accounts: passwords, logins, locked accounts, access",
        ("I forgot my password", "I can't log in", "my account is locked"),
    ),
    "hardware": (
        "computers and devices: laptops, printers, screens, keyboards",
        ("my laptop won't turn on", "the printer is jammed", "my monitor is broken"),
    ),
    "software": (
        "programs and apps: installing, updating, errors, licences, viruses",
        ("Outlook keeps crashing", "install a program", "a virus on my computer", "software licence"),
    ),
    "network": ("networks, wifi and internet", ("the wifi keeps dropping", "no internet")),
    "support": ("help with a product or service that is not working", ("it's not working", "I need help")),
    # Property management
    "maintenance request": ("repairs in a rented home", ("the heating is broken in my flat",)),
    "lease": ("leases and tenancy agreements", ("renew my lease", "a question about my tenancy agreement")),
    "rent": ("rent payments", ("I want to pay my rent", "my rent is late")),
    "noise": ("noise and neighbour complaints", ("the neighbours are too loud",)),
    "parking": ("parking spaces and permits", ("someone is in my parking space",)),
    "general": ("anything else", ()),
}


# Keys that must be the whole word: a "freezer" is not a membership freeze.
_WHOLE_WORD_KEYS = frozenset({"freez"})


def default_guide(name: str) -> CategoryGuide:
    """The default guide for a category name: the longest default key the name starts with, or the name alone."""
    key = normalize(name)
    stems = [stem(w) for w in re.findall(r"[a-z]+", key)]
    for candidate in sorted(DEFAULT_GUIDES, key=len, reverse=True):
        root = stem(candidate)
        whole = candidate in _WHOLE_WORD_KEYS
        if key == candidate or any(s == root or (not whole and s.startswith(root)) for s in stems):
            description, examples = DEFAULT_GUIDES[candidate]
            return CategoryGuide(name=name, description=description, examples=examples)
    return CategoryGuide(name=name)


def category_guides(
    categories: Sequence[str],
    custom: Mapping[str, Mapping[str, object]] | None = None,
    learned: Mapping[str, Sequence[str]] | None = None,
) -> list[CategoryGuide]:
    """Each category's guide: the business's own description and examples, else the default; plus learned examples."""
    guides: list[CategoryGuide] = []
    for name in categories:
        if not name.strip():
            continue
        base = default_guide(name)
        own = (custom or {}).get(name) or {}
        description = str(own.get("description") or "").strip() or base.description
        raw_examples = own.get("examples")
        examples = (
            [str(e).strip() for e in raw_examples if str(e).strip()]
            if isinstance(raw_examples, list) and raw_examples
            else list(base.examples)
        )
        examples += [e for e in (learned or {}).get(name, ()) if e.strip()]
        guides.append(CategoryGuide(name=name, description=description, examples=tuple(examples)))
    return guides


@dataclass(slots=True)
class CategoryClassifier:
    """Nearest category guide for a caller's reason; guide embeddings are computed once."""

    guides: Sequence[CategoryGuide]
    embedder: TextEmbedder
    _owners: list[int] = field(default_factory=list, init=False)
    _vectors: npt.NDArray[np.float32] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        texts: list[str] = []
        for i, guide in enumerate(self.guides):
            if guide.name.lower() == GENERAL:
                continue
            texts.append(guide.name)
            self._owners.append(i)
            if guide.description:
                # The name alone too: a generic description ("fixing something that is broken")
                # loses the name's subject ("fence repair" against "new fence").
                texts.append(f"{guide.name}: {guide.description}")
                self._owners.append(i)
            for example in guide.examples:
                texts.append(example)
                self._owners.append(i)
        if texts:
            self._vectors = self.embedder.embed(texts)

    @property
    def fallback(self) -> str:
        """ "general" when the business has it, else its first category."""
        names = [g.name for g in self.guides]
        return next((n for n in names if n.lower() == GENERAL), names[0] if names else GENERAL)

    def classify(self, reason: str, *, urgent: bool = False) -> CategoryChoice:
        """The closest category for ``reason``, or the fallback (flagged) when none is close enough.

        An ``urgent`` call (one of the business's urgent keywords) goes to its
        emergency category when it has one: that is what such a category is
        for, whatever the emergency ("a bad toothache and swelling" is
        nearer "orthodontics" than "an emergency" to the embedder).
        """
        text = reason.strip()
        if not text or self._vectors is None:
            return CategoryChoice(name=self.fallback, confidence=0.0)
        emergency = next((g.name for g in self.guides if _EMERGENCY.match(normalize(g.name))), None)
        if urgent and emergency is not None:
            return CategoryChoice(name=emergency, confidence=1.0)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        wanted = [s for s in sentences if not _NOT_WANTED.search(normalize(s))]
        if wanted and len(wanted) < len(sentences):
            text = " ".join(wanted)
            sentences = wanted
        # Each sentence on its own as well: "I want to complain. My dog came home limping."; and each
        # clause of four words or more: "The tables we rented for the party, still haven't arrived".
        clauses = [c for s in sentences for c in re.split(r",\s+", s) if len(c.split()) >= 4]
        pieces = list(dict.fromkeys([text, *sentences, *clauses]))
        queries = self.embedder.embed(pieces)
        sims = (self._vectors @ queries.T).max(axis=1)
        words = {stem(w) for w in re.findall(r"[a-z]+", normalize(text)) if len(w) > 3}
        scores: dict[int, float] = {}
        for owner, sim in zip(self._owners, sims, strict=True):
            scores[owner] = max(scores.get(owner, -1.0), float(sim))
        for owner in scores:
            name_stems = {stem(w) for w in re.findall(r"[a-z]+", normalize(self.guides[owner].name)) if len(w) > 3}
            # "complain" names "complaint", "rekeyed" names "rekey".
            if any(n.startswith(w) or w.startswith(n) for n in name_stems for w in words):
                scores[owner] += NAME_BONUS
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        best, score = ranked[0]
        if score < CONFIDENCE_THRESHOLD:
            return CategoryChoice(name=self.fallback, confidence=score, review=True)
        runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
        return CategoryChoice(name=self.guides[best].name, confidence=score, review=score - runner_up < REVIEW_MARGIN)
