"""The scenario corpus and its tune / held-out split.

``scenarios/corpus/`` holds scenarios (format v1) for many kinds of business
and caller. They were split in two before any tuning: the product may be
tuned against the "tune" half; the "heldout" half measures it, and nobody
reads its results while tuning. ``split.json`` records the split, the seed
and the method, and ``split_corpus`` recomputes it, so a test can prove the
manifest is what the seeded shuffle gives and covers every file once.

The split is balanced: every business gives half its scenarios to each
side, and each difficulty is shared out as evenly as that allows; the seed
decides everything else.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from voicedesk.simulator.scenario import FACT_FIELDS, Scenario, ScenarioError, load_scenarios

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
CORPUS_DIR: Final = PROJECT_ROOT / "scenarios" / "corpus"
SPLIT_FILE: Final = CORPUS_DIR / "split.json"
SHARED_DIR: Final = PROJECT_ROOT.parent / "shared" / "scenarios"
HALVES: Final = ("tune", "heldout")
SET_NAMES: Final = (*HALVES, "all", "shared")
SPLIT_METHOD: Final = (
    "random.Random(seed): shuffle the businesses, and each business's scenarios within each difficulty "
    "(plain, tricky, hard); give each business half to each side, each scenario to the side with fewer of "
    "its difficulty so far, a seeded coin on a tie (voicedesk.simulator.corpus.split_corpus)"
)

Difficulty = Literal["plain", "tricky", "hard"]
DIFFICULTIES: Final[tuple[Difficulty, ...]] = ("plain", "tricky", "hard")
_DIGITS_ONLY: Final = re.compile(r"^[\d\s().+-]+$")
_SENTENCE: Final = re.compile(r"[^.!?]+[.!?]*")


@dataclass(frozen=True, slots=True)
class Split:
    """Which corpus scenario ids are for tuning and which are held out."""

    seed: int
    tune: tuple[str, ...]
    heldout: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The manifest as written to ``split.json``."""
        return {"seed": self.seed, "method": SPLIT_METHOD, "tune": list(self.tune), "heldout": list(self.heldout)}


def difficulty(scenario: Scenario) -> Difficulty:
    """How hard a call is: "plain" has none of the hard features, "tricky" one, "hard" more.

    Hard features: a caller quirk (behaviour), a number not said as plain
    digits, a fact the business collects that the caller lacks, a correction
    at read-back, an opening line that is only a question, one utterance with
    two questions, and a question the FAQ cannot answer.
    """
    caller = scenario.caller
    behaviour = caller.behaviour
    number = caller.facts.get("callback_number", "")
    lacking = [f for f in scenario.tenant.collect or () if f in FACT_FIELDS and f not in caller.facts]
    opening = [s.strip() for s in _SENTENCE.findall(caller.says_first) if s.strip(" .!?,")]
    features = [
        any(
            (
                behaviour.silent_start,
                behaviour.hangs_up_after is not None,
                behaviour.interrupts_greeting,
                behaviour.wants_human,
                behaviour.volunteers_all,
            )
        ),
        bool(number) and not _DIGITS_ONLY.match(number),
        bool(lacking),
        isinstance(caller.confirms, dict),
        bool(opening) and all(s.endswith("?") for s in opening),
        any(_two_questions(line) for line in (caller.says_first, *caller.asks)),
        bool(scenario.expect.unanswered_questions),
    ]
    score = sum(features)
    return "plain" if score == 0 else "tricky" if score == 1 else "hard"


def _two_questions(line: str) -> bool:
    """One utterance asking two things: two questions, or one joined with "and" + a verb question."""
    questions = [s for s in _SENTENCE.findall(line) if s.strip().endswith("?")]
    return len(questions) >= 2 or any(
        re.search(r",\s*(?:and|or)\s+(?:do|does|can|could|are|is|when|what|which|how|where)\b", q, re.IGNORECASE)
        for q in questions
    )


def split_corpus(scenarios: Sequence[Scenario], seed: int) -> Split:
    """The balanced seeded split of ``scenarios`` (see the module docstring); ids sorted in each half."""
    rng = random.Random(seed)
    by_business: dict[str, dict[Difficulty, list[str]]] = defaultdict(lambda: {d: [] for d in DIFFICULTIES})
    for scenario in sorted(scenarios, key=lambda s: s.id):
        by_business[scenario.tenant.slug][difficulty(scenario)].append(scenario.id)
    slugs = sorted(by_business)
    rng.shuffle(slugs)
    halves: dict[str, list[str]] = {half: [] for half in HALVES}
    per_level = {(half, level): 0 for half in HALVES for level in DIFFICULTIES}
    for slug in slugs:
        dealt: list[tuple[str, Difficulty]] = []
        for level in DIFFICULTIES:
            group = by_business[slug][level]
            rng.shuffle(group)
            dealt += [(scenario_id, level) for scenario_id in group]
        # Half of the business each way; an odd one out goes to a seeded side.
        extra = rng.randrange(2)
        quota = {half: len(dealt) // 2 + (len(dealt) % 2 if i == extra else 0) for i, half in enumerate(HALVES)}
        for scenario_id, level in dealt:
            open_halves = [half for half in HALVES if quota[half] > 0]
            if len(open_halves) == 1:
                half = open_halves[0]
            else:
                # The half with fewer of this difficulty so far; a seeded coin on a tie.
                tune, held = per_level[("tune", level)], per_level[("heldout", level)]
                half = "tune" if tune < held else "heldout" if held < tune else HALVES[rng.randrange(2)]
            halves[half].append(scenario_id)
            quota[half] -= 1
            per_level[(half, level)] += 1
    return Split(seed=seed, tune=tuple(sorted(halves["tune"])), heldout=tuple(sorted(halves["heldout"])))


def load_split(path: Path = SPLIT_FILE) -> Split:
    """Read the split manifest; ``ScenarioError`` if it is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Split(seed=int(data["seed"]), tune=tuple(data["tune"]), heldout=tuple(data["heldout"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(f"{path}: not a readable split manifest: {exc}") from exc


def scenario_set(name: str, *, corpus_dir: Path = CORPUS_DIR, shared_dir: Path = SHARED_DIR) -> list[Scenario]:
    """The scenarios of set ``name``: "tune", "heldout", "all" (the corpus), "shared", or a file or directory."""
    if name == "shared":
        return load_scenarios([shared_dir])
    if name not in (*HALVES, "all"):
        return load_scenarios([name])
    everything = load_scenarios([corpus_dir])
    if name == "all":
        return everything
    split = load_split(corpus_dir / SPLIT_FILE.name)
    wanted = set(split.tune if name == "tune" else split.heldout)
    unknown = wanted - {s.id for s in everything}
    if unknown:
        raise ScenarioError(f"the split names scenarios that are not in {corpus_dir}: {', '.join(sorted(unknown))}")
    return [s for s in everything if s.id in wanted]
