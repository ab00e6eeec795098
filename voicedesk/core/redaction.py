"""Masking of phone numbers and email addresses in text that must not carry them (logs)."""

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
