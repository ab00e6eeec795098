"""Pull ticket fields and caller intents out of one noisy transcript.

Everything here is a pure function of its arguments (besides reading
MiniLM's word list once, and the optional embedder of ``categorize``). Input
is Whisper-style text: mostly punctuated, sometimes lower case, with
recognition errors ("for" for four, "to" for two, letters as "em a ar").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import phonenumbers

from calls.dialogue.names import Kind, name_from_letters, name_lexicon, name_reading_score
from calls.pipeline.protocols import TextEmbedder

Priority = Literal["low", "normal", "high", "urgent"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def normalize(text: str) -> str:
    """Lower-case, straight apostrophes, single spaces."""
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", normalize(text))


def _has(pattern: re.Pattern[str], text: str) -> bool:
    return bool(pattern.search(normalize(text)))


# --------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "niner": 9,
}  # fmt: skip
# Words Whisper writes for a spoken digit that are also ordinary words; they
# only count as digits next to an unambiguous number word.
_WEAK_UNITS = {"oh": 0, "o": 0, "to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "ate": 8, "tree": 3}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
_RUN_FILLERS = {"uh", "um", "er", "dash", "hyphen", "and"}


def _is_strong_number(word: str) -> bool:
    return (
        word.isdigit()
        or word in _UNITS
        or word in _TEENS
        or word in _TENS
        or word in _REPEATS
        or word in ("hundred", "thousand")
    )


def _digits_of_run(run: list[str]) -> str:
    """Spell out a run of number words as the digit string a caller meant.

    Single digits concatenate ("five five five" -> 555), while compounds add
    up the way people say grouped numbers ("five fifty-five" -> 555,
    "thirty-three forty-four" -> 3344, "two hundred one," -> 201). ``","``
    items are the caller's pauses: a digit right after "hundred" joins it only
    when a pause follows ("eight hundred five five five" -> 800555).
    """
    out: list[str] = []
    total = 0
    current = 0
    state = ""  # "", unit, teen, tens, done, hundred, thousand

    def flush() -> None:
        nonlocal total, current, state
        if state:
            out.append(str(total + current))
        total = current = 0
        state = ""

    i = 0
    while i < len(run):
        word = run[i]
        nxt = run[i + 1] if i + 1 < len(run) else ","
        if word == ",":
            flush()
        elif word.isdigit():
            flush()
            out.append(word)
        elif word in _REPEATS:
            digit = str(_UNITS.get(nxt, _WEAK_UNITS.get(nxt, ""))) if not nxt.isdigit() else nxt
            if digit:
                flush()
                out.append(digit * _REPEATS[word])
                i += 1
        elif word in _UNITS or word in _WEAK_UNITS:
            value = _UNITS.get(word, _WEAK_UNITS.get(word, 0))
            if state == "tens" or (state in ("hundred", "thousand") and nxt in (",", "hundred")):
                current += value
                state = "done"
            else:
                flush()
                current, state = value, "unit"
        elif word in _TEENS:
            if state in ("hundred", "thousand"):
                current += _TEENS[word]
                state = "done"
            else:
                flush()
                current, state = _TEENS[word], "teen"
        elif word in _TENS:
            if state in ("hundred", "thousand"):
                current += _TENS[word]
            else:
                flush()
                current = _TENS[word]
            state = "tens"
        elif word == "hundred":
            current = (current or 1) * 100
            state = "hundred"
        elif word == "thousand":
            total += (current or 1) * 1000
            current = 0
            state = "thousand"
        i += 1
    flush()
    return "".join(out)


def digit_runs(text: str) -> list[tuple[str, bool]]:
    """Every spoken or written number sequence in ``text``, in order.

    Each item is ``(digits, international)``; ``international`` is set when
    the run was introduced by "+" or "plus".
    """
    raw = text.translate(_APOSTROPHES).lower()
    # Sentence punctuation becomes "," (a pause); hyphens and brackets vanish.
    tokens = [t if t not in ".;:" else "," for t in re.findall(r"\+|[a-z]+|\d+|[,.;:]", raw)]

    def anchored(i: int, step: int) -> bool:
        # Skip over a chain of weak words ("five oh oh one") to the next real number word.
        j = i + step
        while 0 <= j < len(tokens) and (tokens[j] in _WEAK_UNITS or tokens[j] == ","):
            j += step
        return 0 <= j < len(tokens) and _is_strong_number(tokens[j])

    runs: list[tuple[str, bool]] = []
    run: list[str] = []
    plus = False
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _WEAK_UNITS:
            # "oh" is zero on either side of a digit; "for"/"to" only between
            # digits, so "for 3 days" and "3344 for sure" stay words.
            before, after = anchored(i, -1), anchored(i, 1)
            is_number = (before or after) if tok in ("oh", "o") else (before and after)
        else:
            is_number = _is_strong_number(tok)
        if is_number:
            run.append(tok)
            continue
        continues = _is_strong_number(nxt) or nxt in _WEAK_UNITS
        if run and tok == "," and continues:
            run.append(tok)
            continue
        if run and tok in _RUN_FILLERS and continues:
            continue
        if run:
            runs.append((_digits_of_run(run), plus))
            run = []
        plus = tok in ("+", "plus")
    if run:
        runs.append((_digits_of_run(run), plus))
    return [(digits, intl) for digits, intl in runs if digits]


def extract_digits(text: str) -> str:
    """The longest digit sequence spoken in ``text`` ("" if none)."""
    return max((digits for digits, _ in digit_runs(text)), key=len, default="")


def _as_e164(digits: str, international: bool, region: str) -> str | None:
    try:
        number = phonenumbers.parse(("+" if international else "") + digits, region)
    except phonenumbers.NumberParseException:
        return None
    # 555 numbers are not "valid" (unassigned area code) but are real enough
    # for callbacks in tests and demos; only insist on a plausible length.
    # A 7-digit local number is "possible" to phonenumbers but useless
    # without its area code.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def extract_phone(text: str, region: str = "US") -> str | None:
    """The callback number in ``text`` as E.164, or None.

    Handles "555 201 3344", "555-201-3344", "five five five two oh one...",
    "double five", grouped words ("five fifty-five") and digit homophones
    inside a number ("for" -> 4, "to" -> 2). When several numbers are said,
    the last one wins: corrections come last ("not 5309, it's 5390").
    """
    for digits, international in reversed(digit_runs(text)):
        half = len(digits) // 2
        if len(digits) > 11 and not international and digits[:half] == digits[half:]:
            digits = digits[:half]  # the caller said it twice
        e164 = _as_e164(digits, international, region)
        if e164:
            return e164
    return None


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def national_digits(e164: str) -> str:
    """The digits of ``e164`` a caller says, without the country code ("+15554107788" -> "5554107788")."""
    return phonenumbers.national_significant_number(phonenumbers.parse(e164))


def _parse_hearing(digits: str) -> tuple[str, bool]:
    """A hearing's digits and whether they carry their country code ("+442071234567")."""
    return (digits[1:], True) if digits.startswith("+") else (digits, False)


