"""Names from spelled letters, checked against a lexicon of real first names and surnames.

Spelling over an 8 kHz line is lossy in a known way: the letters that rhyme
("B, C, D, E, G, P, T, V, Z"), "S"/"F", "M"/"N" blur into each other, and a
letter is now and then dropped or doubled. A person taking a name over the
phone fixes these with what they know of names: "N, O, B, A, K" is Novak.
The lexicon gives the agent that knowledge: about 100,000 first names and
surnames, each with how common it is, derived from the ``names-dataset``
package (MIT) by :func:`lexicon_build` at set-up.

A spelled word is compared with every lexicon name that could have been
heard as those letters (same "shape" with blurred letters merged, or one
letter more or fewer) and with the name as first spoken. The choice weighs
how far each candidate is from the letters heard, how common it is, and how
much it sounds like the spoken name.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import logging
import math
import os
import pickle
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Kind = Literal["first", "last"]
KINDS: tuple[Kind, ...] = ("first", "last")

# Letter-name classes a phone line confuses. A letter's class is its shape
# symbol; names with the same shape are candidates for each other.
_CONFUSABLE = ("bcdegptvz", "fsx", "mn", "ajk", "iy", "qu")
_SHAPE = str.maketrans({ch: group[0] for group in _CONFUSABLE for ch in group})
_SHAPE_SYMBOLS = sorted({ch.translate(_SHAPE) for ch in "abcdefghijklmnopqrstuvwxyz"})

_VOWEL = re.compile(r"[aeiouy]")

# A name makes the lexicon when it ranks this high in at least one country.
MAX_RANK = 1000
# Costs, in the same unit as a tenfold difference in how common a name is
# (``RANK_WEIGHT`` per decade of rank).
SAME_SHAPE_COST = 0.45  # one letter swapped for one it sounds like
OTHER_LETTER_COST = 2.0  # one letter swapped for an unlike one
GAP_COST = 1.2  # one letter dropped or added
DOUBLE_GAP_COST = 0.5  # "M, M" heard as one "M" (or one heard twice)
VOWEL_GAP_COST = 0.9  # "A" and "E" are short and get lost between other letters
RANK_WEIGHT = 0.4
# A letter string no lexicon knows: the longer, the less likely a name.
UNKNOWN_PRIOR = 1.0
UNKNOWN_PRIOR_PER_LETTER = 0.15
HEARD_WEIGHT = 1.6  # full agreement with the spoken name, at full confidence
HEARD_SHARPNESS = 3


def shape(letters: str) -> str:
    """``letters`` with letters a phone line confuses merged: "novak" and "nobak" share a shape."""
    return letters.translate(_SHAPE)


def _substitution_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return SAME_SHAPE_COST if shape(a) == shape(b) else OTHER_LETTER_COST


def _doubled(word: str, index: int) -> bool:
    letter = word[index]
    return (index > 0 and word[index - 1] == letter) or (index + 1 < len(word) and word[index + 1] == letter)


def _gap_cost(word: str, index: int) -> float:
    """Cost of the name's ``word[index]`` missing from what was heard."""
    if _doubled(word, index):
        return DOUBLE_GAP_COST
    return VOWEL_GAP_COST if word[index] in "ae" else GAP_COST


def _extra_cost(heard: str, index: int) -> float:
    """Cost of ``heard[index]`` not being in the name: a letter Whisper heard that was not spelled.

    Short vowels get lost, not invented: an extra "A" costs as much as any
    letter, or "S, R, E, Y, A" would read as the name "Srey" with a stray A.
    """
    return DOUBLE_GAP_COST if _doubled(heard, index) else GAP_COST


