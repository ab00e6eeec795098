"""Why the caller calls: reason text, category and priority."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from calls.dialogue.extract.contact import extract_email
from calls.dialogue.extract.intents import HUMAN_REQUEST
from calls.dialogue.extract.names import NOT_NAME_WORDS
from calls.dialogue.extract.numbers import extract_digits
from calls.dialogue.extract.text import APOSTROPHES, has_match, normalize, word_list, word_set
from calls.pipeline.protocols import TextEmbedder

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
    """Sentences as Whisper punctuated them, each keeping its final mark."""
    parts = re.split(r"(?<=[.!?])\s+", text.translate(APOSTROPHES).strip())
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
    if wants_human or has_match(_HIGH_WORDS, text):
        return "high"
    return "normal"