def _national(hearing: str, region: str) -> str:
    """A hearing's digits without a country code ("15554107788" -> "5554107788"), as far as that is clear."""
    digits, international = _parse_hearing(hearing)
    e164 = _as_e164(digits, international, region)
    return national_digits(e164) if e164 else digits


def _number_candidates(hearing: str, region: str) -> dict[str, int]:
    """Numbers (E.164) ``hearing`` may have been: as heard, or one digit fewer or more.

    The value ranks how likely each is: as heard is likeliest, then undoing a
    digit that repeats its neighbour ("77888" -> "7788", the mistake Whisper
    makes most), later in the number first; -1 for the rest. A country code
    that was said stays as it was.
    """
    digits, international = _parse_hearing(hearing)
    country = ""
    if international and (e164 := _as_e164(digits, True, region)):
        country, digits = str(phonenumbers.parse(e164).country_code), national_digits(e164)

    def number(variant: str) -> str | None:
        return _as_e164(country + variant, international, region)

    found: dict[str, int] = {}
    for i in range(len(digits)):
        if e164 := number(digits[:i] + digits[i + 1 :]):
            doubled = (i > 0 and digits[i - 1] == digits[i]) or (i + 1 < len(digits) and digits[i + 1] == digits[i])
            found[e164] = max(found.get(e164, -1), i if doubled else -1)
    for i in range(len(digits) + 1):
        for d in "0123456789":
            if e164 := number(digits[:i] + d + digits[i:]):
                found.setdefault(e164, -1)
    if e164 := number(digits):
        found[e164] = len(digits)
    return found


def number_consensus(hearings: Sequence[str], region: str = "US", *, final: bool = False) -> str | None:
    """The number (E.164) that best explains several hearings of it, or None while that is unclear.

    Each hearing is the digits heard, right or not ("+" in front when the
    country code was said). Whisper over a phone line drops, doubles and
    swaps digits ("555 410 77888"), so candidates are the hearings and every
    number one digit away from one; the winner is closest to all hearings
    together (fewest digit edits). A tie is unclear, unless ``final``: then
    a number as heard, or with a doubled digit undone, wins, then the latest.
    """
    heard = [_national(hearing, region) for hearing in hearings]
    latest: dict[str, int] = {}
    likely: dict[str, int] = {}
    for index, hearing in enumerate(hearings):
        for e164, rank in _number_candidates(hearing, region).items():
            latest[e164] = index
            likely[e164] = max(likely.get(e164, -1), rank)
    if not latest:
        return None
    cost = {e164: sum(_edit_distance(national_digits(e164), h) for h in heard) for e164 in latest}
    ranked = sorted(cost, key=lambda e164: (cost[e164], -likely[e164], -latest[e164], e164))
    if len(ranked) > 1 and cost[ranked[0]] == cost[ranked[1]] and not final:
        return None
    return ranked[0]