def letters_cost(heard: str, name: str) -> float:
    """How unlikely it is that ``name`` was spelled and ``heard`` came out (weighted edit distance).

    Besides swapped, dropped and added letters, Whisper stutters: it repeats
    a pair or three of letters it has just written ("T-A-T-A-T-E-L"); such a
    repeat in ``heard`` costs as little as a doubled letter.
    """
    rows = [[0.0]]
    for j in range(len(name)):
        rows[0].append(rows[0][j] + _gap_cost(name, j))
    for i, a in enumerate(heard, start=1):
        previous = rows[i - 1]
        extra = _extra_cost(heard, i - 1)
        current = [previous[0] + extra]
        for j, b in enumerate(name, start=1):
            current.append(
                min(
                    previous[j] + extra,
                    current[j - 1] + _gap_cost(name, j - 1),
                    previous[j - 1] + _substitution_cost(a, b),
                )
            )
        for k in (2, 3):
            if i >= 2 * k and heard[i - k : i] == heard[i - 2 * k : i - k]:
                current = [min(c, r + DOUBLE_GAP_COST) for c, r in zip(current, rows[i - k], strict=True)]
        rows.append(current)
    return rows[-1][-1]


@dataclass(frozen=True, slots=True)
class Choice:
    """The name chosen for one spelled word, and how good a choice it is (higher is better)."""

    name: str
    score: float


class NameLexicon:
    """First names and surnames with their commonness, indexed by shape."""

    def __init__(self, entries: Iterable[tuple[Kind, str, str, int]]) -> None:
        self._entries: dict[Kind, dict[str, tuple[str, int]]] = {kind: {} for kind in KINDS}
        self._by_shape: dict[Kind, dict[str, list[str]]] = {kind: {} for kind in KINDS}
        for kind, key, display, rank in entries:
            known = self._entries[kind].get(key)
            if known is None or rank < known[1]:
                self._entries[kind][key] = (display, rank)
            if known is None:
                self._by_shape[kind].setdefault(shape(key), []).append(key)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def rank(self, key: str, kinds: Sequence[Kind] = KINDS) -> int | None:
        """How common ``key`` is as a name (1 is the commonest), or None for no known name.

        The lexicon's vowel-less entries are abbreviations ("Md" for Mohammed
        ranks first in Bangladesh), not names anyone spells or says: none is
        known. At no cost they split "Ngozi Eze" into "Md Ociece", and put a
        heard "MBK" back over a spelled "Mbeki".
        """
        if not _VOWEL.search(key):
            return None
        ranks = [entry[1] for kind in kinds if (entry := self._entries[kind].get(key))]
        return min(ranks) if ranks else None

    def names(self, kind: Kind) -> list[str]:
        """Every name of ``kind`` as written, commonest first."""
        entries = self._entries[kind].values()
        return [display for display, _rank in sorted(entries, key=lambda entry: (entry[1], entry[0]))]

    def display(self, key: str, kinds: Sequence[Kind] = KINDS) -> str:
        """``key`` as the name is written: the lexicon's form, with the prefixes of surnames restored.

        An apostrophe goes only into a surname: "Oneil" is a first name, O'Neil a surname.
        """
        surname = "last" in kinds and ("first" not in kinds or key not in self._entries["first"])
        for kind in KINDS:
            entry = self._entries[kind].get(key)
            if entry is not None:
                return " ".join(_written(word, surname=surname) for word in entry[0].split(" "))
        return _written(key[:1].upper() + key[1:], surname=surname)

    def neighbours(self, letters: str, kinds: Sequence[Kind] = KINDS) -> set[str]:
        """Names that could have been heard as ``letters``: same shape, or one letter more or fewer."""
        word_shape = shape(letters)
        shapes = {word_shape}
        shapes.update(word_shape[:i] + word_shape[i + 1 :] for i in range(len(word_shape)))
        shapes.update(
            word_shape[:i] + symbol + word_shape[i:] for i in range(len(word_shape) + 1) for symbol in _SHAPE_SYMBOLS
        )
        found: set[str] = set()
        for kind in kinds:
            index = self._by_shape[kind]
            for candidate_shape in shapes:
                found.update(index.get(candidate_shape, ()))
        return found

    def prior(self, key: str, kinds: Sequence[Kind] = KINDS) -> float:
        """Cost of ``key`` being a name at all: rarer names cost more, unknown strings most."""
        rank = self.rank(key, kinds)
        if rank is None:
            return UNKNOWN_PRIOR + UNKNOWN_PRIOR_PER_LETTER * len(key)
        return RANK_WEIGHT * math.log10(rank)

    def choose(
        self, letters: str, *, kinds: Sequence[Kind] = KINDS, heard: str = "", heard_confidence: float = 0.0
    ) -> Choice:
        """The likeliest name behind spelled ``letters``, given the name as first ``heard``.

        Candidates are the letters themselves (if pronounceable), lexicon
        names that sound like them, and the heard word.
        """
        candidates = self.neighbours(letters, kinds)
        if pronounceable(letters):
            candidates.add(letters)
        if heard and pronounceable(heard):
            candidates.add(heard)
        if not candidates:
            return Choice(letters, -self.prior(letters, kinds))
        trust = min(1.0, heard_confidence + 0.3) if heard else 0.0

        def score(candidate: str) -> float:
            # Cubed: agreeing exactly with what was heard counts far more than nearly.
            agreement = difflib.SequenceMatcher(None, candidate, heard).ratio() ** HEARD_SHARPNESS if heard else 0.0
            return -letters_cost(letters, candidate) - self.prior(candidate, kinds) + HEARD_WEIGHT * trust * agreement

        best = max(sorted(candidates), key=score)
        return Choice(self.display(best, kinds), score(best))


