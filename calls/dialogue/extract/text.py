"""Text helpers shared by every extractor."""

from __future__ import annotations

import re

APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def normalize(text: str) -> str:
    """Lower-case, straight apostrophes, single spaces."""
    return " ".join(text.translate(APOSTROPHES).lower().split())


def stem(word: str) -> str:
    """A rough stem, enough to tell that "rekeyed" names "rekey" and "tuning" a "tune"."""
    return re.sub(r"(?:ations?|ings?|ies|es|s|e)$", "", word.lower())


def word_list(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", normalize(text))


def has_match(pattern: re.Pattern[str], text: str) -> bool:
    return bool(pattern.search(normalize(text)))


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())