def number_heard_before(hearings: Sequence[str], digits: str, region: str = "US") -> bool:
    """Whether ``digits`` are one of ``hearings`` heard again (two digit edits at most), not a new number."""
    return len(digits) >= 7 and any(_edit_distance(_national(h, region), digits) <= 2 for h in hearings)


def digits_near(text: str, e164: str, max_edits: int = 2) -> bool:
    """Whether the digits said in ``text`` are a slightly misheard ``e164``.

    Whisper over a phone line drops or doubles digits in runs ("555-888-000"
    for 555 888 0000); within ``max_edits`` of the caller ID, the caller ID
    is by far the likeliest number meant.
    """
    heard = extract_digits(text)
    target = re.sub(r"\D", "", e164)
    if len(heard) < 7 or not target:
        return False
    national = target[1:] if target.startswith("1") and len(target) == 11 else target
    return min(_edit_distance(heard, national), _edit_distance(heard, target)) <= max_edits


def mentions_caller_id(text: str) -> bool:
    """The caller points at the number they are calling from ("this number is fine")."""
    return _has(
        re.compile(
            r"\b(?:this|same|current|my cell) (?:number|one|phone)\b|\bcalling (?:you )?(?:from|on)\b"
            r"|\bcaller id\b|\bthe one i'm on\b|\bthis phone\b"
        ),
        text,
    )


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that follow "this is" / "it's" / "I'm" far more often than a name does.
_NOT_NAME = _word_set(
    """
    a an the and or but so if then than to of by as at in on for from with about regarding into over under
    my our your his her their its it it's that's there's what's i'd i'll we're you're they're this that these
    those there here what which who when where why how
    i i'm im me we us you he she they them is are was were be been being am do does did done have has had
    not no yes yeah yep okay ok sure fine good great well just really very still also too again now today
    tomorrow tonight morning afternoon evening night calling call called ringing trying looking having getting
    going gonna wondering hoping waiting phoning sorry afraid glad happy worried concerned interested
    desperate stuck home away back out off up down over urgent important serious broken leaking flooding
    blocked running dripping freezing cold hot new old one two three four five six seven eight nine ten
    number phone name email address time all any some every each both either neither quite pretty
    customer client owner tenant landlord homeowner patient member manager company business office
    kind sort bit little lot problem issue question emergency regular first last mister mrs miss ms mr dr
    always never ever already almost about around like can could would will should shall may might must
    bye goodbye hello hi hey thanks thank
    """
)
_TITLES = {"mr", "mrs", "ms", "miss", "mister", "dr", "doctor"}
_STRONG_INTRO = re.compile(
    r"\b(?:my name is|my name's|my names|the name is|the name's|name is|name's|call me|"
    r"my full name is|first name is)\s+",
    re.IGNORECASE,
)
_WEAK_INTRO = re.compile(r"\b(?:this is|it's|it is|i'm|i am|im)\s+", re.IGNORECASE)
_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*$")
_NAME_STOP_AFTER = _word_set("and from at calling here speaking with my i i'm again please thanks")


def _title(word: str) -> str:
    """Capitalise each part of a name word; keep caller-given inner capitals (McDonald)."""
    if any(c.isupper() for c in word[1:]) and not word.isupper():
        return word[0].upper() + word[1:]
    return "-".join("'".join(p[:1].upper() + p[1:].lower() for p in part.split("'")) for part in word.split("-"))


def _is_cased(text: str) -> bool:
    """True when the transcript uses capitals beyond sentence starts and "I"."""
    sentence_start = True
    for word in re.findall(r"[A-Za-z][A-Za-z']*|[.!?]", text):
        if word in ".!?":
            sentence_start = True
            continue
        if word[0].isupper() and not sentence_start and word not in ("I", "I'm", "I'd", "I'll", "I've"):
            return True
        sentence_start = False
    return False


def _name_words(tail: str, *, max_words: int = 4) -> list[str]:
    """Leading name-like words of ``tail`` (original case), stopping at punctuation or connectors."""
    chunk = re.split(r"[,.;:!?\d]", tail, maxsplit=1)[0]
    words: list[str] = []
    for raw in chunk.split():
        w = raw.strip("\"'()")
        lw = w.lower()
        if not w or lw in _NAME_STOP_AFTER or not _NAME_WORD.match(w):
            break
        if not words and lw in _TITLES:
            continue
        words.append(w)
        if len(words) == max_words:
            break
    while words and words[-1].lower() in _NOT_NAME:
        words.pop()
    return words


def _plausible(words: list[str], *, strict: bool, cased: bool) -> bool:
    if not words:
        return False
    lowered = [w.lower() for w in words]
    if lowered[0] in _NOT_NAME or any(len(w) == 1 for w in lowered if w not in ("a", "i")):
        return False
    if strict:
        if cased:
            return words[0][0].isupper()
        # Without capitals to go on, "it's flooding" must not become a name.
        return not any(w in _NOT_NAME or (len(w) > 5 and w.endswith(("ing", "ed"))) for w in lowered)
    return True


