"""Why the caller calls: reason text, category and priority."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from calls.dialogue.extract.contact import extract_email
from calls.dialogue.extract.intents import HUMAN_REQUEST
from calls.dialogue.extract.names import NOT_NAME_WORDS
from calls.dialogue.extract.numbers import extract_digits, is_spoken_digits
from calls.dialogue.extract.text import APOSTROPHES, has_match, normalize, word_list, word_set

Priority = Literal["low", "normal", "high", "urgent"]


_PLEASANTRY_WORDS = word_set(
    """
    hi hello hey there good morning afternoon evening yes yeah sorry i'm im here um uh oh okay ok so well
    thanks thank you please still yep sure right hiya howdy great just a quick question questions couple of
    few have i got had two some one wondering if could help me am calling call to ask about something are is
    can hear anyone anybody line on the more another last also actually no
    """
)


def is_pleasantry(text: str) -> bool:
    """A sentence with no content: "Hi there", "Sorry, yes, I'm here", "I have a couple of questions"."""
    words = word_list(text)
    return all(w in _PLEASANTRY_WORDS for w in words)


_FUNCTION_WORDS = (
    NOT_NAME_WORDS
    | _PLEASANTRY_WORDS
    | word_set(
        "want need like wanna let please right away immediately someone somebody person human real actual live "
        "talk speak chat i'd i'll i've"
    )
)


def content_words(text: str) -> list[str]:
    """Words that carry meaning (not greetings, fillers or function words)."""
    return [w for w in word_list(text) if w not in _FUNCTION_WORDS and len(w) > 2]


def without_human_request(text: str) -> str:
    """``text`` with the "talk to someone" part removed, to see what else it says."""
    return HUMAN_REQUEST.sub(" ", normalize(text))


def split_sentences(text: str) -> list[str]:
    """Sentences as Whisper punctuated them, each keeping its final mark.

    Whisper ends an either-or question early ("Can I just walk in? Or do I
    need to book?"); the "or" part is put back, as it is one question.
    """
    text = re.sub(r"\?\s+or\b", ", or", text.translate(APOSTROPHES).strip(), flags=re.IGNORECASE)
    parts = re.split(r"(?<=[.!?])\s+", text)
    return [p.strip() for p in parts if p.strip(" .,!?")]


_CONTACT_CLAUSE = re.compile(
    r"\b(?:my name is|my name's|name is|this is|it's|i'm|call me|my number is|my number's|my phone number is|"
    r"number is|number's|"
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
            # The rest of a number said in groups: "..., five five five, oh one six three".
            if contact or is_spoken_digits(c) or (name and c.lower() == name.lower()):
                continue
            kept.append(c)
    if not kept:
        return ""
    joined = ", ".join(kept)
    return joined[0].upper() + joined[1:]


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
    if wants_human or has_match(_HIGH_WORDS, text):
        return "high"
    return "normal"
