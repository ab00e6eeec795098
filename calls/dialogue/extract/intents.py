"""Confirmations, corrections, requests for a person and other caller intents."""

from __future__ import annotations

import re

from calls.dialogue.extract.text import APOSTROPHES, has_match, normalize, word_set

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
    return has_match(_AFFIRM, text) and not has_match(_NEGATE, text)


def is_correction(text: str) -> bool:
    """Whether the caller objects: "no", "actually it's ...", "that's wrong", "it should be ..."."""
    return has_match(_NEGATE, text)


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
    text = text.translate(APOSTROPHES)
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


HUMAN_REQUEST = re.compile(
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
    return has_match(HUMAN_REQUEST, text)


_BACKCHANNEL_WORDS = word_set(
    "uh huh uh-huh um hmm mm mhm mm-hmm okay ok yeah yes yep right sure alright all got it i see cool great "
    "thanks thank you so oh"
)


def is_backchannel(text: str) -> bool:
    """Only listening noises: "uh-huh", "okay", "yeah", "mm-hmm", "thank you"."""
    words = re.findall(r"[a-z]+(?:-[a-z]+)*", normalize(text))
    return bool(words) and all(w in _BACKCHANNEL_WORDS for w in words)


_DONE = re.compile(
    r"\b(?:that's all|that is all|that's it|that is it|that's everything|that'll be all|that will be all|"
    r"nothing else|nothing more|no thanks|no thank you|i'm good|i'm all set|all set|"
    # "We're done" ends a call only as the end of what is said: "check the repairs we're done
    # properly" (Whisper's "were") is a request.
    r"(?:i'm|we're|i am|we are) done(?= *(?:$|[.,!;]|here|now|then|thanks|thank you))|"
    r"no more questions|no other questions|not right now|goodbye|good bye|bye|that was it|that's about it)\b"
    r"|^(?:no|nope|nah)[.!]?$"
)


def is_goodbye(text: str) -> bool:
    """The caller is finished: "No, that's all", "nothing else", "bye"."""
    return has_match(_DONE, text)


# After "Anything else?" a "no" and a few words is a no, even when the words are misheard ("No,
# nice oil." for "No, that's all."). A caller with more to say says more, or "but", or asks.
_NO_MORE = re.compile(_LEAD + r"(?:no|nope|nah)\b[\s,.!-]*(?P<rest>[^?0-9]*)$")
_GOING_ON = re.compile(
    r"\b(?:but|also|and|actually|wait|one more|another|question|number|name|e-?mail|address|wrong|mistake)\b"
)
NO_MORE_WORDS = 3


def is_no_more(text: str) -> bool:
    """The answer to "Anything else?" is no: "No, that's fine", "Nope, I'm good", "No, not soil."."""
    match = _NO_MORE.match(normalize(text))
    if match is None:
        return False
    rest = match["rest"]
    return len(rest.split()) <= NO_MORE_WORDS and not _GOING_ON.search(rest)


_REFUSAL = re.compile(
    r"\b(?:rather not|prefer not|don't know|do not know|not sure|no idea|can't remember|don't remember|"
    r"don't have (?:one|an?\b)|do not have (?:one|an?\b)|skip (?:it|that|this)|not (?:say|tell|give)|"
    # Callers without an email say so in many ways; asking again would not help.
    r"(?:don't|do not) (?:really )?(?:use|do|have|check) e-?mails?|not on e-?mail|\bno e-?mail)"
)


def is_refusal(text: str) -> bool:
    """The caller will not or cannot give what was asked: "I'd rather not say", "I don't know"."""
    return has_match(_REFUSAL, text)


_REPEAT = re.compile(
    r"\b(?:repeat|say (?:that|it|again)|say that again|come again|pardon|didn't (?:catch|hear|get|understand)|"
    r"did not (?:catch|hear|get|understand)|what did you say|what was that|one more time|i missed that)\b"
    r"|^(?:sorry|what|huh|excuse me)\?*$"
)


def is_repeat_request(text: str) -> bool:
    """Whether the caller asks to hear it again: "Sorry, could you repeat that?", "come again?"."""
    return has_match(_REPEAT, text)
