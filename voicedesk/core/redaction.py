"""Masking of phone numbers and email addresses in text that must not carry them (logs, stored transcripts)."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A run of digits with the separators people and carriers put in numbers;
# not touching letters, so hex ids and words with digits are left alone.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\d[\d ().-]{5,}\d(?!\w)")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15  # E.164


def _phone_mask(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS or _ISO_DATE.match(text):
        return text
    return PHONE_MASK


def pii_mask(text: str) -> str:
    """``text`` with email addresses and phone numbers replaced by placeholders."""
    return _PHONE_CANDIDATE.sub(_phone_mask, _EMAIL.sub(EMAIL_MASK, text))


def pii_mask_value(value: Any) -> Any:
    """``value`` with every string in it (through dicts, lists and tuples) masked by ``pii_mask``."""
    if isinstance(value, str):
        return pii_mask(value)
    if isinstance(value, Mapping):
        return {key: pii_mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(pii_mask_value(item) for item in value)
    return value


# Spoken forms, as speech recognition writes what a caller says: "jane dot doe
# at example dot com", "five five five, two oh one, double three four four".
_SPOKEN_EMAIL = re.compile(
    r"\b[\w+-]+(?:\s*(?:\.|\bdot\b|\bunderscore\b|\bdash\b)\s*[\w+-]+)*"
    r"\s*(?:@|\bat\b)\s*[\w-]+(?:\s*(?:\.|\bdot\b)\s*[\w-]+)*\s*(?:\.|\bdot\b)\s*"
    r"(?:com|org|net|edu|gov|io|co|uk|us|ca|de|fr|info|biz|me)\b",
    re.IGNORECASE,
)
_DIGIT_WORDS = {
    "zero": 1, "oh": 1, "o": 1, "one": 1, "two": 1, "three": 1, "four": 1, "five": 1,
    "six": 1, "seven": 1, "eight": 1, "nine": 1, "double": 1, "triple": 2,
}  # fmt: skip
_NUMBER_TOKEN = r"(?:\+?\d+|" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + r")"
_SPOKEN_NUMBER = re.compile(
    rf"(?<![\w]){_NUMBER_TOKEN}(?:[\s,.()-]+{_NUMBER_TOKEN})+(?![\w])",
    re.IGNORECASE,
)


def _spoken_digits(run: str) -> int:
    """How many digits a run of spoken or written number tokens stands for ("double" repeats the next one)."""
    count = 0
    for token in re.findall(r"\d|[a-z]+", run.lower()):
        count += 1 if token.isdigit() else _DIGIT_WORDS.get(token, 0)
    return count


def _spoken_number_mask(match: re.Match[str]) -> str:
    text = match.group(0)
    if not any(not ch.isdigit() and ch.isalpha() for ch in text):
        return text  # written digits only: left to the written-number pattern
    if not _MIN_PHONE_DIGITS <= _spoken_digits(text) <= _MAX_PHONE_DIGITS:
        return text
    return PHONE_MASK


def transcript_mask(text: str) -> str:
    """``text`` as a caller said it with phone numbers and emails masked, written or spoken.

    For the stored transcripts of a business that asked for it: besides what
    ``pii_mask`` catches, a number said as words ("five five five two oh
    one...", 7 to 15 digits) and an address said aloud ("jo at example dot
    com") are masked.
    """
    masked = _SPOKEN_EMAIL.sub(EMAIL_MASK, pii_mask(text))
    return _SPOKEN_NUMBER.sub(_spoken_number_mask, masked)


# Keys the logging pipeline itself writes; never personal data.
_SAFE_KEYS = frozenset({"timestamp", "level", "logger", "request_id"})


def pii_redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers and emails in every value of a log record.

    The last line of defence: log calls carry ids, lengths and timings, not
    what callers said; this catches what slips through (an exception message,
    a library's log line).
    """
    for key, value in event_dict.items():
        if key not in _SAFE_KEYS:
            event_dict[key] = pii_mask_value(value)
    return event_dict