_FILLER = re.compile(r"\b(?:um+|uh+|erm|er|hmm)\b[,.]?\s*", re.IGNORECASE)
_ASKED_NAME_PREFIX = re.compile(
    r"^(?:(?:yes|yeah|yep|sure|okay|ok|um+|uh+|er|so|hi|hello|of course|certainly|right|oh|well|sorry|"
    r"it's|it is|this is|i'm|i am|my name is|my name's|name's|the name is)\b[\s,.!-]*)+",
    re.IGNORECASE,
)


def extract_name(text: str, *, asked: bool = False) -> str | None:
    """The caller's name, title-cased, or None.

    Volunteered names need an introduction ("my name is", "this is", "it's",
    "I'm"); the weak ones ("this is urgent", "it's flooding") are filtered by
    capitals when the transcript has them, else by a list of common words.
    When ``asked`` (the agent just asked for a name) a bare "Maria Gonzalez."
    is accepted too.
    """
    text = _FILLER.sub("", text.translate(_APOSTROPHES)).strip()
    text = re.sub(r"\b(Mr|Mrs|Ms|Dr)\.", r"\1", text, flags=re.IGNORECASE)
    cased = _is_cased(text)
    for intro, strict in ((_STRONG_INTRO, False), (_WEAK_INTRO, not asked)):
        for m in intro.finditer(text):
            words = _name_words(text[m.end() :])
            if _plausible(words, strict=strict, cased=cased):
                return " ".join(_title(w) for w in words)
    if asked:
        bare = _ASKED_NAME_PREFIX.sub("", text)
        words = _name_words(bare)
        if _plausible(words, strict=False, cased=cased):
            return " ".join(_title(w) for w in words)
    return None


# --------------------------------------------------------------------------
# Spelling
# --------------------------------------------------------------------------

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
_AS_IN = re.compile(r"\b([a-z]{1,5})\s+(?:as in|for|like)\s+([a-z]+)\b", re.IGNORECASE)


def _letter(word: str) -> str | None:
    if len(word) == 1 and word.isalpha():
        return word
    if word in ("okay", "ok"):
        return "ok"  # "O, K" as Whisper likes to hear it
    return _LETTER_NAMES.get(word)


def _spelling_tokens(text: str, *, capitals_are_letters: bool) -> list[str]:
    """Words, separators and spaces of ``text``, lower-cased; short all-capital words become letters.

    Whisper writes a few spelled letters as one capitalised "word" ("Okay,
    AFOR" for "O, K, A, F, O, R", "CH" for "C, H"): up to six capitals in a
    row are letters, run together as if hyphenated.
    """
    tokens: list[str] = []
    for tok in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?|[.,;!?-]|\s+", text):
        if capitals_are_letters and 2 <= len(tok) <= 6 and tok.isalpha() and tok.isupper():
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
    t = text.translate(_APOSTROPHES)
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


def _name_from_spelling(text: str, heard: str, heard_confidence: float) -> str | None:
    groups = ["".join(g) for g in spelled_letters(text, spelling=True)]
    # Two "letters" are too easily an "okay" or "I see"; names spelled out have more.
    if sum(len(g) for g in groups) < 3:
        return None
    heard_words = re.findall(r"[a-z]+(?:'[a-z]+)?", heard.lower())
    lexicon = name_lexicon()
    if len(groups) == 1 and len(heard_words) >= 2:
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
                words = [_title(w) for w in heard_words]
                words[position] = choice.name
                return " ".join(words)
    words = name_from_letters(
        groups, heard=[w.replace("'", "") for w in heard_words], heard_confidence=heard_confidence, lexicon=lexicon
    )
    # Letters carry no apostrophes: "O, B, R, I, E, N" heard as "O'Brien" keeps it.
    as_heard = {w.replace("'", ""): w for w in heard_words}
    return " ".join(_title(as_heard.get(w.lower(), w)) for w in words)


# --------------------------------------------------------------------------
# Email, address, preferred time
# --------------------------------------------------------------------------

_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}")


def extract_email(text: str, *, asked: bool = False) -> str | None:
    """An email address, spoken ("sofia dot rossi at example dot com") or written.

    When ``asked`` and the "at" was lost ("sophia.rossi.example.com"), the
    "@" goes before the last two labels, which is right for most addresses.
    """
    t = normalize(text)
    t = re.sub(r"\s*\bdot\b\s*", ".", t)
    t = re.sub(r"\s*\bunderscore\b\s*", "_", t)
    t = re.sub(r"\s*\b(?:dash|hyphen)\b\s*", "-", t)
    # Only the last "at" before a domain is the "@" ("reach me at sofia at example dot com").
    ats = list(re.finditer(r"\s*(?:\bat sign\b|\bat\b|@)\s*(?=[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b)", t))
    if ats:
        t = t[: ats[-1].start()] + "@" + t[ats[-1].end() :]
    t = re.sub(r"\s*([.@_])\s*", r"\1", t)
    found = _EMAIL.findall(t)
    if not found and asked:
        dotted = re.findall(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)+\.[a-z]{2,}", t)
        if dotted:
            labels = dotted[-1].split(".")
            return ".".join(labels[:-2]) + "@" + ".".join(labels[-2:])
    if not found:
        return None
    return found[-1].strip(".")


