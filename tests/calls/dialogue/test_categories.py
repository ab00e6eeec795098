"""Categories from what a business says they cover, under the real MiniLM embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from calls.dialogue.categories import (
    CONFIDENCE_THRESHOLD,
    DEFAULT_GUIDES,
    CategoryChoice,
    CategoryClassifier,
    CategoryGuide,
    category_guides,
    default_guide,
)
from calls.pipeline.protocols import Float32
from calls.providers.minilm import MiniLMEmbedder

ACME = ["leak", "heating", "drains", "installation", "billing", "general"]
HELPIT = ["outage", "account", "hardware", "software", "billing", "general"]
BRIGHTSMILE = ["appointment", "emergency", "billing", "insurance", "general"]
HVAC = ["heating", "cooling", "installation", "billing", "general"]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def classify(embedder: MiniLMEmbedder, categories: list[str], reason: str) -> str:
    return CategoryClassifier(category_guides(categories), embedder).classify(reason).name


@pytest.mark.parametrize(
    ("reason", "categories", "category"),
    [
        ("Hi, my kitchen sink is leaking all over the floor.", ACME, "leak"),
        ("Our boiler stopped working this morning and we have no heat in the house.", ACME, "heating"),
        ("Hello, my shower drain is completely blocked.", ACME, "drains"),
        ("I'd like a quote to install a new water heater.", ACME, "installation"),
        ("I need to talk to someone about the bill you sent me.", ACME, "billing"),
        ("Our whole office network is down and nobody can work.", HELPIT, "outage"),
        ("I forgot my password", HELPIT, "account"),
        ("my printer won't print", HELPIT, "hardware"),
        ("Hi, I'd like to book a cleaning appointment.", BRIGHTSMILE, "appointment"),
        # A business with both: the cooling fault is not filed under heating.
        ("The air conditioning is blowing warm air and the house is baking.", HVAC, "cooling"),
        ("The furnace won't light and the radiators are cold.", HVAC, "heating"),
        # Categories nobody wrote word lists for.
        ("There are mice in my kitchen", ["pest control", "landscaping", "general"], "pest control"),
        ("Can you mow my lawn", ["pest control", "landscaping", "general"], "landscaping"),
        ("the toilet is clogged", ["Heating & Cooling", "Plumbing"], "Plumbing"),
        (
            "I'd like to book a room for two nights in October for our wedding anniversary.",
            ["reservation", "cancellation", "special request", "events", "billing", "general"],
            "reservation",
        ),
        # Not a home: the repair guide's examples are not all leaks and storms.
        (
            "The gears on my bike keep slipping when I go uphill, the chain has come off twice this week",
            ["repairs", "bike fitting", "new bikes", "rentals", "general"],
            "repairs",
        ),
        # The clause that says what is wrong counts on its own, away from the move that caused it.
        (
            "We moved house last month and our piano sounds awful now, it's badly out of tune, "
            "honestly nobody's touched it in about three years",
            ["tuning", "repairs", "restoration", "moving", "appraisal", "general"],
            "tuning",
        ),
        # Moving in is what rekeying is for, "locks" notwithstanding (heard: "in one all the locks rekey").
        (
            "We just bought a house in one all the locks rekey",
            ["lockout", "rekey", "installation", "automotive", "safes", "general"],
            "rekey",
        ),
        # Trades with words of their own, as the phone line let Whisper hear them ("swept" as "sweat").
        (
            "I'd like to get our chimney sweat before we start using the wood stove again this autumn",
            ["sweeping", "inspection", "repairs", "caps and liners", "general"],
            "sweeping",
        ),
        (
            "I'd like to get my outboard looked over before the season starts, change the oil, put in a new "
            "impeller, fresh plugs, that kind of thing. Nothing's actually wrong with it",
            ["engine repair", "annual service", "hull and gelcoat", "electronics", "winter storage", "general"],
            "annual service",
        ),
        (
            "My mother passed away at the hospice early this morning and they've asked us which funeral home "
            "will be taken care of her",
            ["immediate arrangements", "pre-planning", "cremation", "memorial services", "billing", "general"],
            "immediate arrangements",
        ),
        (
            "The tables and chairs we rented for my daughter's graduation party today still haven't arrived, "
            "the guests get here at 2",
            ["new booking", "delivery", "damaged items", "billing", "general"],
            "delivery",
        ),
    ],
)
def test_reasons_go_to_the_category_that_covers_them(
    embedder: MiniLMEmbedder, reason: str, categories: list[str], category: str
) -> None:
    assert classify(embedder, categories, reason) == category


DENTAL = ["emergency", "cleaning", "cosmetic", "orthodontics", "billing", "general"]


def test_an_urgent_call_goes_to_the_emergency_category_when_there_is_one(embedder: MiniLMEmbedder) -> None:
    reason = "I have a really bad toothache and my jaw is starting to get swelling"
    dental = CategoryClassifier(category_guides(DENTAL), embedder)

    assert dental.classify(reason).name == "orthodontics"  # what the words alone are nearest
    assert dental.classify(reason, urgent=True) == CategoryChoice(name="emergency", confidence=1.0)
    # A business without one: the urgent call is classified like any other.
    acme = CategoryClassifier(category_guides(ACME), embedder)
    assert acme.classify("Our boiler stopped and we have no heat", urgent=True).name == "heating"
    assert CategoryClassifier(category_guides(["Emergencies", "general"]), embedder).classify(
        "water everywhere", urgent=True
    ) == CategoryChoice(name="Emergencies", confidence=1.0)


def test_nothing_close_goes_to_general_for_review(embedder: MiniLMEmbedder) -> None:
    choice = CategoryClassifier(category_guides(ACME), embedder).classify("My garage door is stuck halfway")
    assert choice.name == "general"
    assert choice.review is True
    assert choice.confidence < CONFIDENCE_THRESHOLD


def test_no_reason_is_general_without_review(embedder: MiniLMEmbedder) -> None:
    choice = CategoryClassifier(category_guides(ACME), embedder).classify("")
    assert (choice.name, choice.confidence, choice.review) == ("general", 0.0, False)


def test_a_business_without_general_falls_back_to_its_first_category(embedder: MiniLMEmbedder) -> None:
    assert CategoryClassifier(category_guides(["lawns", "trees"]), embedder).fallback == "lawns"
    assert CategoryClassifier([], embedder).classify("anything").name == "general"


def test_the_business_description_decides(embedder: MiniLMEmbedder) -> None:
    """A category whose name says nothing is found through the business's description and examples."""
    custom = {"team b": {"description": "anything about swimming pools: pumps, filters, green water"}}
    guides = category_guides(["team a", "team b", "general"], custom)
    assert guides[1] == CategoryGuide(
        name="team b", description="anything about swimming pools: pumps, filters, green water"
    )
    choice = CategoryClassifier(guides, embedder).classify("The water in our pool has turned green.")
    assert choice.name == "team b"
    assert choice.review is False


