"""What a caller's answer holds, given what the agent asked: pure functions of the words."""

from __future__ import annotations

import re

from calls.dialogue.extract import (
    digits_near,
    extract_address,
    extract_email,
    extract_name,
    extract_phone,
    extract_preferred_time,
    is_backchannel,
    is_goodbye,
    mentions_caller_id,
    normalize,
    spelled_letters,
    spelled_name,
)
from calls.dialogue.faq import is_question
from calls.pipeline.protocols import Transcript

_REQUEST = re.compile(
    r"^(?:(?:so|and|also|hi|hello|hey|um|uh|okay|please)\b[\s,]*)*"
    r"(?:(?:can|could|would|will)\s+(?:you|someone|somebody|anyone|one of your \w+)\s+(?:please\s+)?(?:also\s+)?"
    r"(?:come|send|fix|repair|look|help|book|schedule|install|replace|unblock|check|get|take|sort)"
    # "Can I get an appointment?" asks for a service; "Can I get into my unit late?" asks about access.
    r"|(?:can|could|may)\s+i\s+(?:book|schedule|get(?!\s+(?:in|into|inside|to|there|out|back|through)\b)|make|have)"
    r"|i(?:'d| would)\s+like"
    r"|i\s+(?:need|want)\b(?! to (?:know|ask)))"
)


def is_request(sentence: str) -> bool:
    """A service request phrased as a question ("Can you send someone...?")."""
    return bool(_REQUEST.search(normalize(sentence)))


def field_value(name: str, text: str, caller_id: str) -> str | None:
    """Parse the answer to a question about ``name``; ``caller_id`` is the number the call comes from."""
    if name == "name":
        if sum(len(g) for g in spelled_letters(text)) >= 3:
            return spelled_name(text)
        # A question only carries a name in "my name is ...; do you ...?".
        return extract_name(text, asked=not is_question(text))
    if name == "callback_number":
        return heard_number(text, caller_id)
    if name == "email":
        return extract_email(text, asked=True)
    if name == "address":
        if is_question(text) or is_goodbye(text) or is_backchannel(text):
            return None
        return extract_address(text, asked=True)
    if name == "preferred_time":
        if is_question(text) or is_goodbye(text) or is_backchannel(text):
            return None
        return extract_preferred_time(text, asked=True)
    return None


def heard_number(text: str, caller_id: str) -> str | None:
    """The callback number in an answer; the caller ID when it was meant.

    Digits within two edits of the caller ID are taken as a mishearing
    of it ("555-4434333" for 555 444 3333): callers mostly give the
    number they call from, and Whisper drops, doubles and swaps digits
    in runs. Corrections at read-back bypass this.
    """
    phone = extract_phone(text)
    meant_caller_id = mentions_caller_id(text) or digits_near(text, caller_id)
    return caller_id if caller_id and meant_caller_id else phone


def first_name(name: str) -> str:
    return name.split()[0] if name else ""


def name_confidence(transcript: Transcript, name: str) -> float:
    """How sure the recognizer was of the name itself, not of "My name is".

    The transcript confidence is a geometric mean over all tokens. Words
    around the name are near certain, so the name's own share is about
    ``confidence ** (words / name words)``; capped, as longer utterances
    carry uncertain words of their own.
    """
    words = len(re.findall(r"[A-Za-z0-9']+", transcript.text))
    share = min(2.5, max(1.0, words / max(1, len(name.split()))))
    return float(transcript.confidence**share)