_STREET = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|boulevard|blvd|way|place|pl|terrace|"
    r"crescent|close|circle|parkway|pkwy|highway|hwy|square|row|trail"
)
_ADDRESS = re.compile(
    rf"\b\d+[a-z]?\s+(?:[a-z']+\s+){{0,3}}(?:{_STREET})\b(?:,?\s+(?:apartment|apt|unit|suite|flat)\s+\w+)?",
    re.IGNORECASE,
)
_ADDRESS_INTRO = re.compile(
    r"\b(?:my address is|the address is|address is|address's|i live at|i'm at|we're at|we are at|i am at|"
    r"located at|the property is at|the house is at)\s+",
    re.IGNORECASE,
)
_ANSWER_PREFIX = re.compile(
    r"^(?:(?:yes|yeah|sure|okay|ok|um+|uh+|er|so|of course|it's|it is|that's|that would be|that'd be|"
    r"i'd say|i would say|probably|maybe|ideally|preferably|i'd prefer|i would prefer|i prefer|"
    r"how about|let's say|say)\b[\s,.!-]*)+",
    re.IGNORECASE,
)
_ANSWER_SUFFIX = re.compile(
    r"[\s,.!]*\b(?:please|thanks|thank you|if possible|if that's okay|if that works|would be great|"
    r"would be good|would be best|works best|works for me|is best|is good)\b.*$",
    re.IGNORECASE,
)


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[a-zA-Z])[.!?](?:\s|$)", text.strip(), maxsplit=1)[0].strip(" ,.!?")


def extract_address(text: str, *, asked: bool = False) -> str | None:
    """A street address as the caller said it.

    Volunteered only after "my address is", "I live at"... or as
    "<number> <words> Street"; when ``asked``, the caller's first sentence.
    """
    text = text.translate(_APOSTROPHES).strip()
    intro = _ADDRESS_INTRO.search(text)
    if intro:
        found = re.split(r"[.;!?]|,\s*(?:and|my|i|so|but)\b|\s+and\s+(?:my|i)\b", text[intro.end() :], maxsplit=1)[0]
        return found.strip(" ,") or None
    if asked:
        answer = _ANSWER_SUFFIX.sub("", _ANSWER_PREFIX.sub("", _first_sentence(text))).strip(" ,")
        return answer or None
    street = _ADDRESS.search(text)
    return street.group(0).strip() if street else None


_DAY = (
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekday|weekdays|weekend|tomorrow|today|"
    r"tonight|next week|this week"
)
_PART = r"morning|afternoon|evening|night|lunchtime|lunch time|noon|midday|first thing"
_CLOCK = (
    r"\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)"
    r"|(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)(?:\s+thirty)?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)"
)
_TIME_WORD = rf"(?:\b(?:{_DAY}|{_PART})s?\b|\b(?:{_CLOCK}))"
_TIME_SPAN = re.compile(
    rf"(?:\b(?:early|late|next|this|any|on|a)\s+)?{_TIME_WORD}"
    rf"(?:(?:\s+|\s*,\s*)(?:(?:in the|at|around|after|before|from|or|and|on)\s+)?{_TIME_WORD})*",
    re.IGNORECASE,
)
_TIME_CUE = re.compile(
    r"\b(?:for|on|around|at|prefer|preferably|ideally|available|free|book|booked|schedule|come|visit|"
    r"sometime|anytime|works?|suits?)\s+$",
    re.IGNORECASE,
)


def extract_preferred_time(text: str, *, asked: bool = False) -> str | None:
    """When the caller would like the visit or callback ("Tuesday afternoon").

    Volunteered times need a cue just before them ("an appointment for
    Tuesday afternoon"), so "it stopped this morning" is not a preference.
    When ``asked``, the caller's first sentence without filler.
    """
    text = text.translate(_APOSTROPHES).strip()
    for m in _TIME_SPAN.finditer(text):
        if asked or _TIME_CUE.search(text[: m.start()]):
            span = re.sub(r"^(?:on|a)\s+", "", m.group(0).strip(" ,"), flags=re.IGNORECASE)
            return span[0].upper() + span[1:]
    if asked:
        answer = _ANSWER_SUFFIX.sub("", _ANSWER_PREFIX.sub("", _first_sentence(text))).strip(" ,")
        return answer[0].upper() + answer[1:] if answer else None
    return None


# --------------------------------------------------------------------------
# Confirmations, corrections and other intents
# --------------------------------------------------------------------------