def test_learned_examples_join_the_guide() -> None:
    guides = category_guides(["quote", "general"], learned={"quote": ["How much for a two bed flat?"]})
    assert guides[0].examples[-1] == "How much for a two bed flat?"
    assert guides[0].description == DEFAULT_GUIDES["quote"][0]


def test_own_examples_replace_the_defaults() -> None:
    guides = category_guides(["quote"], {"quote": {"description": "", "examples": ["price for a job"]}})
    assert guides[0].examples == ("price for a job",)
    assert guides[0].description == DEFAULT_GUIDES["quote"][0]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("billing", "bill"),
        ("Tires", "tire"),
        ("vaccinations", "vaccin"),
        ("Pest Control", "pest"),
        ("rekey", "rekey"),
        ("Reservations", "reserv"),
        ("sweeping", "sweep"),
        ("annual service", "annual"),
        ("immediate arrangements", "immediate"),
    ],
)
def test_default_guides_by_stem(name: str, key: str) -> None:
    assert default_guide(name).description == DEFAULT_GUIDES[key][0]


def test_unknown_names_have_no_default() -> None:
    assert default_guide("zorbing") == CategoryGuide(name="zorbing")


def test_a_default_goes_only_where_its_word_means_it() -> None:
    assert default_guide("membership freeze").description == DEFAULT_GUIDES["freez"][0]
    assert default_guide("refrigerator and freezer").description == ""  # a freezer is not a freeze
    assert default_guide("changes and rebooking").description == DEFAULT_GUIDES["rebook"][0]
    assert default_guide("oil change").description == DEFAULT_GUIDES["oil"][0]  # not a rebooking


class FixedEmbedder:
    """Maps known texts to fixed unit vectors, to test the scoring rule exactly."""

    name = "fixed"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, texts: Sequence[str]) -> Float32:
        rows = [np.array(self.vectors[t], dtype=np.float32) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


def test_close_runner_up_is_flagged_for_review() -> None:
    embedder = FixedEmbedder(
        {
            "alpha: one": [1.0, 0.0, 0.0],
            "beta: two": [0.0, 1.0, 0.0],
            "either": [1.0, 0.99, 0.0],
            "alpha": [0.0, 0.0, 1.0],
            "beta": [0.0, 0.0, 1.0],
        }
    )
    guides = [CategoryGuide("alpha", "one"), CategoryGuide("beta", "two")]
    choice = CategoryClassifier(guides, embedder).classify("either")
    assert choice.name == "alpha"
    assert choice.review is True
    assert choice.confidence == pytest.approx(1 / np.sqrt(1 + 0.99**2), abs=1e-4)
