"""Contact details read back to the caller as they are said aloud."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from calls.dialogue.phrases import READ_BACK_ASK, READ_BACK_LEAD

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def read_back_number(e164: str) -> str:
    """Digit-by-digit words for a number, grouped as people say them.

    "+15552013344" -> "five five five, two zero one, three three four four".
    """
    digits = re.sub(r"\D", "", e164)
    if e164.startswith("+1") and len(digits) == 11:
        digits = digits[1:]
        groups = [digits[:3], digits[3:6], digits[6:]]
    else:
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2:] = [groups[-2] + groups[-1]]
    return ", ".join(" ".join(_DIGITS[int(d)] for d in g) for g in groups)


def read_back_email(email: str) -> str:
    """An email as it is said: "sofia dot rossi at example dot com"."""
    return email.replace(".", " dot ").replace("@", " at ").replace("_", " underscore ").replace("-", " dash ")


def read_back_text(fields: Mapping[str, str], order: Sequence[str]) -> str:
    """The read-back question for the captured ``fields``, in ``order``."""
    # Values only, no field words: a read-back must not sound like a new question.
    parts: list[str] = []
    for name in order:
        value = fields.get(name)
        if not value:
            continue
        if name == "callback_number":
            parts.append(read_back_number(value))
        elif name == "email":
            parts.append(read_back_email(value))
        else:
            parts.append(value)
    return f"{READ_BACK_LEAD} {'; '.join(parts)}. {READ_BACK_ASK}"