_LEAD = r"^(?:(?:um+|uh+|er|oh|well|so|okay|ok|sorry)\b[\s,.!-]*)*"
_AFFIRM = re.compile(
    _LEAD + r"(?:yes|yeah|yea|yep|yup|ya|yah|aye|correct|right|exactly|sure|absolutely|definitely|perfect|"
    r"uh-huh|uh huh|mm-hmm|mm hmm|mhm|that's right|that is right|that's correct|that is correct|"
    r"that's it|sounds good|sounds right|looks good|you got it|spot on|all correct|all good|okay|ok|great)\b"
)
_NEGATE = re.compile(
    _LEAD + r"(?:no|nope|nah|not quite|not really|not exactly|incorrect|wrong|actually)\b"
    r"|\b(?:that's not right|that is not right|not correct|isn't right|is not right|should be|i said)\b"
    r"|\b(?:is|are|was|that's|it's) (?:wrong|incorrect|not right)\b"
)


def is_affirmative(text: str) -> bool:
    """Whether the caller agrees: "yes", "that's right", "correct", "yeah" (and no denial)."""
    return _has(_AFFIRM, text) and not _has(_NEGATE, text)


def is_correction(text: str) -> bool:
    """Whether the caller objects: "no", "actually it's ...", "that's wrong", "it should be ..."."""
    return _has(_NEGATE, text)


_FIELD_WORDS = {
    "name": r"(?:first |last |full |sur)?name",
    "callback_number": r"(?:phone |callback |call back |cell |mobile )?(?:number|phone)",
    "email": r"e-?mail(?: address)?",
    "address": r"(?:street )?address",
    "preferred_time": r"(?:preferred )?(?:time|day|appointment)",
}
_FIELD_VALUE = re.compile(
    r"\b(?:the|my|your|it's|its)?\s*(?P<field>"
    + "|".join(f"(?P<{k}>{v})" for k, v in _FIELD_WORDS.items())
    + r")\b\s*(?:is\b|should be\b|'s\b|was\b|it's\b)?\s*(?:actually\s+)?",
    re.IGNORECASE,
)


def correction_fields(text: str) -> dict[str, str]:
    """Split a correction into the fields it names and their new values (raw text).

    "No, the number is 555 867 5390 and the name is Aisha" ->
    {"callback_number": "555 867 5390", "name": "Aisha"}.
    """
    text = text.translate(_APOSTROPHES)
    marks = list(_FIELD_VALUE.finditer(text))
    found: dict[str, str] = {}
    for i, m in enumerate(marks):
        field = next(k for k in _FIELD_WORDS if m.group(k))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        value = re.sub(r"[\s,]+(?:and|but)\s*$", "", text[m.end() : end]).strip(" ,.!?")
        found[field] = value
    return found


def mentioned_fields(text: str) -> list[str]:
    """Field names a caller refers to ("the number is wrong" -> ["callback_number"])."""
    t = normalize(text)
    return [k for k, v in _FIELD_WORDS.items() if re.search(rf"\b{v}\b", t)]


_HUMAN = re.compile(
    r"\b(?:talk|speak|chat|speaking|talking)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+|some\s+|your\s+|one of your\s+)?"
    r"(?:someone|some one|somebody|person|human|real person|live person|actual person|agent|representative|rep|"
    r"operator|manager|staff|member of (?:staff|the team)|receptionist|technician|engineer|plumber|owner|"
    r"people|guy|lady|man|woman|anyone|anybody)\b"
    r"|\b(?:real|live|actual|human) (?:person|human|being|agent)\b|\bhuman being\b"
    r"|\btransfer me\b|\bput me through\b|\bconnect me (?:to|with)\b|\bnot a (?:robot|machine|bot)\b"
    r"|\bare you a (?:robot|machine|bot)\b"
)


def wants_human(text: str) -> bool:
    """The caller asks for a person ("talk to someone", "a real person", "a human")."""
    return _has(_HUMAN, text)


_BACKCHANNEL_WORDS = _word_set(
    "uh huh uh-huh um hmm mm mhm mm-hmm okay ok yeah yes yep right sure alright all got it i see cool great "
    "thanks thank you so oh"
)


def is_backchannel(text: str) -> bool:
    """Only listening noises: "uh-huh", "okay", "yeah", "mm-hmm", "thank you"."""
    words = re.findall(r"[a-z]+(?:-[a-z]+)*", normalize(text))
    return bool(words) and all(w in _BACKCHANNEL_WORDS for w in words)


_DONE = re.compile(
    r"\b(?:that's all|that is all|that's it|that is it|that's everything|that'll be all|that will be all|"
    r"nothing else|nothing more|no thanks|no thank you|i'm good|i'm all set|all set|i'm done|we're done|"
    r"no more questions|no other questions|not right now|goodbye|good bye|bye|that was it|that's about it)\b"
    r"|^(?:no|nope|nah)[.!]?$"
)


def is_goodbye(text: str) -> bool:
    """The caller is finished: "No, that's all", "nothing else", "bye"."""
    return _has(_DONE, text)


_REFUSAL = re.compile(
    r"\b(?:rather not|prefer not|don't know|do not know|not sure|no idea|can't remember|don't remember|"
    r"don't have (?:one|an?\b)|do not have (?:one|an?\b)|skip (?:it|that|this)|not (?:say|tell|give))"
)


