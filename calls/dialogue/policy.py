"""The default receptionist: deterministic slot filling plus FAQ retrieval, no LLM.

One ``ReceptionistPolicy`` per call. It takes whatever the caller volunteers,
asks for what is still missing one field at a time, reads contact details
back, answers FAQ questions at any point and closes with a goodbye.

Prompts are worded so that each one mentions exactly the field it asks for
("name", "number", "address", "email", "time") and nothing else: callers,
and the scenario simulator, answer the field they hear named.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from calls.dialogue.extract import (
    categorize,
    content_words,
    correction_fields,
    digits_near,
    extract_address,
    extract_digits,
    extract_email,
    extract_name,
    extract_phone,
    extract_preferred_time,
    is_affirmative,
    is_backchannel,
    is_correction,
    is_goodbye,
    is_pleasantry,
    is_refusal,
    is_repeat_request,
    matches_urgent,
    mentioned_fields,
    mentions_caller_id,
    normalize,
    number_consensus,
    number_heard_before,
    priority_for,
    reason_text,
    spelled_letters,
    spelled_name,
    split_sentences,
    wants_human,
    without_human_request,
)
from calls.dialogue.faq import FaqEntry, FaqIndex, is_question
from calls.pipeline.protocols import CallOutcome, Expectation, Reply, TextEmbedder, Transcript

# Contact fields, in the order they are asked when the tenant does not say.
CONTACT_FIELDS = ("name", "callback_number", "address", "email", "preferred_time")
# Needed for any callback, whatever the tenant's ``collect`` says.
ESSENTIAL_FIELDS = ("name", "callback_number")
# Estimated confidence in a heard name (see ``_name_confidence``) below which
# the caller is asked to spell it. Measured with the piper "joe" voice over
# 8 kHz mu-law into Whisper tiny.en: "My name is <name>." scores 0.85-0.94
# when the name is right (0.67-0.86 once adjusted) and 0.42-0.88 when it is
# wrong ("Robert Chin" 0.85, "Asia Patel" 0.80, "Sophia Rossi" 0.69); bare
# names score 0.56-0.79 right and 0.36-0.60 wrong. Spelling a right name
# costs a turn, not the name: ``spelled_name`` keeps heard words the spelled
# letters do not improve on. Wrong names score up to 0.88, so nearly every
# name is spelled: a turn is cheaper than a wrong name on the ticket.
NAME_CONFIDENCE_THRESHOLD = 0.9
# Below this transcript confidence a spoken number is asked for once more and
# kept only when two hearings agree (or by a digit vote of three). Same setup:
# "My number is <digits>." scored 0.56-0.79, and both misheard but
# well-formed numbers (555-400-7788 for 555 410 7788) were under 0.7.
NUMBER_CONFIDENCE_THRESHOLD = 0.7
MAX_SILENCES = 3
# Prompts per field (normal, retry, last try) before the agent moves on.
MAX_FIELD_ATTEMPTS = 3
MAX_READBACKS = 3
MAX_SPELLING_ATTEMPTS = 2

_PROMPTS: dict[str, tuple[str, str]] = {
    "name": ("Could I have your name, please?", "Sorry, I didn't catch your name. Could you say it again?"),
    "callback_number": (
        "What's the best number to reach you on?",
        "Sorry, I didn't get the whole number. Could you say it again, digit by digit, with the area code?",
    ),
    "address": ("What's the address, please?", "Sorry, could you repeat the address?"),
    "email": ("Could I have your email, please?", "Sorry, could you say your email again, slowly?"),
    "preferred_time": ("What day and time would suit you best?", "Sorry, what time would work best for you?"),
}
_EXPECT: dict[str, Expectation] = {
    "name": "name",
    "callback_number": "digits",
    "address": "address",
    "email": "email",
    "preferred_time": "time",
}
_LABELS = {
    "name": "the name",
    "callback_number": "the number",
    "address": "the address",
    "email": "the email",
    "preferred_time": "the time",
}
_SPELL_PROMPT = "Could you spell your name for me, letter by letter?"
_SPELL_RETRY = "Sorry, could you spell your name again, one letter at a time?"
_CALLER_ID_PROMPT = "Shall we call you back on the number you're calling from?"
_VERIFY_NUMBER_PROMPT = "Just to be sure, could you say the number once more?"
_OPEN_PROMPT = "How can I help you today?"
_MORE_PROMPT = "Is there anything else I can help with?"
_GREETING_SILENCE = "Hello? Are you still there? Whenever you're ready, just tell me what you're calling about."
_UNANSWERED = (
    "I'm sorry, I don't have that information, but I've noted your question "
    "and someone from the team will follow up with you."
)
_HUMAN_FIRST = (
    "Of course. I can't transfer you right now, but I'll have someone from the team call you back as soon as possible."
)
_HUMAN_AGAIN = "I understand. I've asked for someone from the team to call you back as soon as possible."
_NOTE_URGENT = "That sounds urgent, so I'm marking it as a priority."
_NOTE_ADDED = "Thanks, I've added that to your request."
_NOTE_NOTED = "Okay, I've made a note of that."
_NO_PROBLEM = "No problem."
_THANKS = "Thanks."
_THANK_YOU = "Thank you."
_SORRY = "Sorry about that."
_GREAT = "Great, thank you."
_SAY_AGAIN = "Sorry, I didn't catch that. Could you say that again?"
_HEARD_NOTHING = "Sorry, I didn't hear anything."
_READ_BACK_LEAD = "Let me read that back:"
_READ_BACK_ASK = "Is that right?"
# Everything the agent says that is the same in every call. Synthesized once
# per process at start-up (calls/pipeline/factory.py), so a reply that opens
# with them plays at once and buys time to synthesize what follows.
STOCK_PHRASES: tuple[str, ...] = (
    *(prompt for prompts in _PROMPTS.values() for prompt in prompts),
    _SPELL_PROMPT,
    _SPELL_RETRY,
    _CALLER_ID_PROMPT,
    _VERIFY_NUMBER_PROMPT,
    _OPEN_PROMPT,
    _MORE_PROMPT,
    _GREETING_SILENCE,
    _UNANSWERED,
    _HUMAN_FIRST,
    _HUMAN_AGAIN,
    _NOTE_URGENT,
    _NOTE_ADDED,
    _NOTE_NOTED,
    _NO_PROBLEM,
    _THANKS,
    _THANK_YOU,
    _SORRY,
    _GREAT,
    _SAY_AGAIN,
    _HEARD_NOTHING,
    _READ_BACK_LEAD,
    _READ_BACK_ASK,
)
_REQUEST = re.compile(
    r"^(?:(?:so|and|also|hi|hello|hey|um|uh|okay|please)\b[\s,]*)*"
    r"(?:(?:can|could|would|will)\s+(?:you|someone|somebody|anyone|one of your \w+)\s+(?:please\s+)?(?:also\s+)?"
    r"(?:come|send|fix|repair|look|help|book|schedule|install|replace|unblock|check|get|take|sort)"
    r"|(?:can|could|may)\s+i\s+(?:book|schedule|get|make|have)|i(?:'d| would)\s+like"
    r"|i\s+(?:need|want)\b(?! to (?:know|ask)))"
)
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(slots=True)
class AgentSettings:
    """A tenant's receptionist configuration, as plain data."""

    business_name: str
    greeting: str = ""  # empty: "Thanks for calling {business_name}. How can I help?"
    # Fields to capture, among: name, callback_number, reason, address, email, preferred_time.
    collect: list[str] = field(default_factory=lambda: ["name", "callback_number", "reason"])
    categories: list[str] = field(default_factory=lambda: ["general"])
    urgent_keywords: list[str] = field(default_factory=list)
    faqs: list[FaqEntry] = field(default_factory=list)
    # Business words that bias speech recognition; read by the pipeline for the STT prompt.
    vocabulary: list[str] = field(default_factory=list)

    def greeting_text(self) -> str:
        """The tenant's greeting, or the default one."""
        return self.greeting.strip() or f"Thanks for calling {self.business_name}. How can I help?"


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


