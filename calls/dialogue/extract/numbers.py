"""Phone numbers: digits as Whisper writes them, E.164, and agreement between hearings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from calls.dialogue.extract.text import APOSTROPHES, has_match

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "niner": 9,
}  # fmt: skip
# Words Whisper writes for a spoken digit that are also ordinary words; they
# only count as digits next to an unambiguous number word.
# Whisper writes a lone "oh" as "A" at times ("555. A 163" for "five five five, oh one six three").
_WEAK_UNITS = {"oh": 0, "o": 0, "a": 0, "to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "ate": 8, "tree": 3}
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
                # "Triple 42" is how Whisper writes "triple four two": the first digit is repeated.
                out.append(digit[0] * _REPEATS[word] + digit[1:])
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
    raw = text.translate(APOSTROPHES).lower()
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
    # No North American area code starts with 0 or 1: "1413 555 127" is "one, four one three..." with a
    # digit lost, not the number 141 355 5127.
    if number.country_code == 1 and str(number.national_number)[0] in "01":
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


@dataclass(frozen=True, slots=True)
class PhoneReading:
    """What one answer to "what's your number?" gives, over all the recognizer's readings of it."""

    text: str  # the reading to take the number from: the first that gives a whole number
    hearings: tuple[str, ...]  # each reading's digits (E.164 when whole), for ``number_consensus``


def phone_reading(text: str, alternatives: Sequence[str] = (), region: str = "US") -> PhoneReading:
    """The hearings of the number in one answer: its reading, and the other readings unless that one is whole.

    The recognizer hears a number turn twice, once prompted with numerals and
    once with digits as words (``calls.providers.whisper_stt``). Prompted with
    numerals, tiny.en loses digits ("555-902." for "nine oh two, double seven
    six oh") or writes one too many ("555 410 77888"); the words reading then
    mostly has the number whole, but it has its own habit ("four one zero" as
    "400"). So a whole numerals reading is taken alone, as before; otherwise
    every reading is a hearing for ``number_consensus``, the numerals reading
    last, so that it wins a tie when the caller has been asked twice.

    Over the corpus's 70 numbers on a phone line (one hearing each): 50
    numerals readings were whole (49 right). Of the 11 that lost digits, 9 now
    give the right number at once; of the 9 with a digit too many, 5 do (none
    did before); none gives a wrong one. The other 6 are asked again: heard
    the same way a second time, 2 more are right and none wrong. A reading
    with fewer than 7 digits is no hearing.
    """
    main = extract_phone(text, region)
    if main:
        for reading in alternatives:
            other = extract_phone(reading, region)
            if other and other != main and _double_as_zeros(main, other):
                return PhoneReading(reading, (other,))
        return PhoneReading(text, (main,))
    hearings: list[str] = []
    whole: str | None = None  # the first other reading that gives a whole number
    for reading in alternatives:
        number = extract_phone(reading, region)
        digits = number or extract_digits(reading)
        if len(digits) >= 7:
            hearings.append(digits)
        if number and whole is None:
            whole = reading
    # The numerals reading last: where the hearings tie in the end, the latest wins.
    digits = extract_digits(text)
    return PhoneReading(whole or text, (*hearings, digits) if len(digits) >= 7 else tuple(hearings))


def _double_as_zeros(numerals: str, words: str) -> bool:
    """Whether the numerals reading wrote a "double" as "00" where the words reading has the pair.

    Prompted with numerals, tiny.en writes "three oh one, double four two
    nine" as "301 0049" (and "double seven" as "00"); the words reading has
    "301 4429". Zeros that the words reading lacks, and that its doubled
    digit would put right (a digit off at most), are that habit, not the
    caller's zeros.
    """
    if "00" in words or "00" not in numerals:
        return False
    pairs = {m.group(0) for m in re.finditer(r"([1-9])\1", words)}
    return any(_edit_distance(numerals.replace("00", pair, 1), words) <= 1 for pair in pairs)


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
    A digit that no hearing has is never made up: when every hearing is one
    short, the tie stays unclear even when ``final``, and the caller is asked
    another way (the caller ID, the keypad) rather than read a guess.
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
    if len(ranked) > 1 and cost[ranked[0]] == cost[ranked[1]] and (not final or likely[ranked[0]] < 0):
        return None
    return ranked[0]


def number_heard_before(hearings: Sequence[str], digits: str, region: str = "US") -> bool:
    """Whether ``digits`` are one of ``hearings`` heard again (two digit edits at most), not a new number."""
    return len(digits) >= 7 and any(_edit_distance(_national(h, region), digits) <= 2 for h in hearings)


def digits_near(text: str, e164: str, max_edits: int = 2) -> bool:
    """Whether the digits said in ``text`` are a slightly misheard ``e164``.

    Whisper over a phone line drops or doubles digits in runs ("555-888-000"
    for 555 888 0000); within ``max_edits`` of the caller ID, the caller ID
    is by far the likeliest number meant. A whole number heard (as many
    digits as the caller ID) is another number unless it is one digit off
    or two neighbours swapped: "207 555 0163" from 207 555 0190 is the
    caller's other phone, not a mishearing.
    """
    heard = extract_digits(text)
    target = re.sub(r"\D", "", e164)
    if len(heard) < 7 or not target:
        return False
    national = target[1:] if target.startswith("1") and len(target) == 11 else target
    if len(heard) == len(national):
        return _one_slip(heard, national)
    if len(heard) == len(target) != len(national) and heard[0] == target[0]:
        return _one_slip(heard, target)  # said with the country code
    return min(_edit_distance(heard, national), _edit_distance(heard, target)) <= max_edits


def _one_slip(heard: str, meant: str) -> bool:
    """Same-length digit strings one substitution or one swap of neighbours apart (or equal)."""
    wrong = [i for i, (a, b) in enumerate(zip(heard, meant, strict=True)) if a != b]
    if len(wrong) <= 1:
        return True
    first, second = wrong[0], wrong[-1]
    return len(wrong) == 2 and second == first + 1 and heard[first] == meant[second] and heard[second] == meant[first]


_NUMBER_TALK = {*_UNITS, *_WEAK_UNITS, *_TEENS, *_TENS, *_REPEATS, *_RUN_FILLERS, "hundred", "area", "code", "plus"}


def is_spoken_digits(text: str) -> bool:
    """Nothing but digits, said or written: "five five five, oh one six three", "area code 207"."""
    words = re.findall(r"[a-z]+|\d+", text.lower())
    return len(extract_digits(text)) >= 3 and all(w.isdigit() or w in _NUMBER_TALK for w in words)


def mentions_caller_id(text: str) -> bool:
    """The caller points at the number they are calling from ("this number is fine")."""
    return has_match(
        re.compile(
            r"\b(?:this|same|current|my cell) (?:number|one|phone)\b|\bcalling (?:you )?(?:from|on)\b"
            r"|\bcaller id\b|\bthe one i'm on\b|\bthis phone\b"
        ),
        text,
    )
