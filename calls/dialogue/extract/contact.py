"""Email, address and preferred time."""

from __future__ import annotations

import re

from calls.dialogue.extract.text import APOSTROPHES, normalize

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
    text = text.translate(APOSTROPHES).strip()
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


_NO_PREFERENCE = re.compile(
    r"\b(?:any ?time|whenever|no preference|(?:doesn't|does not|don't|do not) (?:matter|mind)|"
    r"(?:i'm|i am) (?:easy|flexible)|either (?:one|is fine|works))\b",
    re.IGNORECASE,
)


def has_no_time_preference(text: str) -> bool:
    """Asked when suits them, the caller has no preference ("Any time is fine", "I'm flexible").

    A time said with it is a preference after all ("any time after five").
    """
    text = text.translate(APOSTROPHES)
    bounded = re.search(
        r"\d|\b(?:after|before|between|from|until|till|around|by|except|but not)\b", text, re.IGNORECASE
    )
    return bool(_NO_PREFERENCE.search(text)) and not _TIME_SPAN.search(text) and not bounded


def extract_preferred_time(text: str, *, asked: bool = False) -> str | None:
    """When the caller would like the visit or callback ("Tuesday afternoon").

    Volunteered times need a cue just before them ("an appointment for
    Tuesday afternoon"), so "it stopped this morning" is not a preference.
    When ``asked``, the caller's first sentence without filler.
    """
    text = text.translate(APOSTROPHES).strip()
    for m in _TIME_SPAN.finditer(text):
        if asked or _TIME_CUE.search(text[: m.start()]):
            span = re.sub(r"^(?:on|a)\s+", "", m.group(0).strip(" ,"), flags=re.IGNORECASE)
            return span[0].upper() + span[1:]
    if asked:
        answer = _ANSWER_SUFFIX.sub("", _ANSWER_PREFIX.sub("", _first_sentence(text))).strip(" ,")
        return answer[0].upper() + answer[1:] if answer else None
    return None