def _first_name(name: str) -> str:
    return name.split()[0] if name else ""


def _name_confidence(transcript: Transcript, name: str) -> float:
    """How sure the recognizer was of the name itself, not of "My name is".

    The transcript confidence is a geometric mean over all tokens. Words
    around the name are near certain, so the name's own share is about
    ``confidence ** (words / name words)``; capped, as longer utterances
    carry uncertain words of their own.
    """
    words = len(re.findall(r"[A-Za-z0-9']+", transcript.text))
    share = min(2.5, max(1.0, words / max(1, len(name.split()))))
    return float(transcript.confidence**share)


class ReceptionistPolicy:
    """``DialoguePolicy`` that needs no LLM: slot filling, read-back, FAQ answers.

    ``caller_id`` (E.164) becomes the callback number only when the caller
    agrees to it or never gives one. ``faq_index`` can be shared between the
    calls of a tenant; without it one is built from ``settings.faqs`` with
    ``embedder`` (MiniLM by default).
    """

    def __init__(
        self,
        settings: AgentSettings,
        *,
        caller_id: str = "",
        embedder: TextEmbedder | None = None,
        faq_index: FaqIndex | None = None,
    ) -> None:
        if embedder is None:
            from calls.providers.minilm import MiniLMEmbedder

            embedder = MiniLMEmbedder()
        self.settings = settings
        self.caller_id = caller_id
        self._embedder = embedder
        self._faq = faq_index if faq_index is not None else FaqIndex(settings.faqs, embedder)
        self._fields: dict[str, str] = {}
        self._reasons: list[str] = []
        self._faq_answered: list[str] = []
        self._unanswered: list[str] = []
        self._wants_human = False
        self._confirmed = False
        self._completed = False
        # What the last reply asked for: "open", "more", a field name,
        # "spell_name", "confirm", "fix", "caller_id" or "closed".
        self._pending = "open"
        self._last = Reply(text="")
        # The asking part of the last reply and what it expects, for re-prompts.
        self._question = ""
        self._question_expect: Expectation = "free"
        self._silences = 0
        self._attempts: Counter[str] = Counter()
        self._skipped: set[str] = set()
        self._readbacks = 0
        self._spell_needed = False
        self._name_heard = ""  # a name to be spelled, as first heard
        self._name_confidence = 0.0
        self._spell_attempts = 0
        self._asked_before_goodbye = False
        self._number_hearings: list[str] = []

    # ------------------------------------------------------------------
    # DialoguePolicy
    # ------------------------------------------------------------------

    def greet(self) -> Reply:
        """The tenant greeting; the caller's first words are then the reason."""
        self._pending = "open"
        return self._say(self.settings.greeting_text(), question=_OPEN_PROMPT)

    def respond(self, transcript: Transcript) -> Reply:
        """React to one final caller utterance."""
        text = transcript.text.strip()
        self._silences = 0
        if self._pending == "closed":
            return self._say("Goodbye!", end_call=True)
        if not re.search(r"[A-Za-z0-9]", text):
            return self._say_again()
        if is_repeat_request(text):
            return self._say(self._last.text, expect=self._last.expect)
        notes: list[str] = []
        if wants_human(text):
            notes.append(_HUMAN_AGAIN if self._wants_human else _HUMAN_FIRST)
            self._wants_human = True
        if self._pending in ("open", "more"):
            return self._on_open(transcript, notes)
        if self._pending == "confirm":
            return self._on_confirm(text, notes)
        if self._pending == "fix":
            return self._on_fix(text, notes)
        if self._pending == "spell_name":
            return self._on_spelling(text, notes, alternatives=transcript.alternatives)
        if self._pending == "caller_id":
            return self._on_caller_id(text, notes)
        return self._on_field(self._pending, transcript, notes)

    def on_silence(self) -> Reply:
        """Re-ask the pending question; after three silences in a row, hang up politely."""
        if self._pending == "closed":
            return self._say("Goodbye!", end_call=True)
        self._silences += 1
        if self._silences >= MAX_SILENCES:
            self._pending = "closed"
            return self._say(
                "I'm sorry, I can't hear anything, so I'll end the call now. "
                "Please call us back whenever you like. Goodbye.",
                end_call=True,
            )
        if self._pending == "open" and not self._engaged():
            return self._say(_GREETING_SILENCE)
        return self._say(f"{_HEARD_NOTHING} {self._question}", expect=self._question_expect)

    def outcome(self) -> CallOutcome:
        """What has been captured so far; the caller ID stands in for a missing callback number."""
        fields = dict(self._fields)
        if "callback_number" not in fields and self.caller_id and self._needs_followup():
            fields["callback_number"] = self.caller_id
        reason = " ".join(r if r.endswith((".", "!", "?")) else r + "." for r in self._reasons)
        callback = self._needs_followup()
        return CallOutcome(
            fields=fields,
            reason=reason.rstrip("."),
            category=categorize(reason, self.settings.categories, self._embedder),
            priority=priority_for(reason, self.settings.urgent_keywords, self._wants_human),
            faq_answered=list(self._faq_answered),
            unanswered_questions=list(self._unanswered),
            wants_human=self._wants_human,
            callback_requested=callback,
            confirmed=self._confirmed,
            completed=self._completed,
            resolved=not callback and (self._completed or bool(self._faq_answered)),
        )

    # ------------------------------------------------------------------
    # State handlers
    # ------------------------------------------------------------------

    def _on_open(self, transcript: Transcript, notes: list[str]) -> Reply:
        """After "How can I help?" or "Anything else?": reasons, questions, volunteered details."""
        text = transcript.text
        had_reason = bool(self._reasons)
        before = dict(self._fields)
        self._take_volunteered(transcript)
        new_reasons, answers = self._read_sentences(text)
        got_details = self._fields != before
        if not (new_reasons or answers or got_details or notes):
            if is_goodbye(text):
                return self._goodbye_or_last_ask()
            if self._pending == "more" and (is_affirmative(text) or is_backchannel(text)):
                return self._say("Sure, go ahead.", question=_MORE_PROMPT)
            if is_pleasantry(text) or is_backchannel(text):
                return self._next(notes)
            return self._say_again()
        if new_reasons:
            joined = " ".join(new_reasons)
            if matches_urgent(joined, self.settings.urgent_keywords):
                notes.append(_NOTE_URGENT)
            elif had_reason:
                notes.append(_NOTE_ADDED)
            elif not self._wants_human:
                notes.append(_NOTE_NOTED)
        notes.extend(answers)
        return self._next(notes)

    def _on_field(self, name: str, transcript: Transcript, notes: list[str]) -> Reply:
        """The agent asked for one field; take it, or answer a question and ask again."""
        text = transcript.text
        if is_refusal(text) and not notes:
            self._skipped.add(name)
            return self._next([_NO_PROBLEM])
        value = self._field_value(name, text)
        self._take_volunteered(transcript, skip=name)
        if name == "callback_number" and value != self.caller_id:
            # Every hearing counts, whole or not: "555 410 77888" twice and
            # "555 400 7788" once agree on 555 410 7788.
            digits = value or extract_digits(text)  # E.164 keeps its country code as "+..."
            checked = self._check_number(digits, transcript.confidence) if len(digits) >= 7 else None
            if checked is None and value is not None:
                return self._say(
                    " ".join([_THANKS, *notes, _VERIFY_NUMBER_PROMPT]),
                    expect="digits",
                    question=_VERIFY_NUMBER_PROMPT,
                )
            value = checked
        if value is None:
            if notes or is_question(text):
                if not notes:
                    notes.extend(self._answer(text))
                self._attempts[name] -= 1  # a question or a human request is not a failed answer
                return self._next(notes)
            if name == "callback_number" and self._number_hearings and not extract_digits(text):
                # The number was heard before and this repeat has none: keep the hearings' number, if clear.
                best = number_consensus(self._number_hearings)
                if best:
                    self._set(name, best)
                    return self._next(notes)
            if is_goodbye(text):
                return self._goodbye_or_last_ask()
            return self._next(notes)
        self._set(name, value)
        if name == "name":
            confidence = _name_confidence(transcript, value)
            if confidence < NAME_CONFIDENCE_THRESHOLD:
                self._want_spelling(value, confidence)
            notes.append(_THANKS if self._spell_needed else f"Thanks, {_first_name(value)}.")
        return self._next(notes)

    def _check_number(self, digits: str, confidence: float) -> str | None:
        """The number to keep (E.164) after this hearing of it, or None to hear it once more first."""
        hearings = self._number_hearings
        hearings.append(digits)
        if len(hearings) == 1:
            number = number_consensus(hearings)
            return number if number == extract_phone(digits) and confidence >= NUMBER_CONFIDENCE_THRESHOLD else None
        return number_consensus(hearings, final=len(hearings) >= 3)

    def _on_spelling(self, text: str, notes: list[str], *, alternatives: Sequence[str] = ()) -> Reply:
        """Rebuild the name from spelled letters (or take it plainly if not spelled)."""
        spelled = spelled_name(
            text, heard=self._name_heard, heard_confidence=self._name_confidence, alternatives=alternatives
        )
        plain = None if spelled else extract_name(text, asked=True)
        if spelled or plain:
            self._set("name", spelled or plain or "")
            self._spell_needed = False
            notes.append(_THANK_YOU)
            return self._next(notes)
        if is_question(text) and not notes:
            return self._next(self._answer(text))
        self._spell_attempts += 1
        if self._spell_attempts >= MAX_SPELLING_ATTEMPTS:
            # Keep what was heard; the read-back still lets the caller fix it.
            self._spell_needed = False
            return self._next(notes)
        return self._say(" ".join([*notes, _SPELL_RETRY]), expect="spelling", question=_SPELL_RETRY)

    def _on_confirm(self, text: str, notes: list[str]) -> Reply:
        """The read-back answer: a correction wins over a yes."""
        if self._apply_corrections(text):
            notes.insert(0, _SORRY)
            return self._next(notes)
        if is_affirmative(text):
            self._confirmed = True
            notes.append(_GREAT)
            return self._next(notes)
        if is_correction(text):
            wrong = [f for f in mentioned_fields(text) if f in self._fields]
            if len(wrong) == 1:
                self._forget(wrong[0])
                return self._next([_SORRY, *notes])
            captured = [f for f in CONTACT_FIELDS if f in self._fields]
            labels = [_LABELS[f] for f in captured]
            which = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
            question = f"What should I change: {which}?"
            self._pending = "fix"
            return self._say(" ".join([_SORRY, *notes, question]), question=question)
        if is_question(text) and not notes:
            return self._next(self._answer(text))
        return self._next(notes)

    def _on_fix(self, text: str, notes: list[str]) -> Reply:
        """The caller says which detail to change, or just gives the new value."""
        if self._apply_corrections(text):
            return self._next(notes)
        wrong = [f for f in mentioned_fields(text) if f in self._fields]
        for f in wrong:
            self._forget(f)
        name = None if wrong else extract_name(text, asked=True)
        if name:
            # Just the new name (a new number was already taken above).
            self._set("name", name)
            self._want_spelling(name, 0.0)
        return self._next(notes)

    def _on_caller_id(self, text: str, notes: list[str]) -> Reply:
        """Answer to "Shall we call you back on the number you're calling from?"."""
        digits = extract_digits(text)
        phone = extract_phone(text)
        earlier = self._number_hearings
        if number_heard_before(earlier, digits):
            # The same number once more, not a new one: weigh it with the earlier hearings.
            phone = number_consensus([*earlier, phone or digits], final=True)
        if phone and not digits_near(text, self.caller_id):
            self._set("callback_number", phone)
        elif is_affirmative(text) or mentions_caller_id(text) or digits_near(text, self.caller_id):
            self._set("callback_number", self.caller_id)
        else:
            self._skipped.add("callback_number")
        return self._next(notes)

    # ------------------------------------------------------------------
    # Understanding
    # ------------------------------------------------------------------

    def _read_sentences(self, text: str) -> tuple[list[str], list[str]]:
        """Split an open answer into new reasons and spoken replies to its questions."""
        reasons: list[str] = []
        answers: list[str] = []
        name = self._fields.get("name")
        for sentence in split_sentences(text):
            if is_repeat_request(sentence):
                continue
            if wants_human(sentence):
                # "...talk to someone about the bill" says why; "Can I talk to a person?" doesn't.
                if content_words(without_human_request(sentence)):
                    reasons.append(reason_text(sentence, name=name))
                continue
            if is_pleasantry(sentence):
                continue  # "Hello?" is not a question for the FAQ
            if is_question(sentence):
                if self._is_request(sentence) and not self._reasons and not reasons:
                    match = self._faq.match(sentence)
                    reasons.append(reason_text(sentence, name=name))
                    if match:
                        answers.append(self._record_answer(match.entry))
                    continue
                answers.extend(self._answer(sentence))
                continue
            if is_backchannel(sentence) or is_goodbye(sentence):
                continue
            reason = reason_text(sentence, name=name)
            if reason:
                reasons.append(reason)
        self._reasons.extend(reasons)
        return reasons, answers

    def _answer(self, question: str) -> list[str]:
        """Answer from the FAQ, or log the question for a follow-up."""
        match = self._faq.match(question)
        if match:
            return [self._record_answer(match.entry)]
        self._unanswered.append(question.strip())
        return [_UNANSWERED]

    def _record_answer(self, entry: FaqEntry) -> str:
        if entry.question not in self._faq_answered:
            self._faq_answered.append(entry.question)
        return entry.answer

    @staticmethod
    def _is_request(sentence: str) -> bool:
        """A service request phrased as a question ("Can you send someone...?")."""
        return bool(_REQUEST.search(normalize(sentence)))

    def _field_value(self, name: str, text: str) -> str | None:
        """Parse the answer to a question about ``name``."""
        if name == "name":
            if sum(len(g) for g in spelled_letters(text)) >= 3:
                return spelled_name(text)
            # A question only carries a name in "my name is ...; do you ...?".
            return extract_name(text, asked=not is_question(text))
        if name == "callback_number":
            return self._heard_number(text)
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

    def _heard_number(self, text: str) -> str | None:
        """The callback number in an answer; the caller ID when it was meant.

        Digits within two edits of the caller ID are taken as a mishearing
        of it ("555-4434333" for 555 444 3333): callers mostly give the
        number they call from, and Whisper drops, doubles and swaps digits
        in runs. Corrections at read-back bypass this.
        """
        phone = extract_phone(text)
        meant_caller_id = mentions_caller_id(text) or digits_near(text, self.caller_id)
        return self.caller_id if self.caller_id and meant_caller_id else phone

    def _take_volunteered(self, transcript: Transcript, skip: str = "") -> None:
        """Keep details given without being asked ("this is James, my number is...")."""
        text = transcript.text
        wanted = set(self.settings.collect) | set(ESSENTIAL_FIELDS)
        found = {
            "name": extract_name(text),
            "callback_number": self._heard_number(text) if len(extract_digits(text)) >= 7 else None,
            "email": extract_email(text),
            "address": extract_address(text),
            "preferred_time": extract_preferred_time(text),
        }
        for name, value in found.items():
            if name == skip or not value or name not in wanted:
                continue
            if name == "name" and "name" in self._fields:
                continue  # a second "it's ..." is far likelier to be a phrase than a new name
            self._set(name, value)
            if name == "name":
                confidence = _name_confidence(transcript, value)
                if confidence < NAME_CONFIDENCE_THRESHOLD:
                    self._want_spelling(value, confidence)

    def _apply_corrections(self, text: str) -> bool:
        """Apply new values a caller gives at read-back; True if anything changed."""
        changed = False
        fixes = correction_fields(text)
        for name, raw in fixes.items():
            if name == "name":
                value = spelled_name(raw, heard=self._fields.get("name", "")) or extract_name(raw, asked=True)
            elif name == "callback_number":
                value = extract_phone(raw)  # as said: a correction is never snapped to the caller ID
            else:
                value = self._field_value(name, raw)
            if value and value != self._fields.get(name):
                self._set(name, value)
                changed = True
                if name == "name" and not spelled_letters(raw):
                    # A corrected name was misheard once already: have it spelled.
                    self._want_spelling(value, 0.0)
        if fixes:
            return changed
        phone = extract_phone(text)
        if phone and phone != self._fields.get("callback_number"):
            self._set("callback_number", phone)
            return True
        email = extract_email(text)
        if email and email != self._fields.get("email"):
            self._set("email", email)
            return True
        if is_correction(text):
            rest = re.sub(r"^\W*(?:no|nope|nah|not quite|actually)\b[\s,.!-]*", "", text, flags=re.IGNORECASE)
            new_name = extract_name(text) or extract_name(rest, asked=True)
            if new_name and len(new_name.split()) >= 2 and new_name != self._fields.get("name"):
                self._set("name", new_name)
                self._want_spelling(new_name, 0.0)
                return True
        return False

    # ------------------------------------------------------------------
    # State and speech
    # ------------------------------------------------------------------

    def _set(self, name: str, value: str) -> None:
        if self._fields.get(name) != value:
            self._fields[name] = value
            self._confirmed = False
        self._attempts[name] = 0
        if name == "callback_number":
            self._number_hearings.clear()

    def _want_spelling(self, heard: str, confidence: float) -> None:
        """Ask for the name to be spelled next; ``heard`` and ``confidence`` help rebuild it."""
        self._spell_needed = True
        self._name_heard = heard
        self._name_confidence = confidence

    def _forget(self, name: str) -> None:
        self._fields.pop(name, None)
        if name == "name":
            self._name_heard = ""
        if name == "callback_number":
            self._number_hearings.clear()
        self._skipped.discard(name)
        self._attempts[name] = 0
        self._confirmed = False

    def _needs_followup(self) -> bool:
        return bool(self._reasons) or self._wants_human or bool(self._unanswered)

    def _engaged(self) -> bool:
        """The caller has said what the call is about (a request, a question or a person)."""
        return bool(self._faq_answered) or self._needs_followup()

    def _missing(self) -> list[str]:
        if not self._needs_followup():
            return []
        order = [f for f in self.settings.collect if f in CONTACT_FIELDS]
        order += [f for f in ESSENTIAL_FIELDS if f not in order]
        return [f for f in order if f not in self._fields and f not in self._skipped]

    def _read_back_text(self) -> str:
        # Values only, no field words: a read-back must not sound like a new question.
        parts: list[str] = []
        for name in CONTACT_FIELDS:
            value = self._fields.get(name)
            if not value:
                continue
            if name == "callback_number":
                parts.append(read_back_number(value))
            elif name == "email":
                parts.append(read_back_email(value))
            else:
                parts.append(value)
        return f"{_READ_BACK_LEAD} {'; '.join(parts)}. {_READ_BACK_ASK}"

    def _next(self, notes: list[str]) -> Reply:
        """Say ``notes``, then ask the next thing the call needs."""
        if self._spell_needed:
            self._pending = "spell_name"
            self._spell_attempts = 0
            return self._say(" ".join([*notes, _SPELL_PROMPT]), expect="spelling", question=_SPELL_PROMPT)
        for name in self._missing():
            tries = self._attempts[name]
            if tries >= MAX_FIELD_ATTEMPTS:
                self._skipped.add(name)
                continue
            self._attempts[name] += 1
            if tries == MAX_FIELD_ATTEMPTS - 1 and name == "name":
                self._name_heard = ""  # nothing usable was heard this time
                self._pending = "spell_name"
                self._spell_attempts = 0
                return self._say(" ".join([*notes, _SPELL_PROMPT]), expect="spelling", question=_SPELL_PROMPT)
            if tries == MAX_FIELD_ATTEMPTS - 1 and name == "callback_number" and self.caller_id:
                self._pending = "caller_id"
                return self._say(" ".join([*notes, _CALLER_ID_PROMPT]), expect="yes_no", question=_CALLER_ID_PROMPT)
            question = _PROMPTS[name][min(tries, 1)]
            self._pending = name
            return self._say(" ".join([*notes, question]), expect=_EXPECT[name], question=question)
        unconfirmed = not self._confirmed and any(f in self._fields for f in CONTACT_FIELDS)
        if unconfirmed and self._needs_followup() and self._readbacks < MAX_READBACKS:
            self._readbacks += 1
            self._pending = "confirm"
            question = self._read_back_text()
            return self._say(" ".join([*notes, question]), expect="yes_no", question=question)
        self._pending = "more" if self._engaged() else "open"
        question = _MORE_PROMPT if self._pending == "more" else _OPEN_PROMPT
        return self._say(" ".join([*notes, question]), question=question)

    def _say_again(self) -> Reply:
        """Ask the caller to repeat what they just said (the pending question stays the same)."""
        return self._say(_SAY_AGAIN, expect=self._question_expect)

    def _goodbye_or_last_ask(self) -> Reply:
        """Close, unless a callback is needed and the name or a number is still missing (asked once)."""
        missing = [f for f in self._missing() if f == "name" or (f == "callback_number" and not self.caller_id)]
        if missing and not self._asked_before_goodbye:
            self._asked_before_goodbye = True
            name = missing[0]
            question = _PROMPTS[name][0]
            self._pending = name
            text = f"Before you go, so the team can call you back: {question}"
            return self._say(text, expect=_EXPECT[name], question=question)
        return self._close()

    def _close(self) -> Reply:
        self._completed = True
        self._pending = "closed"
        business = self.settings.business_name
        if self._needs_followup():
            text = f"Thanks for calling {business}. Someone from the team will be in touch soon. Goodbye!"
        else:
            text = f"Thanks for calling {business}. Have a great day. Goodbye!"
        return self._say(text, end_call=True)

    def _say(self, text: str, *, expect: Expectation = "free", end_call: bool = False, question: str = "") -> Reply:
        hint = self._name_heard if expect == "spelling" else ""
        reply = Reply(text=text, expect=expect, end_call=end_call, answer_hint=hint)
        self._last = reply
        if question:
            self._question = question
            self._question_expect = expect
        return reply