def is_refusal(text: str) -> bool:
    """The caller will not or cannot give what was asked: "I'd rather not say", "I don't know"."""
    return _has(_REFUSAL, text)


_REPEAT = re.compile(
    r"\b(?:repeat|say (?:that|it|again)|say that again|come again|pardon|didn't (?:catch|hear|get|understand)|"
    r"did not (?:catch|hear|get|understand)|what did you say|what was that|one more time|i missed that)\b"
    r"|^(?:sorry|what|huh|excuse me)\?*$"
)


def is_repeat_request(text: str) -> bool:
    """Whether the caller asks to hear it again: "Sorry, could you repeat that?", "come again?"."""
    return _has(_REPEAT, text)


# --------------------------------------------------------------------------
# Reason text, category and priority
# --------------------------------------------------------------------------

_PLEASANTRY_WORDS = _word_set(
    """
    hi hello hey there good morning afternoon evening yes yeah sorry i'm im here um uh oh okay ok so well
    thanks thank you please still yep sure right hiya howdy great just a quick question questions couple of
    few have i got had two some one wondering if could help me am calling call to ask about something are is
    can hear anyone anybody line on the more another last also actually no
    """
)


def is_pleasantry(text: str) -> bool:
    """A sentence with no content: "Hi there", "Sorry, yes, I'm here", "I have a couple of questions"."""
    words = _words(text)
    return all(w in _PLEASANTRY_WORDS for w in words)


_FUNCTION_WORDS = (
    _NOT_NAME
    | _PLEASANTRY_WORDS
    | _word_set(
        "want need like wanna let please right away immediately someone somebody person human real actual live "
        "talk speak chat i'd i'll i've"
    )
)


def content_words(text: str) -> list[str]:
    """Words that carry meaning (not greetings, fillers or function words)."""
    return [w for w in _words(text) if w not in _FUNCTION_WORDS and len(w) > 2]


def without_human_request(text: str) -> str:
    """``text`` with the "talk to someone" part removed, to see what else it says."""
    return _HUMAN.sub(" ", normalize(text))


def split_sentences(text: str) -> list[str]:
    """Sentences as Whisper punctuated them, each keeping its final mark."""
    parts = re.split(r"(?<=[.!?])\s+", text.translate(_APOSTROPHES).strip())
    return [p.strip() for p in parts if p.strip(" .,!?")]


_CONTACT_CLAUSE = re.compile(
    r"\b(?:my name is|my name's|name is|this is|it's|i'm|call me|my number is|my phone number is|number is|"
    r"you can reach me|reach me|call me back|my email is|email is|my address is|i live at)\b",
    re.IGNORECASE,
)


def reason_text(text: str, *, name: str | None = None) -> str:
    """The caller's problem in their own words, without greetings and contact details.

    "Hi, this is James Wilson, my number is 555 444 3333, and I'd like a
    quote..." -> "I'd like a quote...".
    """
    kept: list[str] = []
    for sentence in split_sentences(text):
        if is_pleasantry(sentence):
            continue
        clauses = re.split(r",\s*|\s+and\s+(?=(?:my|i|i'm|i'd|this|it's|the)\b)", sentence, flags=re.IGNORECASE)
        for clause in clauses:
            c = re.sub(r"^(?:and|but|so|also)\s+", "", clause.strip(" .!?"), flags=re.IGNORECASE)
            if not c or is_pleasantry(c):
                continue
            # Digits count even when too few for a phone number: a misheard
            # "my number is 555-44-333" is still not part of the reason.
            contact = _CONTACT_CLAUSE.search(c) and (
                len(extract_digits(c)) >= 3 or extract_email(c) or (name and name.lower() in c.lower())
            )
            if contact or (name and c.lower() == name.lower()):
                continue
            kept.append(c)
    if not kept:
        return ""
    joined = ", ".join(kept)
    return joined[0].upper() + joined[1:]


