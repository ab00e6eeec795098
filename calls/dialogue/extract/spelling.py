"""Spelled names: letters as Whisper writes them, rebuilt into a name."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from calls.dialogue.extract.names import title_word
from calls.dialogue.extract.text import APOSTROPHES
from calls.dialogue.names import (
    GAP_COST,
    KINDS,
    SAME_SHAPE_COST,
    Kind,
    NameLexicon,
    letters_cost,
    name_from_letters,
    name_key,
    name_lexicon,
    name_reading_score,
    pronounceable,
)

_LETTER_NAMES = {
    "ay": "a", "eh": "a", "be": "b", "bee": "b", "see": "c", "sea": "c", "cee": "c", "si": "c",
    "dee": "d", "de": "d", "ee": "e", "ef": "f", "eff": "f", "gee": "g", "jee": "g", "aitch": "h",
    "haitch": "h", "eye": "i", "aye": "i", "jay": "j", "kay": "k", "el": "l", "ell": "l", "em": "m",
    "en": "n", "oh": "o", "owe": "o", "pee": "p", "pea": "p", "queue": "q", "cue": "q", "kyu": "q",
    "ar": "r", "are": "r", "arr": "r", "es": "s", "ess": "s", "tee": "t", "tea": "t", "you": "u",
    "yu": "u", "vee": "v", "ex": "x", "why": "y", "wye": "y", "zee": "z", "zed": "z",
}  # fmt: skip
# Separator strength between two spelled letters: a word that is not a
# letter > sentence punctuation > comma > space > hyphen. Separators
# stronger than the commonest one mark the word breaks.
_SEP_RANK = {"#": 5, ".": 4, ";": 4, "!": 4, "?": 4, ",": 3, " ": 2, "-": 1}
# The longest capitalised "word" read as spelled letters (longer is more likely a shout).
MAX_CAPITAL_RUN = 15
_AS_IN = re.compile(r"\b([a-z]{1,5})\s+(?:as in|for|like)\s+([a-z]+)\b", re.IGNORECASE)


def _letter(word: str) -> str | None:
    if len(word) == 1 and word.isalpha():
        return word
    if word in ("okay", "ok"):
        return "ok"  # "O, K" as Whisper likes to hear it
    return _LETTER_NAMES.get(word)


def _spelling_tokens(text: str, *, capitals_are_letters: bool) -> list[str]:
    """Words, separators and spaces of ``text``, lower-cased; short all-capital words become letters.

    Whisper writes spelled letters as one capitalised "word" ("Okay, AFOR"
    for "O, K, A, F, O, R", "CH" for "C, H", "PRIYANKA, R-H-H-U-N..." for a
    whole first name): capitals in a row are letters, run together as if
    hyphenated.
    """
    tokens: list[str] = []
    for tok in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?|[.,;!?-]|\s+", text):
        if capitals_are_letters and 2 <= len(tok) <= MAX_CAPITAL_RUN and tok.isalpha() and tok.isupper():
            tokens.extend("-".join(tok.lower()))
        else:
            tokens.append(tok.lower())
    # "M, E, and D, O": between two letters, "and" is the letter N.
    words = [i for i, tok in enumerate(tokens) if tok.isalpha()]
    for before, at, after in zip(words, words[1:], words[2:], strict=False):
        if tokens[at] == "and" and len(tokens[before]) == 1 and len(tokens[after]) == 1:
            tokens[at] = "n"
    return tokens


def spelled_letters(text: str, *, spelling: bool = False) -> list[list[str]]:
    """The spelled letters of ``text`` grouped into words, e.g. [["m","a","r","i","a"], [...]].

    ``spelling``: the caller was asked to spell, so short capital runs
    ("AFOR") are letters too; elsewhere they are words ("my AC and TV").
    """
    t = text.translate(APOSTROPHES)
    t = re.sub(r"\bdouble[\s-]?(?:u|you)\b", "w", t, flags=re.IGNORECASE)

    def as_in(m: re.Match[str]) -> str:
        letter = _letter(m.group(1).lower())
        return letter if letter and letter == m.group(2)[0].lower() else m.group(0)

    # "P as in Peter": keep the letter, drop the example word.
    t = _AS_IN.sub(as_in, t)
    items: list[tuple[str, int]] = []  # letter, rank of the gap before it
    gap = 0
    repeat = 1
    for tok in _spelling_tokens(t, capitals_are_letters=spelling):
        if tok.isspace() or tok in _SEP_RANK:
            gap = max(gap, _SEP_RANK[" " if tok.isspace() else tok])
            continue
        if tok in ("double", "triple"):
            repeat = 2 if tok == "double" else 3
            continue
        letter = _letter(tok)
        if letter is None:
            gap = _SEP_RANK["#"]
            repeat = 1
            continue
        items.append((letter[0], gap))
        # "double S", "okay": one spoken unit, with no pause inside.
        items.extend((single, 0) for single in (letter * repeat)[1:])
        gap = 0
        repeat = 1
    # A word that is not a letter ("last name", "I spell it") always ends a
    # group; stray single letters around such words ("I", "a") are not spelling.
    segments: list[list[tuple[str, int]]] = []
    for item in items:
        if not segments or item[1] == _SEP_RANK["#"]:
            segments.append([])
        segments[-1].append(item)
    groups: list[list[str]] = []
    for segment in (s for s in segments if len(s) >= 2):
        gaps = [rank for _, rank in segment[1:]]
        # The caller's usual pause is between letters; a longer one is a word break.
        paused = [rank for rank in gaps if rank] or [0]
        usual = max(set(paused), key=lambda rank: (paused.count(rank), rank))
        split_at = {i + 1 for i, g in enumerate(gaps) if g > usual}
        groups.append([])
        for i, (letter, _) in enumerate(segment):
            if i in split_at:
                groups.append([])
            groups[-1].append(letter)
    return groups


def spelled_name(
    text: str, heard: str = "", heard_confidence: float = 0.0, alternatives: Sequence[str] = ()
) -> str | None:
    """Rebuild a name from spelled letters, or None if ``text`` is not spelling.

    Word breaks come from the caller's pauses as Whisper punctuates them
    ("M, A, R, I, A. G, O, N..."), but Whisper also runs letters together,
    so other splits are weighed too. Each word is checked against the
    lexicon of real names and against the name as first ``heard`` (with the
    recognizer's ``heard_confidence``): see ``calls.dialogue.names``.
    ``alternatives`` are other readings of the same audio (letters only);
    the name that best explains all the readings together wins.
    """
    name = _name_from_spelling(text, heard, heard_confidence)
    if name is None or not alternatives:
        return name

    def letters_of(reading: str) -> str:
        return "".join("".join(g) for g in spelled_letters(reading, spelling=True))

    main_letters = letters_of(text)
    # A letters-only decode that stopped early (or ran on) heard a different
    # extent of the spelling: only comparable readings are weighed together.
    comparable = [
        alternative
        for alternative in alternatives
        if abs(len(letters_of(alternative)) - len(main_letters)) <= max(2, len(main_letters) // 5)
    ]
    if not comparable:
        return name
    letter_readings = [main_letters, *(letters_of(r) for r in comparable)]
    candidates = dict.fromkeys(
        [name, *(n for r in comparable if (n := _name_from_spelling(r, heard, heard_confidence)))]
    )
    heard_words = [w.replace("'", "") for w in re.findall(r"[a-z]+(?:'[a-z]+)?", heard.lower())]
    lexicon = name_lexicon()

    def score(candidate: str) -> float:
        return name_reading_score(
            candidate.split(), letter_readings, heard=heard_words, heard_confidence=heard_confidence, lexicon=lexicon
        )

    return max(candidates, key=score)


def only_first_spelled(text: str, name: str) -> bool:
    """Whether the letters of ``text`` spell only the first word of ``name``.

    The rest of such a name came from the hearing the spelling was asked
    to fix ("H, A, R, J, I, T." for a heard "Hargic Bruced Ed").
    """
    letters = "".join("".join(g) for g in spelled_letters(text, spelling=True))
    words = [re.sub(r"[^a-z]", "", w.lower()) for w in name.split()]
    return (
        len(words) >= 2
        and difflib.SequenceMatcher(None, letters, words[0]).ratio() >= 0.7
        and len(letters) <= len("".join(words)) - 3
    )


def spelled_surname(text: str, heard: str = "", heard_confidence: float = 0.0, *, first: str = "") -> str | None:
    """A last name spelled on its own, as one word, or None if ``text`` is not spelling.

    ``heard`` is what was heard of the last name when the caller first said
    their whole name. A caller who spells their ``first`` name again before
    the last one has that word left out.
    """
    groups = ["".join(g) for g in spelled_letters(text, spelling=True)]
    first = first.lower()

    def like_first(letters: str) -> bool:
        return difflib.SequenceMatcher(None, letters, first).ratio() >= 0.6

    if len(groups) >= 2 and like_first(groups[0]):
        groups = groups[1:]
    letters = "".join(groups)
    if len(groups) == 1 and len(letters) >= len(first) + 2 and like_first(letters[: len(first)]):
        letters = letters[len(first) :]  # the whole name again, its pause lost
    if len(letters) < 2:
        return None
    heard_letters = re.sub(r"[^a-z]", "", heard.lower())
    choice = name_lexicon().choose(letters, kinds=("last",), heard=heard_letters, heard_confidence=heard_confidence)
    return title_word(choice.name)


def _name_from_spelling(text: str, heard: str, heard_confidence: float) -> str | None:
    groups = ["".join(g) for g in spelled_letters(text, spelling=True)]
    # Two "letters" are too easily an "okay" or "I see"; names spelled out have more.
    if sum(len(g) for g in groups) < 3:
        return None
    heard_words = re.findall(r"[a-z]+(?:'[a-z]+)?", heard.lower())
    lexicon = name_lexicon()
    whole_heard = "".join(heard_words).replace("'", "")
    # One word spelled for a name heard as two is a surname (or first name) alone only
    # when it is clearly shorter than the whole: "O, N, E, I, L, O, M, E, R" for a
    # heard "one o'lomer" is the whole name run together.
    if len(groups) == 1 and len(heard_words) >= 2 and len(groups[0]) <= len(whole_heard) - 3:
        word = groups[0]

        def like(a: str, b: str) -> float:
            return difflib.SequenceMatcher(None, a, b).ratio()

        def one_word_of(heard_word: str) -> bool:
            # A spelled surname alone looks like the heard surname, length and all.
            return like(word, heard_word) >= 0.6 and abs(len(word) - len(heard_word)) <= 2

        for position in (len(heard_words) - 1, 0):
            if one_word_of(heard_words[position]):
                kinds: tuple[Kind, ...] = ("last",) if position else ("first",)
                choice = lexicon.choose(
                    word, kinds=kinds, heard=heard_words[position], heard_confidence=heard_confidence
                )
                words = [title_word(w) for w in heard_words]
                words[position] = choice.name
                return " ".join(words)
    words = name_from_letters(
        groups, heard=[w.replace("'", "") for w in heard_words], heard_confidence=heard_confidence, lexicon=lexicon
    )
    # Letters carry no apostrophes: "O, B, R, I, E, N" heard as "O'Brien" keeps it.
    as_heard = {w.replace("'", ""): w for w in heard_words}
    return " ".join(title_word(as_heard.get(w.lower(), w)) for w in words)


# Letters that disagree with a clearly heard known name by at most this much
# (two rhyming letters, or one swap and a lost letter) are the line's fault,
# not the name's: "D, E, N, A, O, I" for a heard "Benali".
HEARD_NAME_KEEP_COST = 2.7


# The letter names that differ only in their first sound ("bee", "vee", "tee"...).
_RHYMING = frozenset("bcdegptvz")
# A word heard whole that no lexicon knows stands over its spelling a rhyming letter away only
# from this length: the longer the word, the less likely Whisper made it up ("Deb" for "Zeb").
RHYME_KEEP_MIN_LETTERS = 6


def heard_words_kept(spelled: str, heard: str) -> str:
    """``spelled``, with what only garbles the heard name put back as heard.

    A heard word is kept over its spelling when it is a known name and the
    letters are not, and they differ by little (``HEARD_NAME_KEEP_COST``);
    or when the letters are the heard word with letters lost and perhaps a
    rhyming letter blurred, and no name in themselves ("D, A, R, T, H, O, O,
    M, E, W" for a heard "Bartholomew"): a dropped letter is common on a
    phone line, an added one is not. The whole heard name is kept when every
    word of it is a known name and the spelling, some letters short, is
    not one: "N, A, D, E, N, A, O, I" for a heard "Nadia Benali".
    """
    spelled_words, heard_words = spelled.split(), re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?", heard)
    lexicon = name_lexicon()
    if _garbles_heard_name(spelled_words, heard_words, lexicon):
        return " ".join(title_word(word) for word in heard_words)
    if len(spelled_words) != len(heard_words):
        return spelled
    return " ".join(
        _heard_word_kept(word, heard_word, lexicon) for word, heard_word in zip(spelled_words, heard_words, strict=True)
    )


def _heard_word_kept(word: str, heard_word: str, lexicon: NameLexicon) -> str:
    letters, heard_key = name_key(word), name_key(heard_word)
    if letters == heard_key or len(heard_key) < 2:
        return word
    cost = letters_cost(letters, heard_key)
    known_heard = lexicon.rank(heard_key) is not None and lexicon.rank(letters) is None
    lost = len(heard_key) - len(letters)
    # ...unless the letters are a known name and the hearing is not: "Siobhan" spelled, "Siobhano" heard.
    known_letters = lexicon.rank(letters) is not None and lexicon.rank(heard_key) is None
    lost_letter = lost == 1 and cost <= GAP_COST and not known_letters
    letters_lost = (
        lost >= 1
        and lexicon.rank(letters) is None
        and pronounceable(heard_key)
        and cost <= GAP_COST * lost + SAME_SHAPE_COST
    )
    # Two known names a rhyming letter apart ("Tan" from "B, A, N", "Van" heard): the letters
    # fit either, and a whole word is heard more surely than one letter. So too for two
    # long words neither of which the lexicon knows ("Dartholomew" spelled, "Bartholomew" heard).
    swapped = [(a, b) for a, b in zip(letters, heard_key, strict=False) if a != b]
    neither_known = lexicon.rank(letters) is None and lexicon.rank(heard_key) is None
    rhyme_apart = (
        len(letters) == len(heard_key)
        and len(swapped) == 1
        and all(ch in _RHYMING for ch in swapped[0])
        and (
            lexicon.rank(heard_key) is not None
            or (neither_known and len(letters) >= RHYME_KEEP_MIN_LETTERS and pronounceable(heard_key))
        )
    )
    keep = (known_heard and cost <= HEARD_NAME_KEEP_COST) or lost_letter or letters_lost or rhyme_apart
    return title_word(heard_word) if keep else word


def _garbles_heard_name(spelled_words: Sequence[str], heard_words: Sequence[str], lexicon: NameLexicon) -> bool:
    """Whether the spelled name is the heard one with letters lost and others blurred, and no name itself."""
    if len(heard_words) < 2 or [name_key(w) for w in spelled_words] == [name_key(w) for w in heard_words]:
        return False
    kinds: list[tuple[Kind, ...]] = [("first",), *[KINDS] * (len(heard_words) - 2), ("last",)]
    if any(lexicon.rank(name_key(w), k) is None for w, k in zip(heard_words, kinds, strict=True)):
        return False
    if all(lexicon.rank(name_key(w)) is not None for w in spelled_words):
        return False
    letters, heard_letters = "".join(map(name_key, spelled_words)), "".join(map(name_key, heard_words))
    lost = len(heard_letters) - len(letters)
    return lost >= 2 and letters_cost(letters, heard_letters) <= GAP_COST * lost + HEARD_NAME_KEEP_COST