# The lexicon's source writes names without apostrophes ("Osullivan", "Dsouza") and with
# one capital ("Mcdonald"). Only these stems are written with the apostrophe: a rule on
# the letters alone would also make "O'Sorto" of Osorto and "O'Poku" of Opoku.
_O_STEM_LIST = (
    "boyle brian brien callaghan carroll casey connell connor dea doherty donnell donoghue donovan dowd "
    "driscoll dwyer farrell flaherty gorman grady halloran hanlon hara hare keefe keeffe kane kelly leary "
    "loughlin mahony mahoney malley mara meara neal neil neill regan reilly riordan rourke shaughnessy shea "
    "sullivan toole"
)
_D_STEM_LIST = "alessandro amato amico angelo arcy costa souza silva"
_O_STEMS, _D_STEMS = frozenset(_O_STEM_LIST.split()), frozenset(_D_STEM_LIST.split())


def _written(word: str, *, surname: bool) -> str:
    """One name word with the capitals and apostrophe of its prefix: McDonald, O'Sullivan, D'Souza."""
    lower = word.lower()
    if re.fullmatch(r"mc[a-z]{2,}", lower):
        return "Mc" + lower[2].upper() + word[3:]
    if surname and lower[:1] in ("o", "d") and lower[1:] in (_O_STEMS if lower[0] == "o" else _D_STEMS):
        return f"{word[0].upper()}'{lower[1].upper()}{word[2:]}"
    return word


# Consonant pairs a name can start with (English spellings of names from
# anywhere: "Zh"ang, "Kw"ame, "Ng"ozi); "Rl"..., "Tg"... are mishearings.
_ONSET_LIST = (
    "bh bl br ch cl cr dh dj dr dw dz fl fr gh gl gn gr gw jh kh kl kn kr kw ll mb mc mh mw nd ng nk nw ny "
    "ph pl pr ps qu rh sc sh sk sl sm sn sp sr st sv sw sz th tr ts tw ty vl vr wh wr xh zh zw"
)
_ONSETS = frozenset(_ONSET_LIST.split())


def pronounceable(word: str) -> bool:
    """Could ``word`` be a name as written: a vowel, no five consonants in a row, a name-like start."""
    if not re.search(r"[aeiouy]", word) or re.search(r"[^aeiouy]{5}", word):
        return False
    onset = re.match(r"[^aeiouy]*", word)
    cluster = onset.group(0) if onset else ""
    return len(cluster) < 2 or cluster[:2] in _ONSETS


