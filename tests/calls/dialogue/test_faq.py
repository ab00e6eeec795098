"""FaqIndex retrieval (real MiniLM) and the is_question heuristics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from calls.dialogue.faq import (
    MATCH_THRESHOLD,
    SAME_KIND_THRESHOLD,
    FaqEntry,
    FaqIndex,
    FaqMatch,
    is_question,
    paraphrased,
    question_kind,
    request_and_question,
    split_questions,
)
from calls.pipeline.protocols import Float32
from calls.providers.minilm import MiniLMEmbedder

ACME = [
    FaqEntry(
        "hours",
        "What are your opening hours?",
        "We are open Monday to Friday from 8 am to 6 pm, and Saturday from 9 am to 1 pm.",
    ),
    FaqEntry(
        "emergency",
        "Do you offer emergency service?",
        "Yes, we have a plumber on call 24 hours a day for emergencies like floods and gas leaks.",
    ),
    FaqEntry(
        "callout",
        "How much is a call-out?",
        "Our standard call-out fee is 89 dollars, which includes the first half hour of work.",
    ),
    FaqEntry("areas", "Which areas do you cover?", "We cover Springfield and every town within 25 miles of it."),
    FaqEntry(
        "payment", "Which payment methods do you accept?", "We accept cash, all major credit cards and bank transfer."
    ),
]
HELPIT = [
    FaqEntry(
        "support",
        "What are your support hours?",
        "Our help desk is staffed from 7 am to 7 pm on weekdays, and urgent outages are handled around the clock.",
    ),
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def acme(embedder: MiniLMEmbedder) -> FaqIndex:
    return FaqIndex(ACME, embedder)


def test_threshold_is_the_tuned_value() -> None:
    assert MATCH_THRESHOLD == 0.52
    assert SAME_KIND_THRESHOLD == 0.42


@pytest.mark.parametrize(
    ("question", "entry_id", "score"),
    [
        # 0.744 alone; "open ... saturdays" also scores it with "(hours)" added.
        ("Are you open on Saturdays?", "hours", 0.814),
        ("Are you open on Saturday?", "hours", 0.823),
        ("How much is a callout?", "callout", 0.905),
        ("how much is it call out?", "callout", 0.902),
        ("which payment methods do you accept.", "payment", 0.987),
        ("Which areas do you cover?", "areas", 1.0),
        ("Do you have emergency plumbers?", "emergency", 0.776),
        ("What forms of payment do you take?", "payment", 0.802),
    ],
)
def test_paraphrases_match(acme: FaqIndex, question: str, entry_id: str, score: float) -> None:
    found = acme.match(question)
    assert found is not None
    assert found.entry.id == entry_id
    assert found.score == pytest.approx(score, abs=0.02)


@pytest.mark.parametrize(
    "question",
    [
        "Are your plumbers licensed?",  # 0.472, emergency service: close but not answered by it
        "Do you have any openings this week?",  # 0.516, opening hours: a word trap
        "Do you sell spare parts?",
        "My kitchen sink is leaking all over the floor.",
    ],
)
def test_questions_the_faq_does_not_answer_do_not_match(acme: FaqIndex, question: str) -> None:
    assert acme.match(question) is None


def test_laptop_repair_is_not_support_hours(embedder: MiniLMEmbedder) -> None:
    index = FaqIndex(HELPIT, embedder)
    best = index.best("Can you also repair my personal laptop screen?")
    assert best is not None
    assert best.entry.id == "support"
    assert best.score == pytest.approx(0.120, abs=0.01)
    assert index.match("Can you also repair my personal laptop screen?") is None


def test_empty_index_and_empty_question(embedder: MiniLMEmbedder, acme: FaqIndex) -> None:
    assert FaqIndex([], embedder).match("Are you open on Saturdays?") is None
    assert acme.match("   ") is None


class FixedEmbedder:
    """Maps known texts to fixed unit vectors, to test the scoring rule exactly."""

    name = "fixed"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> Float32:
        self.calls.append(list(texts))
        rows = [np.array(self.vectors[t], dtype=np.float32) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


def test_score_is_the_better_of_question_and_question_plus_answer() -> None:
    entry = FaqEntry("hours", "Q?", "A.")
    fake = FixedEmbedder({"Q?": [1, 0, 0], "Q? A.": [0, 1, 0], "near the answer": [0.6, 0.8, 0], "other": [0, 0, 1]})
    index = FaqIndex([entry], fake, threshold=0.7)
    assert fake.calls == [["Q?", "Q? A."]]  # entries are embedded once, at construction
    assert index.match("near the answer") == FaqMatch(entry=entry, score=pytest.approx(0.8))
    assert index.match("other") is None
    assert index.best("other") == FaqMatch(entry=entry, score=pytest.approx(0.0))


ROOFING = [
    FaqEntry("estimates", "Do you give free estimates?", "Yes, estimates are free."),
    FaqEntry("warranty", "What warranty do you offer?", "New roofs carry a 25-year materials warranty."),
    FaqEntry("financing", "Do you offer financing?", "Yes, we offer financing over 12 to 60 months."),
]
GARAGE = [
    FaqEntry("loaner", "Do you offer loaner cars?", "Yes, we have two loaner cars for repairs."),
    FaqEntry("cards", "Do you take credit cards?", "We take all major credit cards, debit cards and cash."),
]


@pytest.mark.parametrize(
    ("entries", "question", "entry_id"),
    [
        (ROOFING, "Can we pay for it in installments?", "financing"),  # 0.45 alone
        (ROOFING, "Is there a payment plan?", "financing"),
        # No entry that says "financing": the word added leads nowhere ("Do you offer..." is near).
        (GARAGE, "Is there a payment plan?", None),
        (GARAGE, "Can I pay in installments?", None),
    ],
)
def test_a_callers_word_for_what_the_faq_names_otherwise(
    embedder: MiniLMEmbedder, entries: list[FaqEntry], question: str, entry_id: str | None
) -> None:
    found = FaqIndex(entries, embedder).match(question)

    assert (found.entry.id if found else None) == entry_id


APPLIANCES = [
    FaqEntry("fee", "Is there a diagnostic fee?", "The diagnostic visit is 75 dollars, waived if you go ahead."),
    FaqEntry("brands", "Which brands do you repair?", "We repair all major brands."),
    FaqEntry("guarantee", "Do you guarantee your repairs?", "Every repair comes with a 90-day guarantee."),
]
FLORIST = [
    FaqEntry("consult", "Do you offer wedding consultations?", "Yes, a free one-hour consultation at the studio."),
    FaqEntry("same-day", "Do you deliver the same day?", "Orders placed before noon are delivered the same day."),
]
SOLAR = [
    FaqEntry("cleaning", "Do you clean panels?", "Yes, panel cleaning is 8 dollars a panel."),
    FaqEntry("financing", "Do you offer financing?", "Yes, loans over 5 to 20 years with no money down."),
    FaqEntry("duration", "How long does an installation take?", "Most installations take one to three days."),
]
GYM = [
    FaqEntry("notice", "How much notice do I need to give to freeze or cancel?", "Thirty days' notice."),
    FaqEntry("hours", "What are your opening hours?", "We are open 5 am to 11 pm every day."),
]
PHARMACY = [
    FaqEntry("delivery", "Do you deliver?", "We deliver free within three miles, weekdays."),
    FaqEntry("flu", "Do you give flu shots?", "Yes, walk in any time."),
]
NURSERY = [
    FaqEntry("ages", "What ages do you take?", "We take children from 6 weeks to 5 years."),
    FaqEntry("waiting", "Is there a waiting list?", "There is a short waiting list for babies."),
    FaqEntry("hours", "What are your opening hours?", "We are open Monday to Friday from 7 am to 6 pm."),
]
STORAGE = [
    FaqEntry("access", "What are your access hours?", "The gate is open every day from 6 am to 10 pm."),
    FaqEntry("climate", "Are the units climate controlled?", "Our indoor units are climate controlled."),
]


@pytest.mark.parametrize(
    ("entries", "question", "entry_id"),
    [
        # Each scores 0.34-0.48 alone: nearest the right entry, but under the threshold.
        (APPLIANCES, "Do you charge anything just to come out and take a look at it?", "fee"),
        (FLORIST, "Is it free to sit down with someone and plan it all out first?", "consult"),
        (STORAGE, "Can I get into my unit late in the evening, like after nine?", "access"),
        # The phrase is there, but no entry names what it stands for.
        (FLORIST, "Do you charge to come out and take a look?", None),
        (APPLIANCES, "Can I come in late in the evening?", None),
        # Nearer "Do you clean panels?" (0.54) until "(financing)" is added (0.58).
        (SOLAR, "Is there any way to get panels put in if we can't pay for the whole thing up front?", "financing"),
        (GYM, "The operation is next Monday, is that enough warning to pause it?", "notice"),
        (PHARMACY, "Could somebody bring them over to my apartment?", "delivery"),
        # Of the entry's kind: "how soon/how many days" ask how long, "how young" which ages.
        (SOLAR, "And once the permits come through, how many days will your crew be up on the roof?", "duration"),
        (NURSERY, "Hi, how young can a baby be when they start with you?", "ages"),
        # Close to the opening hours (0.51), but they do not say whether a holiday is one.
        (NURSERY, "Are you open on public holidays, like the Fourth of July?", None),
        (NURSERY, "Are you open on public holidays, like the 4th of July?", None),  # as Whisper writes it: 0.53
    ],
)
def test_a_phrase_for_what_an_entry_names_or_a_question_of_its_kind_lowers_the_threshold(
    embedder: MiniLMEmbedder, entries: list[FaqEntry], question: str, entry_id: str | None
) -> None:
    found = FaqIndex(entries, embedder).match(question)

    assert (found.entry.id if found else None) == entry_id


def test_a_holiday_question_goes_only_to_an_entry_that_speaks_of_holidays(embedder: MiniLMEmbedder) -> None:
    holidays = FaqEntry("hours", "What are your opening hours?", "Monday to Friday, 7 to 6; closed on public holidays.")
    index = FaqIndex([*NURSERY[:2], holidays], embedder)

    found = index.match("Are you open on public holidays, like the 4th of July?")

    assert found is not None
    assert found.entry.id == "hours"
    assert FaqIndex(NURSERY, embedder).match("Are you open on public holidays, like the 4th of July?") is None


def test_paraphrased() -> None:
    assert paraphrased("can we pay in installments?") == [("can we pay in installments? (financing)", "financing")]
    assert paraphrased("which towns do you cover?") == [("which towns do you cover? (areas)", "areas")]
    assert paraphrased("do you charge to come out?") == [("do you charge to come out? (fee)", "fee")]
    assert paraphrased("can we meet with someone first?") == [
        ("can we meet with someone first? (consultation)", "consultation")
    ]
    assert paraphrased("are you open on saturdays?") == [("are you open on saturdays? (hours)", "hours")]
    assert paraphrased("how much is a call-out?") == []
    assert paraphrased("do you have any openings this week?") == []


GROOMING = [
    FaqEntry("duration", "How long does a full groom take?", "A full groom takes two to three hours."),
    FaqEntry("cats", "Do you groom cats?", "Yes, we groom cats on Wednesdays."),
    FaqEntry("nails", "How much is a nail trim?", "A nail trim is 15 dollars, and you don't need an appointment."),
    FaqEntry("hours", "What are your opening hours?", "We are open Monday to Saturday from 8 am to 5 pm."),
]
BOOKING = "I'd like to book a full groom for my golden noodle, biscuit"


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("How long will he need to stay?", "duration"),
        ("How long has he had it?", "duration"),  # a rare question, and the price of the rule
        # The reason is about a groom, the nearest entry about a nail trim: not the same question.
        ("How much will it cost?", None),
        ("Which day can he come in?", None),  # its nearest entry is not a "which" question
        ("How long does the drive take to get to you?", None),  # points back at nothing
    ],
)
def test_a_question_that_points_back_is_asked_with_the_reason(
    embedder: MiniLMEmbedder, question: str, entry_id: str | None
) -> None:
    index = FaqIndex(GROOMING, embedder)

    found = index.match_in_context(question, BOOKING)

    assert (found.entry.id if found else None) == entry_id
    assert index.match(question) is None  # alone, none of these clears the threshold
    assert index.match_in_context(question, "") is None


TAILOR = [
    FaqEntry("duration", "How long does a job take?", "Most alterations are ready within one week."),
    FaqEntry("hem", "How much is a trouser hem?", "A standard trouser hem is 15 dollars."),
    FaqEntry("appointment", "Do I need an appointment?", "No appointment is needed to drop off."),
]
JACKET = "The zip on my leather jacket has broken, the lining's ripped by the pocket, I'd like to get it fixed"


@pytest.mark.parametrize(
    ("entries", "question", "context", "entry_id"),
    [
        # The business's one "how long" entry, about any job: 0.26, and nearer the hem with the reason.
        (TAILOR, "If I drop it off, how soon would I get it back?", JACKET, "duration"),
        # Its one "how much" entry is about a trouser hem, not the jacket.
        (TAILOR, "How much would it cost?", JACKET, None),
        # A "how much" in other words, about the job itself ("tuning" for a piano "out of tune").
        (
            [
                FaqEntry("price", "How much is a tuning?", "A standard tuning is 140 dollars."),
                FaqEntry("often", "How often should a piano be tuned?", "Once or twice a year."),
            ],
            "Roughly what would that set me back, since it's been left so long?",
            "Our piano sounds awful now, it's badly out of tune",
            "price",
        ),
        # Two entries of the kind: the rule does not choose between them.
        (
            [*TAILOR, FaqEntry("rush", "How long is a rush job?", "48 hours.")],
            "How soon would I get it back?",
            JACKET,
            None,
        ),
    ],
)
def test_the_one_entry_of_a_kind_answers_a_question_about_the_job(
    embedder: MiniLMEmbedder, entries: list[FaqEntry], question: str, context: str, entry_id: str | None
) -> None:
    index = FaqIndex(entries, embedder)

    found = index.match_in_context(question, context)

    assert (found.entry.id if found else None) == entry_id
    assert index.match_in_context(question, "") is None


def test_questions_in_one_breath_share_no_entry() -> None:
    loaner = FaqEntry("loaner", "Loaner?", "A.")
    cards = FaqEntry("cards", "Cards?", "A.")
    fake = FixedEmbedder(
        {
            "Loaner?": [1, 0, 0],
            "Loaner? A.": [1, 0, 0],
            "Cards?": [0, 1, 0],
            "Cards? A.": [0, 1, 0],
            "used cars": [0.9, 0, 0.436],  # 0.9 from loaner
            "credit car": [0.7, 0.65, 0.296],  # 0.7 from loaner, 0.65 from cards
            "weather": [0, 0, 1],
        }
    )
    index = FaqIndex([loaner, cards], fake, threshold=0.6)

    # Each alone comes closest to the loaner entry; together, the closer keeps it.
    assert index.match("credit car") == FaqMatch(entry=loaner, score=pytest.approx(0.7, abs=1e-3))
    assert index.match_each(["used cars", "credit car"]) == [
        FaqMatch(entry=loaner, score=pytest.approx(0.9, abs=1e-3)),
        FaqMatch(entry=cards, score=pytest.approx(0.65, abs=1e-3)),
    ]
    assert index.match_each(["credit car", "used cars"]) == [
        FaqMatch(entry=cards, score=pytest.approx(0.65, abs=1e-3)),
        FaqMatch(entry=loaner, score=pytest.approx(0.9, abs=1e-3)),
    ]
    # No next entry that clears the threshold: the other question goes unanswered.
    assert index.match_each(["used cars", "weather"]) == [
        FaqMatch(entry=loaner, score=pytest.approx(0.9, abs=1e-3)),
        None,
    ]
    assert index.match_each(["used cars", "used cars"]) == [
        FaqMatch(entry=loaner, score=pytest.approx(0.9, abs=1e-3)),
        None,
    ]
    assert index.match_each([]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Are you open on Saturdays?", True),
        ("which payment methods do you accept.", True),
        ("Hi, I just have a couple of questions. Which areas do you cover?", True),
        ("So do you take credit cards", True),
        ("How much is a call-out", True),
        ("I was wondering if you work weekends", True),
        ("Can you tell me your address", True),
        ("My kitchen sink is leaking all over the floor.", False),
        ("The operation is next Monday, is that enough warning to pause it.", True),  # heard without "?"
        ("I'd like it done Friday, can you do that.", True),
        ("My pipe burst, when I came home.", False),
        ("No, that's all, thanks.", False),
        ("Have a good day.", False),
        ("Will do.", False),
        ("I'd like a quote to install a new water heater.", False),
        ("", False),
    ],
)
def test_is_question(text: str, expected: bool) -> None:
    assert is_question(text) is expected


@pytest.mark.parametrize(
    ("sentence", "questions"),
    [
        (
            "Hi, do you come out on Saturdays, and which towns do you cover?",
            ["Hi, do you come out on Saturdays?", "which towns do you cover?"],
        ),
        (
            "Do you sell used cars, and can I pay by credit card?",
            ["Do you sell used cars?", "can I pay by credit card?"],
        ),
        (
            "Are you open Saturdays? And how much is a call-out?",
            ["Are you open Saturdays?", "And how much is a call-out?"],
        ),
        # One question with an alternative, or with a condition, stays whole.
        ("Can I just walk in, or do I need to book?", ["Can I just walk in, or do I need to book?"]),
        ("If I book today, when can you come?", ["If I book today, when can you come?"]),
        ("When is the deadline to file my taxes this year?", ["When is the deadline to file my taxes this year?"]),
    ],
)
def test_split_questions(sentence: str, questions: list[str]) -> None:
    assert split_questions(sentence) == questions


@pytest.mark.parametrize(
    ("sentence", "halves"),
    [
        (
            "Good somebody, bring them over to my apartment, and do you take my Medicaid car?",
            ("Good somebody, bring them over to my apartment?", "do you take my Medicaid car?"),
        ),
        (
            "I need a quote for a new roof and how soon can you come?",
            ("I need a quote for a new roof?", "how soon can you come?"),
        ),
        # No "and" before the question, too short a first half, or no question after it.
        ("Good somebody, bring them over, do you take Medicaid?", None),
        ("Yes and do you take cards?", None),
        ("My sink leaks and the floor is wet.", None),
    ],
)
def test_request_and_question(sentence: str, halves: tuple[str, str] | None) -> None:
    assert request_and_question(sentence) == halves


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("And where are you located?", "where"),
        ("What's your address?", "where"),
        ("How much is an oil change?", "how much"),
        ("What do you charge for a groom?", "how much"),
        ("How long does a full groom take?", "how long"),
        ("What time do you close?", "when"),
        ("Do you work on weekends?", ""),
        ("How soon can you come?", "how long"),
        ("And once the permits come through, how many days will your crew be up on the roof?", "how long"),
        ("If I drop it off, how soon would I get it back?", "how long"),
        ("How many rooms do you have?", "how many"),
        ("How often are we actually supposed to have it emptied?", "how often"),
        ("Hi, how young can a baby be when they start with you?", "ages"),
        ("What ages do you take?", "ages"),
        ("Roughly how long would I be without it?", "how long"),
    ],
)
def test_question_kind(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_a_question_of_the_entry_kind_needs_less(embedder: MiniLMEmbedder) -> None:
    index = FaqIndex(
        [
            FaqEntry(id="office", question="Where is your office?", answer="Suite 4, 210 Harbor Road, by the bank."),
            FaqEntry(id="fees", question="How much do you charge?", answer="From 150 dollars."),
        ],
        embedder,
    )
    found = index.best("And where are you located?")
    assert found is not None
    assert found.entry.id == "office"
    assert SAME_KIND_THRESHOLD <= found.score < MATCH_THRESHOLD
    assert index.match("And where are you located?") == found
    # The same score without the shared kind is not enough.
    assert index.match("Are you located nearby?") is None