# Words that point at a kind of request, for common category names. Tenant
# categories pick the lists whose key shares a stem with them ("Heating &
# Cooling" -> heating); the category's own name always counts double.
_CATEGORY_HINTS: dict[str, str] = {
    "leak": (
        r"leak\w*|drip\w*|burst|flood\w*|water (?:is )?(?:coming|pouring|running) (?:in|through|out|from|down)"
        r"|water everywhere|water all over|ceiling|damp|puddle|pipes?"
    ),
    "heat": (
        r"heat|heating|boiler|radiators?|furnace|thermostat|hot water|freezing|pilot light"
        r"|cold (?:house|radiators?|home)"
    ),
    "drain": (
        r"drains?|drainage|blocked|blockage|clog\w*|toilets?|sewer|sewage|backed up|backing up|flush\w*|plunger"
        r"|gurgl\w*"
    ),
    "install": (
        r"install\w*|quote|estimate|replace\w*|water heater|upgrade"
        r"|new (?:boiler|bathroom|kitchen|sink|toilet|shower|tap|faucet|unit|system)"
    ),
    "bill": r"bills?|billing|billed|invoice\w*|charged?|overcharged|payments?|refund|receipt",
    "outage": (
        r"outage|down|offline|network|internet|wi-?fi|no connection|can't connect|cannot connect|servers?"
        r"|nobody can work|can't work"
    ),
    "appointment": (
        r"appointments?|book\w*|schedul\w*|reschedul\w*|cancel\w*|check-?up|cleaning|visit|consultation"
        r"|see the (?:dentist|doctor|hygienist)"
    ),
    "emergency": r"emergency|pain\w*|toothache|swell\w*|swollen|bleed\w*|knocked out|broken tooth|chipped|abscess",
    "insurance": r"insurance|insurer|coverage|covered|claim|delta dental|cigna|medicaid",
    "account": r"account|password|log ?in|login|locked out|sign in|username|reset",
    "hardware": r"laptop|computer|pc|printer|monitor|screen|keyboard|mouse|hardware|hard drive",
    "software": r"software|app|application|program|update|outlook|excel|windows|licen[cs]e|virus",
}
# Below this MiniLM similarity between the reason and a category name, an
# unknown category is not trusted and the call goes to "general". Measured:
# a reason about its category scores 0.25-0.5 against the bare name, an
# unrelated one under 0.2.
CATEGORY_SIM_THRESHOLD = 0.25
DEFAULT_CATEGORY = "general"


def _stem(word: str) -> str:
    return re.sub(r"(?:ations?|ings?|s)$", "", word.lower())


def _category_patterns(category: str) -> list[tuple[re.Pattern[str], int]]:
    stems = {_stem(w) for w in re.findall(r"[a-z]+", category.lower())}
    patterns = [(re.compile(rf"\b{re.escape(s)}(?:s|es|ed|ing|ings|ation|ations)?\b"), 2) for s in stems if len(s) > 2]
    patterns += [(re.compile(rf"\b(?:{hints})\b"), 1) for key, hints in _CATEGORY_HINTS.items() if key in stems]
    return patterns


def categorize(reason: str, categories: Sequence[str], embedder: TextEmbedder | None = None) -> str:
    """Pick the tenant category for a reason.

    Keyword hints first (sink/leaking -> leak, boiler/no heat -> heating,
    drain/toilet -> drains...); with no hint, the category name most similar
    to the reason under MiniLM, if similar enough; else "general" (when the
    tenant has it).
    """
    cats = [c for c in categories if c]
    fallback = next((c for c in cats if c.lower() == DEFAULT_CATEGORY), DEFAULT_CATEGORY if not cats else "")
    text = normalize(reason)
    specific = [c for c in cats if c.lower() != DEFAULT_CATEGORY]
    if not text or not specific:
        return fallback or cats[0]
    # Each distinct hint word counts once; the category's own name counts double.
    scores = {
        c: sum(weight * len({m.group(0) for m in pattern.finditer(text)}) for pattern, weight in _category_patterns(c))
        for c in specific
    }
    top = max(scores.values())
    if top > 0:
        tied = [c for c in specific if scores[c] == top]
        if len(tied) == 1 or embedder is None:
            return tied[0]
        specific = tied
    if embedder is None:
        return fallback or specific[0]
    vectors = embedder.embed([text, *specific])
    sims = vectors[1:] @ vectors[0]
    best = int(np.argmax(sims))
    if top > 0 or sims[best] >= CATEGORY_SIM_THRESHOLD or not fallback:
        return specific[best]
    return fallback


# Explicit urgency words that make a request at least "high" even when the
# tenant did not list them as urgent keywords.
_HIGH_WORDS = re.compile(r"\b(?:emergency|urgent|urgently)\b")


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = re.findall(r"[a-z0-9']+", normalize(keyword).replace("cannot", "can't"))
    if not words:
        return re.compile(r"(?!)")
    # Tolerate inflections of the last word: "flood" ~ "flooding", "no heat"
    # ~ "no heating", "sparks" ~ "sparking".
    last = re.sub(r"(?:s|es|ing|ed)$", "", words[-1]) if len(words[-1]) > 4 else words[-1]
    head = "".join(re.escape(w) + r"\s+" for w in words[:-1])
    return re.compile(rf"\b{head}{re.escape(last)}(?:s|es|ed|ing|ings)?\b")


def matches_urgent(text: str, urgent_keywords: Sequence[str]) -> bool:
    """Whether ``text`` contains one of the tenant's urgent keywords (inflections allowed)."""
    t = normalize(text).replace("cannot", "can't").replace("can not", "can't")
    return any(_keyword_pattern(k).search(t) for k in urgent_keywords if k.strip())


def priority_for(text: str, urgent_keywords: Sequence[str], wants_human: bool) -> Priority:
    """Ticket priority: an urgent keyword -> urgent; a human request or the caller
    saying "emergency"/"urgent" -> high; else normal."""
    if matches_urgent(text, urgent_keywords):
        return "urgent"
    if wants_human or _has(_HIGH_WORDS, text):
        return "high"
    return "normal"