def _kinds_for(position: int, count: int) -> tuple[Kind, ...]:
    if count >= 2 and position == 0:
        return ("first",)
    if count >= 2 and position == count - 1:
        return ("last",)
    return KINDS


# A split that follows a pause the caller made is likelier than one that does not.
UNMARKED_SPLIT_COST = 0.3
# Asked for their name, callers give a first name and a surname: one word
# from a whole spelling is unlikely unless one word was heard, and less
# likely still when the caller paused between the words.
ONE_WORD_COST = 1.2
MERGED_PAUSE_COST = 0.6


def name_from_letters(
    groups: Sequence[str], *, heard: Sequence[str] = (), heard_confidence: float = 0.0, lexicon: NameLexicon
) -> list[str]:
    """The words of a spelled name, from letter groups split where the caller paused.

    The caller's pauses are a hint, not the truth: Whisper runs letters
    together and splits them wrongly, so every split of the letters into
    one or two words is tried, as well as the groups as heard, and the best
    scoring reading wins.
    """
    letters = "".join(groups)
    boundaries = set()
    position = 0
    for group in groups[:-1]:
        position += len(group)
        boundaries.add(position)

    def reading_score(words: Sequence[str]) -> tuple[float, list[str]]:
        total = 0.0
        names: list[str] = []
        count = len(words)
        start = 0
        for i, word in enumerate(words):
            heard_word = _heard_for((start, start + len(word)), len(letters), heard, count, i)
            start += len(word)
            choice = lexicon.choose(
                word, kinds=_kinds_for(i, count), heard=heard_word, heard_confidence=heard_confidence
            )
            total += choice.score
            names.append(choice.name)
        return total, names

    # One word heard is a one-word name only if it is about as long as the spelling: "Caller",
    # all that was taken from "caller us me", is not "T, A, L, E, R, U, S, M, E" in one word.
    one_word_heard = len(heard) == 1 and abs(len(heard[0]) - len(letters)) <= 2

    def one_word_cost(marked_pause: bool) -> float:
        return (0.0 if one_word_heard else ONE_WORD_COST) + (MERGED_PAUSE_COST if marked_pause else 0.0)

    first_score, first_names = reading_score(groups)
    readings: list[tuple[float, list[str]]] = [
        (first_score - (one_word_cost(False) if len(groups) == 1 else 0.0), first_names)
    ]
    if len(groups) != 1:
        total, names = reading_score([letters])
        readings.append((total - one_word_cost(True), names))
    for cut in range(2, len(letters) - 1):
        head, tail = letters[:cut], letters[cut:]
        split_cost = 0.0 if cut in boundaries else UNMARKED_SPLIT_COST
        if [head, tail] != list(groups):
            total, names = reading_score([head, tail])
            readings.append((total - split_cost, names))
        if letters[cut - 1] == letters[cut - 2]:
            continue
        # "Vikram. Malhotra" spelled "M. M" across the break is often heard as one M:
        # the letter may end the first word and start the second.
        total, names = reading_score([head, letters[cut - 1 :]])
        readings.append((total - split_cost - DOUBLE_GAP_COST, names))
    return max(readings, key=lambda reading: reading[0])[1]


def name_reading_score(
    words: Sequence[str],
    letter_readings: Sequence[str],
    *,
    heard: Sequence[str] = (),
    heard_confidence: float = 0.0,
    lexicon: NameLexicon,
) -> float:
    """How well the name ``words`` explains several readings of one spelling (higher is better).

    Each reading is the letters one recognizer pass heard, run together;
    they count as independent evidence, like :meth:`NameLexicon.choose`
    weighs one.
    """
    letters = "".join(name_key(word) for word in words)
    cost = sum(letters_cost(reading, letters) for reading in letter_readings)
    prior = sum(lexicon.prior(name_key(word), _kinds_for(i, len(words))) for i, word in enumerate(words))
    heard_letters = "".join(heard)
    if not heard_letters:
        return -cost - prior
    trust = min(1.0, heard_confidence + 0.3)
    agreement = difflib.SequenceMatcher(None, letters, heard_letters).ratio() ** HEARD_SHARPNESS
    return -cost - prior + HEARD_WEIGHT * trust * agreement


def _heard_for(span: tuple[int, int], total: int, heard: Sequence[str], count: int, position: int) -> str:
    """The part of the heard name that lines up with the spelled word covering letters ``span`` of ``total``."""
    if not heard:
        return ""
    if count == len(heard):
        return heard[position]
    # Word breaks heard and spelled disagree ("Noralindkist"): line the two
    # up by letter position instead.
    joined = "".join(heard)
    start, end = span
    return joined[round(start * len(joined) / total) : round(end * len(joined) / total)]


# -- the lexicon file ----------------------------------------------------------------


def name_key(name: str) -> str:
    """A name as the lexicon keys it: lower-case letters only ("O'Brien" -> "obrien")."""
    return re.sub(r"[^a-z]", "", name.lower())


# Plain letters, with the apostrophes, hyphens and spaces of names such as O'Brien, Jean-Luc and
# De Vries (spelled as one word, "D, E, V, R, I, E, S", or as two).
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z'\-]*(?: [A-Za-z][A-Za-z'\-]*){0,2}")


def _dataset_entries(source: Path) -> Iterator[tuple[Kind, str, str, int]]:
    for kind in KINDS:
        with gzip.open(source / f"{kind}_names.pkl.gz", "rb") as handle:
            table = pickle.load(handle)  # noqa: S301 - the file comes from a pinned, hash-checked wheel
        for name, info in table.items():
            ranks = [rank for rank in (info.get("rank") or {}).values() if rank]
            if not ranks or min(ranks) > MAX_RANK or not _PLAIN_NAME.fullmatch(name):
                continue
            key = name_key(name)
            if len(key) >= 2:
                yield kind, key, name[:1].upper() + name[1:], min(ranks)


def dataset_dir() -> Path:
    """Where the installed ``names-dataset`` keeps its tables (importing the package itself loads them all)."""
    import importlib.util

    spec = importlib.util.find_spec("names_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the names-dataset package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "v3"


def lexicon_build(out: Path, source: Path | None = None) -> int:
    """Write the compact name lexicon (TSV, gzip) from ``names-dataset``; returns the number of entries."""
    source = source or dataset_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    best: dict[tuple[Kind, str], tuple[str, int]] = {}
    for kind, key, display, rank in _dataset_entries(source):
        known = best.get((kind, key))
        if known is None or rank < known[1]:
            best[(kind, key)] = (display, rank)
    partial = out.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as handle:
        for (kind, key), (display, rank) in sorted(best.items()):
            handle.write(f"{kind}\t{key}\t{display}\t{rank}\n")
    partial.replace(out)
    return len(best)


def lexicon_load(path: Path) -> NameLexicon:
    def entries() -> Iterator[tuple[Kind, str, str, int]]:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                kind, key, display, rank = line.rstrip("\n").split("\t")
                yield ("first" if kind == "first" else "last"), key, display, int(rank)

    return NameLexicon(entries())


# The file name carries the build rules' version, so a checkout that changes them rebuilds it.
def lexicon_path() -> Path:
    """Where the lexicon lives: ``$NAME_LEXICON_PATH``, else ``var/name-lexicon-v2.tsv.gz`` in the project."""
    configured = os.environ.get("NAME_LEXICON_PATH")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "var" / "name-lexicon-v2.tsv.gz"


@functools.cache
def name_lexicon() -> NameLexicon:
    """The process-wide lexicon from :func:`lexicon_path`; empty (with a warning) if not built."""
    path = lexicon_path()
    if not path.is_file():
        logger.warning("name lexicon %s missing (run manage.py name_lexicon_build); names go unchecked", path)
        return NameLexicon(())
    return lexicon_load(path)
