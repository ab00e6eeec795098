"""The default receptionist: deterministic slot filling plus FAQ retrieval, no LLM.

One ``ReceptionistPolicy`` per call. It takes whatever the caller volunteers,
asks for what is still missing one field at a time, reads contact details
back, answers FAQ questions at any point and closes with a goodbye. Its
words are in ``calls.dialogue.phrases``; its state is a ``Stage`` plus a
``DialogueState``, with the captured fields in the call context.

Each reply is decided whole in a few milliseconds (a thread keeps FAQ
embeddings off the event loop) and then streamed sentence by sentence.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import structlog

from calls.dialogue.answers import field_value, first_name, heard_number, is_request, name_confidence
from calls.dialogue.categories import CategoryChoice, CategoryClassifier, category_guides
from calls.dialogue.extract import (
    content_words,
    correction_fields,
    digits_near,
    extract_address,
    extract_digits,
    extract_email,
    extract_name,
    extract_phone,
    extract_preferred_time,
    has_no_time_preference,
    heard_words_kept,
    is_affirmative,
    is_backchannel,
    is_correction,
    is_goodbye,
    is_no_more,
    is_pleasantry,
    is_refusal,
    is_repeat_request,
    matches_urgent,
    mentioned_fields,
    mentions_caller_id,
    name_heard_loosely,
    national_digits,
    number_consensus,
    number_heard_before,
    only_first_spelled,
    phone_reading,
    priority_for,
    reason_text,
    spelled_letters,
    spelled_name,
    spelled_surname,
    split_sentences,
    wants_human,
    without_human_request,
)
from calls.dialogue.faq import POINTS_BACK, FaqIndex, is_question, request_and_question, split_questions
from calls.dialogue.phrases import (
    CALLER_ID_PROMPT,
    EXPECT,
    GO_AHEAD,
    GOODBYE,
    GREAT,
    GREETING_SILENCE,
    HEARD_NOTHING,
    HUMAN_AGAIN,
    HUMAN_FIRST,
    LABELS,
    MORE_PROMPT,
    NO_PROBLEM,
    NOTE_ADDED,
    NOTE_HAVE_THAT,
    NOTE_NOTED,
    NOTE_URGENT,
    NUMBER_RETRY_KEYPAD,
    OPEN_PROMPT,
    PROMPTS,
    SAY_AGAIN,
    SILENCE_GOODBYE,
    SORRY,
    SPELL_LAST_PROMPT,
    SPELL_PROMPT,
    SPELL_RETRY,
    STOCK_PHRASES,
    THANK_YOU,
    THANKS,
    TRANSFER_BUSY,
    TRANSFER_FAILED,
    TRANSFER_NO_ANSWER,
    TRANSFERRING,
    UNANSWERED,
    VERIFY_NUMBER_PROMPT,
    before_you_go,
    closing,
    fix_which,
    thanks_by_name,
)
from calls.dialogue.readback import read_back_email, read_back_number, read_back_text
from calls.dialogue.reply import Reply
from calls.dialogue.state import DialogueState, Stage
from calls.pipeline.protocols import (
    AgentSettings,
    CallContext,
    CallOutcome,
    Expectation,
    FaqEntry,
    FieldUpdate,
    ReplyPart,
    TextEmbedder,
    Transcript,
    TransferStatus,
)
from tenants.business_hours import BusinessHoursError, business_hours_open

# Imported from here by the pipeline (warm-up) and the demo data.
__all__ = ["STOCK_PHRASES", "AgentSettings", "ReceptionistPolicy", "read_back_email", "read_back_number"]

logger = structlog.get_logger(__name__)

# Contact fields, in the order they are asked when the tenant does not say.
CONTACT_FIELDS = ("name", "callback_number", "address", "email", "preferred_time")
# Needed for any callback, whatever the tenant's ``collect`` says.
ESSENTIAL_FIELDS = ("name", "callback_number")
# Estimated confidence in a heard name (see ``name_confidence``) below which
# the caller is asked to spell it. Measured with the piper "joe" voice over
# 8 kHz mu-law into Whisper tiny.en: "My name is <name>." scores 0.85-0.94
# when the name is right (0.67-0.86 once adjusted) and 0.42-0.88 when it is
# wrong ("Robert Chin" 0.85, "Asia Patel" 0.80, "Sophia Rossi" 0.69); bare
# names score 0.56-0.79 right and 0.36-0.60 wrong. Spelling a right name
# costs a turn, not the name: ``spelled_name`` keeps heard words the spelled
# letters do not improve on. Wrong names score up to 0.88, so nearly every
# name is spelled: a turn is cheaper than a wrong name on the ticket.
NAME_CONFIDENCE_THRESHOLD = 0.9
# A hearing that did not pass as a name ("My name is Angosi S.") weighs this
# much of its confidence as a hint when the caller then spells the name.
LOOSE_NAME_TRUST = 0.5
# Below this transcript confidence a spoken number is asked for once more and
# kept only when two hearings agree (or by a digit vote of three). Same setup:
# "My number is <digits>." scored 0.56-0.79, and both misheard but
# well-formed numbers (555-400-7788 for 555 410 7788) were under 0.7.
NUMBER_CONFIDENCE_THRESHOLD = 0.7
MAX_SILENCES = 3
# Prompts per field (normal, retry, last try) before the agent moves on.
MAX_FIELD_ATTEMPTS = 3
MAX_READBACKS = 3
# "Anything else?" this many times, then the call closes: a line that keeps turning noise or a
# misheard "no" into more to add would otherwise never end.
MAX_MORE_ASKS = 4
# Turns in a row after "Anything else?" with nothing understood: the third closes the call (what
# the caller said before is on the ticket) rather than ask them to say it again for ever.
MAX_UNCLEAR_TURNS = 2
MAX_SPELLING_ATTEMPTS = 2
# Words that make a time volunteered in passing a wish rather than a past event.
_WHEN_WANTED = re.compile(
    r"\b(?:prefer\w*|best|suits?|available|free|works for me|come|visit|book\w*|appointment|"
    r"can you|could you|would|want|need|like|asap|soon as)\b",
    re.IGNORECASE,
)


def heard_through(said: str, heard: str, question: str) -> bool:
    """Whether a caller who heard ``heard`` (a word prefix of ``said``) heard ``question`` in it.

    The last word may be missing: "Could I have your name, ..." is heard as
    a question. A question that is not part of ``said`` was asked earlier,
    and heard then.
    """
    at = said.rfind(question)
    if at < 0:
        return True
    needed = len(said[: at + len(question)].split())
    return len(heard.split()) >= needed - 1


class ReceptionistPolicy:
    """``DialoguePolicy`` that needs no LLM: slot filling, read-back, FAQ answers.

    The caller ID (E.164) becomes the callback number only when the caller
    agrees to it or never gives one. ``faq_index`` can be shared between the
    calls of a tenant; without it one is built from the settings' FAQs with
    ``embedder`` (MiniLM by default).
    """

    name = "receptionist"

    def __init__(
        self,
        context: CallContext,
        *,
        embedder: TextEmbedder | None = None,
        faq_index: FaqIndex | None = None,
        categorizer: CategoryClassifier | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if embedder is None:
            # Imported only when needed: the dialogue itself loads no model library.
            from calls.providers.minilm import MiniLMEmbedder

            embedder = MiniLMEmbedder()
        self.context = context
        self.state = DialogueState()
        self._embedder = embedder
        self._faq = faq_index if faq_index is not None else FaqIndex(context.settings.faqs, embedder)
        self._categorizer = categorizer
        self._category: tuple[tuple[str, bool], CategoryChoice] | None = None
        # When "now" is, for business hours (tests set it).
        self._clock = clock or (lambda: datetime.now(UTC))
        # The number a transfer decided this turn goes to; ``_parts`` ends the reply with it.
        self._transfer_to = ""

    # ------------------------------------------------------------------
    # DialoguePolicy
    # ------------------------------------------------------------------

    async def greet(self) -> AsyncIterator[ReplyPart]:
        """The tenant greeting; the caller's first words are then the reason."""
        before = dict(self.context.fields)
        for part in self._parts(before, self._greet()):
            yield part

    async def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        """React to one final caller utterance."""
        self.context.turn_add("caller", transcript.text.strip())
        async for part in self.decide(transcript):
            yield part

    async def decide(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        """React to an utterance already in the call's history.

        A policy that hands a turn over to this one (the LLM receptionist,
        when its model is slow or wrong) has recorded the utterance already.
        """
        before = dict(self.context.fields)
        # FAQ retrieval embeds the caller's words: a few milliseconds of CPU kept off the event loop.
        reply = await asyncio.to_thread(self._respond, transcript)
        for part in self._parts(before, reply):
            yield part

    async def on_silence(self) -> AsyncIterator[ReplyPart]:
        """Re-ask the pending question; after three silences in a row, hang up politely."""
        before = dict(self.context.fields)
        for part in self._parts(before, self._on_silence()):
            yield part

    def on_interrupted(self, *, said: str, heard: str) -> None:
        """Keep what the caller heard; a question they did not hear is not counted as asked."""
        self.context.agent_turn_cut(heard)
        state = self.state
        if not state.question or heard_through(said, heard, state.question):
            return
        state.question_heard = False
        state.unheard_questions.append(state.question)
        if state.question_counted:
            # Not asked after all: an answer to it is not a failed attempt, nor a read-back one of the three.
            if state.stage is Stage.CONFIRM:
                state.readbacks -= 1
            else:
                state.attempts[state.asking] -= 1
            state.question_counted = False
        logger.info("question_not_heard", stage=str(state.stage), heard_words=len(heard.split()))

    async def on_transfer(self, status: TransferStatus) -> AsyncIterator[ReplyPart]:
        """How the transfer went: put through (the call is over for the agent), or back here with a callback."""
        before = dict(self.context.fields)
        for part in self._parts(before, self._on_transfer(status)):
            yield part

    def outcome(self) -> CallOutcome:
        """What has been captured so far; the caller ID stands in for a missing callback number."""
        state, settings, caller_id = self.state, self.context.settings, self.context.caller_id
        fields = dict(self.context.fields)
        if "callback_number" not in fields and caller_id and self._needs_followup():
            fields["callback_number"] = caller_id
        reason = " ".join(r if r.endswith((".", "!", "?")) else r + "." for r in state.reasons)
        # A caller on their way to a person (or put through) needs no callback for it; a
        # transfer that failed gets its callback when it fails (see ``calls.hooks``).
        callback = self._needs_followup() and state.transfer not in ("dialing", "answered", "handed_off")
        priority = priority_for(reason, settings.urgent_keywords, state.wants_human)
        category = self._categorize(reason, urgent=priority == "urgent")
        return CallOutcome(
            fields=fields,
            reason=reason.rstrip("."),
            category=category.name,
            category_confidence=round(category.confidence, 3),
            category_review=category.review,
            priority=priority,
            faq_answered=list(state.faq_answered),
            unanswered_questions=list(state.unanswered),
            wants_human=state.wants_human,
            callback_requested=callback,
            confirmed=state.confirmed,
            completed=state.completed,
            resolved=not callback and state.transfer != "dialing" and (state.completed or bool(state.faq_answered)),
            transfer="dialing" if state.transfer == "handed_off" else state.transfer,
        )

    # ------------------------------------------------------------------
    # As the referee of another policy (the LLM receptionist): the same
    # changes its own turns make, once that policy has checked them
    # against the caller's words. The outcome stays this policy's.
    # ------------------------------------------------------------------

    @property
    def faq_index(self) -> FaqIndex:
        return self._faq

    def fields_wanted(self) -> set[str]:
        """The contact fields this business collects (name and number always)."""
        return set(self.context.settings.collect) | set(ESSENTIAL_FIELDS)

    def missing_fields(self) -> list[str]:
        """Fields still to ask for, in asking order (none until the call needs a follow-up)."""
        return self._missing()

    def field_record(self, name: str, value: str, transcript: Transcript | None = None) -> None:
        """Store a checked field; a name heard with low confidence is to be spelled next."""
        self._set(name, value)
        if name == "name" and transcript is not None:
            confidence = name_confidence(transcript, value)
            if confidence < NAME_CONFIDENCE_THRESHOLD:
                self._want_spelling(value, confidence)

    def reason_add(self, reason: str) -> bool:
        """Add a reason for the call (the caller's words); False if it was there already."""
        if not reason or reason in self.state.reasons:
            return False
        self.state.reasons.append(reason)
        return True

    def faq_answer(self, entry: FaqEntry) -> str:
        """Count ``entry`` as answered; its answer is what is said."""
        return self._record_answer(entry)

    def question_log(self, question: str) -> None:
        """A question the FAQ does not answer, for someone to follow up."""
        if question and question not in self.state.unanswered:
            self.state.unanswered.append(question)

    def human_request(self) -> str:
        """The caller asked for a person: noted, and what to tell them.

        When a transfer is possible now (``transfer_available``) the caller
        is told they are being put through, and the reply ends with the
        ``Transfer``; otherwise that someone will call back.
        """
        if self.transfer_available():
            self.state.wants_human = True
            self.state.transfer = "dialing"
            self._transfer_to = self.context.settings.transfer_number
            return TRANSFERRING
        note = HUMAN_AGAIN if self.state.wants_human else HUMAN_FIRST
        self.state.wants_human = True
        return note

    def transfer_take(self) -> str:
        """The number a transfer decided this turn goes to (once; empty when none was decided)."""
        transfer_to, self._transfer_to = self._transfer_to, ""
        return transfer_to

    def transfer_available(self) -> bool:
        """Whether a caller asking for a person can be put through now.

        Only once per call, when the business has a transfer number, the
        transport can transfer, and it is within the business hours.
        """
        settings = self.context.settings
        if not (settings.transfer_number and self.context.can_transfer) or self.state.transfer:
            return False
        try:
            return business_hours_open(self._clock(), settings.business_hours, settings.timezone)
        except BusinessHoursError:
            return False  # hours that cannot be read: nobody is known to be there

    def procedure_due(self) -> Reply | None:
        """The spelling or the read-back the captured details need now, if any.

        Asked in this policy's words and stages, so the caller's answer to it
        is handled by this policy.
        """
        state = self.state
        unconfirmed = not state.confirmed and any(f in self.context.fields for f in CONTACT_FIELDS)
        readback = unconfirmed and self._needs_followup() and not self._missing() and state.readbacks < MAX_READBACKS
        if state.spell_needed or readback:
            return self._next([])
        return None

    def goodbye(self) -> Reply:
        """The caller is done: close, or first ask once for a missing name or number."""
        return self._goodbye_or_last_ask()

    def _categorize(self, reason: str, *, urgent: bool) -> CategoryChoice:
        """The category for ``reason``, classified once per new reason."""
        if self._category is None or self._category[0] != (reason, urgent):
            if self._categorizer is None:
                settings = self.context.settings
                guides = category_guides(settings.categories, settings.category_guides, settings.category_examples)
                self._categorizer = CategoryClassifier(guides, self._embedder)
            self._category = ((reason, urgent), self._categorizer.classify(reason, urgent=urgent))
        return self._category[1]

    def _parts(self, before: dict[str, str], reply: Reply) -> list[ReplyPart]:
        """A decided reply as parts: the fields changed since ``before`` first, then the sentences."""
        after = self.context.fields
        changed: list[ReplyPart] = [
            FieldUpdate(name=name, value=after.get(name, ""))
            for name in (*before, *(n for n in after if n not in before))
            if before.get(name) != after.get(name)
        ]
        self.context.turn_add("agent", reply.text)
        transfer_to = self.transfer_take()
        if transfer_to:
            # The reply ends with the transfer instead of listening for an answer.
            reply = Reply(text=reply.text, transfer_to=transfer_to)
        return [*changed, *reply.parts()]

    # ------------------------------------------------------------------
    # Decisions, one whole reply each
    # ------------------------------------------------------------------

    def _greet(self) -> Reply:
        self.state.stage = Stage.OPEN
        return self._say(self.context.settings.greeting_text(), question=OPEN_PROMPT)

    def _respond(self, transcript: Transcript) -> Reply:
        state = self.state
        text = transcript.text.strip()
        state.silences = 0
        if state.stage is Stage.CLOSED:
            return self._say(GOODBYE, end_call=True)
        if not re.search(r"[A-Za-z0-9]", text):
            return self._say_again()
        if is_repeat_request(text):
            return self._say(state.last.text, expect=state.last.expect)
        notes: list[str] = []
        if wants_human(text):
            notes.append(self.human_request())
            if self._transfer_to:
                # Put through at once: what the caller said this turn goes on the ticket first.
                self._take_volunteered(transcript)
                self._read_sentences(text)
                return self._say(TRANSFERRING)
        match state.stage:
            case Stage.OPEN | Stage.MORE:
                return self._on_open(transcript, notes)
            case Stage.CONFIRM:
                return self._on_confirm(text, notes)
            case Stage.FIX:
                return self._on_fix(text, notes)
            case Stage.SPELL_NAME:
                return self._on_spelling(text, notes, alternatives=transcript.alternatives)
            case Stage.CALLER_ID:
                return self._on_caller_id(text, notes)
            case _:  # Stage.FIELD
                return self._on_field(state.asking, transcript, notes)

    def _on_transfer(self, status: TransferStatus) -> Reply:
        self.state.transfer = status
        if status in ("answered", "handed_off"):
            # The caller is with a person now (or the carrier put them through): nothing more to say.
            self.state.completed = True
            self.state.stage = Stage.CLOSED
            return self._say("", end_call=True)
        lead = {"busy": TRANSFER_BUSY, "no_answer": TRANSFER_NO_ANSWER}.get(status, TRANSFER_FAILED)
        return self._next([lead])

    def _on_silence(self) -> Reply:
        state = self.state
        if state.stage is Stage.CLOSED:
            return self._say(GOODBYE, end_call=True)
        state.silences += 1
        if state.silences >= MAX_SILENCES:
            state.stage = Stage.CLOSED
            return self._say(SILENCE_GOODBYE, end_call=True)
        if state.stage is Stage.OPEN and not self._engaged():
            return self._say(GREETING_SILENCE)
        return self._say(f"{HEARD_NOTHING} {state.question}", expect=state.question_expect)

    # ------------------------------------------------------------------
    # State handlers
    # ------------------------------------------------------------------

    def _on_open(self, transcript: Transcript, notes: list[str]) -> Reply:
        """After "How can I help?" or "Anything else?": reasons, questions, volunteered details."""
        text = transcript.text
        if self.state.stage is Stage.MORE and not notes and is_no_more(text):
            return self._goodbye_or_last_ask()
        had_reason = bool(self.state.reasons)
        before = dict(self.context.fields)
        self._take_volunteered(transcript)
        new_reasons, answers = self._read_sentences(text)
        got_details = self.context.fields != before
        if not (new_reasons or answers or got_details or notes):
            if is_goodbye(text):
                return self._goodbye_or_last_ask()
            if self.state.stage is Stage.MORE and (is_affirmative(text) or is_backchannel(text)):
                return self._say(GO_AHEAD, question=MORE_PROMPT)
            if is_pleasantry(text) or is_backchannel(text):
                return self._next(notes)
            if not is_correction(text) and any(
                self._already_have(name, value) for name, value in self._details_in(text).items()
            ):
                # A detail given again ("My number is ..." once more): it is on file, nothing is new.
                return self._next([NOTE_HAVE_THAT])
            if self.state.stage is Stage.MORE:
                self.state.unclear_turns += 1
                if self.state.unclear_turns > MAX_UNCLEAR_TURNS:
                    return self._goodbye_or_last_ask()
            return self._say_again()
        self.state.unclear_turns = 0
        if new_reasons:
            joined = " ".join(new_reasons)
            if matches_urgent(joined, self.context.settings.urgent_keywords):
                notes.append(NOTE_URGENT)
            elif had_reason:
                notes.append(NOTE_ADDED)
            elif not self.state.wants_human:
                notes.append(NOTE_NOTED)
        notes.extend(answers)
        return self._next(notes)

    def _on_field(self, name: str, transcript: Transcript, notes: list[str]) -> Reply:
        """The agent asked for one field; take it, or answer a question and ask again."""
        text = transcript.text
        no_preference = name == "preferred_time" and has_no_time_preference(text)
        if (is_refusal(text) or no_preference) and not notes:
            self.state.skipped.add(name)
            return self._next([NO_PROBLEM])
        reading = phone_reading(text, transcript.alternatives) if name == "callback_number" else None
        if reading is not None:
            text = reading.text
        value = field_value(name, text, self.context.caller_id)
        self._take_volunteered(transcript, skip=name)
        if reading is not None and value != self.context.caller_id:
            # Every hearing counts, whole or not: "555 410 77888" twice and
            # "555 400 7788" once agree on 555 410 7788.
            # Unless the numerals reading was whole, the words reading is a hearing too.
            checked = self._check_number(reading.hearings, transcript.confidence) if reading.hearings else None
            if checked is None and value is not None:
                return self._say(
                    " ".join([THANKS, *notes, VERIFY_NUMBER_PROMPT]),
                    expect="digits",
                    question=VERIFY_NUMBER_PROMPT,
                )
            value = checked
        if value is None:
            if name == "name" and (loose := name_heard_loosely(text)):
                # Kept for the spelling that follows: "Angosi S." still sounds like "Ngozi Eze".
                self.state.name_heard = loose
                self.state.name_confidence = name_confidence(transcript, loose) * LOOSE_NAME_TRUST
            if notes or is_question(text):
                if not notes:
                    notes.extend(self._answer(text))
                self.state.attempts[name] -= 1  # a question or a human request is not a failed answer
                return self._next(notes)
            if name == "callback_number" and self.state.number_hearings and not extract_digits(text):
                # The number was heard before and this repeat has none: keep the hearings' number, if clear.
                best = number_consensus(self.state.number_hearings)
                if best:
                    self._set(name, best)
                    return self._next(notes)
            if is_goodbye(text):
                return self._goodbye_or_last_ask()
            return self._next(notes)
        self._set(name, value)
        if name == "name":
            confidence = name_confidence(transcript, value)
            if confidence < NAME_CONFIDENCE_THRESHOLD:
                self._want_spelling(value, confidence)
            notes.append(THANKS if self.state.spell_needed else thanks_by_name(first_name(value)))
        return self._next(notes)

    def _check_number(self, readings: Sequence[str], confidence: float) -> str | None:
        """The number to keep (E.164) after this answer's ``readings`` of it, or None to hear it once more first."""
        hearings = self.state.number_hearings
        hearings.extend(readings)
        if len(hearings) == 1:
            number = number_consensus(hearings)
            return (
                number if number == extract_phone(readings[0]) and confidence >= NUMBER_CONFIDENCE_THRESHOLD else None
            )
        return number_consensus(hearings, final=len(hearings) >= 3)

    def _on_spelling(self, text: str, notes: list[str], *, alternatives: Sequence[str] = ()) -> Reply:
        """Rebuild the name from spelled letters (or take it plainly if not spelled)."""
        if self.state.spelled_first:
            return self._on_last_name(text, notes)
        spelled = spelled_name(
            text, heard=self.state.name_heard, heard_confidence=self.state.name_confidence, alternatives=alternatives
        )
        if spelled and self.state.name_heard and "name" in self.context.fields:
            # Only a name that passed as one can overrule the letters; a loose hearing only hints.
            spelled = heard_words_kept(spelled, self.state.name_heard)
        heard_words = self.state.name_heard.split()
        first_alone = spelled is not None and (len(spelled.split()) == 1 or only_first_spelled(text, spelled))
        if spelled and first_alone and len(heard_words) >= 2 and not self.state.last_name_asked:
            # One word spelled for a name said in several: the line (or the recognizer) lost the
            # rest. A receptionist asks for the last name rather than file half a name, or the
            # half it misheard.
            first = spelled.split()[0]
            self.state.last_name_asked = True
            self.state.spelled_first = first
            self._set("name", first)  # half a name spelled beats a whole one misheard
            return self._say(" ".join([*notes, SPELL_LAST_PROMPT]), expect="spelling", question=SPELL_LAST_PROMPT)
        plain = None if spelled else extract_name(text, asked=True)
        if plain and self._heard_otherwise(plain) and self.state.spell_attempts + 1 < MAX_SPELLING_ATTEMPTS:
            # Said again rather than spelled, and heard differently ("Sofia Rossi", then "Sophia
            # Russi"): neither hearing is to be trusted, so the spelling is asked for once more.
            self.state.spell_attempts += 1
            return self._say(" ".join([*notes, SPELL_RETRY]), expect="spelling", question=SPELL_RETRY)
        if spelled or plain:
            self._set("name", spelled or plain or "")
            self.state.spell_needed = False
            notes.append(THANK_YOU)
            return self._next(notes)
        if is_question(text) and not notes:
            return self._next(self._answer(text))
        self.state.spell_attempts += 1
        if self.state.spell_attempts >= MAX_SPELLING_ATTEMPTS:
            # Keep what was heard; the read-back still lets the caller fix it.
            self.state.spell_needed = False
            return self._next(notes)
        return self._say(" ".join([*notes, SPELL_RETRY]), expect="spelling", question=SPELL_RETRY)

    def _heard_otherwise(self, name: str) -> bool:
        """Whether ``name`` differs from the name first heard (letters only, any case)."""
        first = re.sub(r"[^a-z]", "", self.state.name_heard.lower())
        return bool(first) and re.sub(r"[^a-z]", "", name.lower()) != first

    def _on_last_name(self, text: str, notes: list[str]) -> Reply:
        """The answer to "your last name": spelled, said, or not given (the first name stays)."""
        first = self.state.spelled_first
        self.state.spelled_first = ""
        self.state.spell_needed = False
        heard_rest = " ".join(self.state.name_heard.split()[1:])
        last = None if is_refusal(text) else spelled_surname(text, heard_rest, self.state.name_confidence, first=first)
        if last is None and not is_refusal(text):
            plain = extract_name(text, asked=True)
            last = plain.split()[-1] if plain else None
        if last is not None and last.lower() == first.lower():
            last = None  # the first name spelled again: nothing more to add
        self._set("name", f"{first} {last}" if last else first)
        notes.append(THANK_YOU)
        return self._next(notes)

    def _on_confirm(self, text: str, notes: list[str]) -> Reply:
        """The read-back answer: a correction wins over a yes."""
        if self._apply_corrections(text):
            notes.insert(0, SORRY)
            return self._next(notes)
        if is_affirmative(text) and not self.state.question_heard:
            return self._next(notes)  # a yes to details not yet heard: read them again
        if is_affirmative(text):
            self.state.confirmed = True
            notes.append(GREAT)
            return self._next(notes)
        if is_correction(text):
            wrong = [f for f in mentioned_fields(text) if f in self.context.fields]
            if len(wrong) == 1:
                self._forget(wrong[0])
                return self._next([SORRY, *notes])
            captured = [f for f in CONTACT_FIELDS if f in self.context.fields]
            labels = [LABELS[f] for f in captured]
            question = fix_which(labels)
            self.state.stage = Stage.FIX
            return self._say(" ".join([SORRY, *notes, question]), question=question)
        if is_question(text) and not notes:
            return self._next(self._answer(text))
        return self._next(notes)

    def _on_fix(self, text: str, notes: list[str]) -> Reply:
        """The caller says which detail to change, or just gives the new value."""
        if self._apply_corrections(text):
            return self._next(notes)
        wrong = [f for f in mentioned_fields(text) if f in self.context.fields]
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
        earlier = self.state.number_hearings
        if number_heard_before(earlier, digits):
            # The same number once more, not a new one: weigh it with the earlier hearings.
            phone = number_consensus([*earlier, phone or digits], final=True)
        if phone and not digits_near(text, self.context.caller_id):
            self._set("callback_number", phone)
        elif is_affirmative(text) or mentions_caller_id(text) or digits_near(text, self.context.caller_id):
            self._set("callback_number", self.context.caller_id)
        else:
            self.state.skipped.add("callback_number")
        return self._next(notes)

    # ------------------------------------------------------------------
    # Understanding
    # ------------------------------------------------------------------

    def _read_sentences(self, text: str) -> tuple[list[str], list[str]]:
        """Split an open answer into new reasons and spoken replies to its questions."""
        reasons: list[str] = []
        answers: list[str] = []
        name = self.context.fields.get("name")
        previous = ""  # the statement just before, which "can you take that?" points back to
        for sentence in split_sentences(text):
            if is_question(sentence) and previous and POINTS_BACK.search(sentence.lower()) and reasons:
                match = self._faq.match(f"{previous} {sentence}")
                if match:
                    # "We have a piano too. Can you take that?": the statement was the question's subject.
                    if reasons[-1] == reason_text(previous, name=name):
                        reasons.pop()
                    answers.append(self._record_answer(match.entry))
                    previous = ""
                    continue
            previous = "" if is_question(sentence) else sentence
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
                if is_request(sentence) and not self.state.reasons and not reasons:
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
        self.state.reasons.extend(reasons)
        return reasons, answers

    def _answer(self, question: str) -> list[str]:
        """Answer each question of one sentence from the FAQ, or log it for a follow-up."""
        answers: list[str] = []
        parts = split_questions(question)
        halves = request_and_question(question) if len(parts) == 1 else None
        if halves and self._faq.match(halves[0]):
            # "...bring them over to my apartment, and do you take my Medicaid card?": the
            # first half asks for what an entry answers, so the second is a question of its own.
            parts = list(halves)
        for part, found in zip(parts, self._faq.match_each(parts), strict=True):
            match = found or self._faq.match_in_context(part, " ".join(self.state.reasons))
            if match:
                answer = self._record_answer(match.entry)
            else:
                self.state.unanswered.append(part.strip())
                answer = UNANSWERED
            if answer not in answers:
                answers.append(answer)
        return answers

    def _record_answer(self, entry: FaqEntry) -> str:
        if entry.question not in self.state.faq_answered:
            self.state.faq_answered.append(entry.question)
        return entry.answer

    def _take_volunteered(self, transcript: Transcript, skip: str = "") -> None:
        """Keep details given without being asked ("this is James, my number is...")."""
        for name, value in self._details_in(transcript.text).items():
            if name == skip:
                continue
            if name == "name" and "name" in self.context.fields:
                continue  # a second "it's ..." is far likelier to be a phrase than a new name
            if self._already_have(name, value) and not is_correction(transcript.text):
                continue
            self._set(name, value)
            if name == "name":
                confidence = name_confidence(transcript, value)
                if confidence < NAME_CONFIDENCE_THRESHOLD:
                    self._want_spelling(value, confidence)

    def _already_have(self, name: str, value: str) -> bool:
        """Whether ``value`` is the detail on file given again: the same, or the same number heard a little off.

        A caller who says their number once more after it was confirmed is
        repeating it, not changing it: "555-818-2422" heard for a filed
        555 818 4442 does not overwrite it. A change says so ("no, actually
        it's ..."), and callers check ``is_correction`` first.
        """
        have = self.context.fields.get(name)
        if have == value:
            return True
        if name != "callback_number" or not have or not value.startswith("+"):
            return False
        return number_heard_before([have], national_digits(value))

    def _details_in(self, text: str) -> dict[str, str]:
        """The details the business collects that ``text`` gives, by field."""
        wanted = set(self.context.settings.collect) | set(ESSENTIAL_FIELDS)
        found = {
            "name": extract_name(text),
            "callback_number": heard_number(text, self.context.caller_id) if len(extract_digits(text)) >= 7 else None,
            "email": extract_email(text),
            "address": extract_address(text),
            # "The light came on this morning" says when it happened, not when to come.
            "preferred_time": extract_preferred_time(text) if _WHEN_WANTED.search(text) else None,
        }
        return {name: value for name, value in found.items() if value and name in wanted}

    def _apply_corrections(self, text: str) -> bool:
        """Apply new values a caller gives at read-back; True if anything changed."""
        changed = False
        fixes = correction_fields(text)
        for name, raw in fixes.items():
            if name == "name":
                value = spelled_name(raw, heard=self.context.fields.get("name", "")) or extract_name(raw, asked=True)
            elif name == "callback_number":
                value = extract_phone(raw)  # as said: a correction is never snapped to the caller ID
            else:
                value = field_value(name, raw, self.context.caller_id)
            if value and value != self.context.fields.get(name):
                self._set(name, value)
                changed = True
                if name == "name" and not spelled_letters(raw):
                    # A corrected name was misheard once already: have it spelled.
                    self._want_spelling(value, 0.0)
        if fixes:
            return changed
        phone = extract_phone(text)
        if phone and phone != self.context.fields.get("callback_number"):
            self._set("callback_number", phone)
            return True
        email = extract_email(text)
        if email and email != self.context.fields.get("email"):
            self._set("email", email)
            return True
        if is_correction(text):
            rest = re.sub(r"^\W*(?:no|nope|nah|not quite|actually)\b[\s,.!-]*", "", text, flags=re.IGNORECASE)
            new_name = extract_name(text) or extract_name(rest, asked=True)
            if new_name and len(new_name.split()) >= 2 and new_name != self.context.fields.get("name"):
                self._set("name", new_name)
                self._want_spelling(new_name, 0.0)
                return True
        return False

    # ------------------------------------------------------------------
    # State and speech
    # ------------------------------------------------------------------

    def _set(self, name: str, value: str) -> None:
        if self.context.fields.get(name) != value:
            self.context.fields[name] = value
            self.state.confirmed = False
        self.state.attempts[name] = 0
        if name == "callback_number":
            self.state.number_hearings.clear()

    def _want_spelling(self, heard: str, confidence: float) -> None:
        """Ask for the name to be spelled next; ``heard`` and ``confidence`` help rebuild it."""
        self.state.spell_needed = True
        self.state.name_heard = heard
        self.state.name_confidence = confidence

    def _forget(self, name: str) -> None:
        self.context.fields.pop(name, None)
        if name == "name":
            self.state.name_heard = ""
        if name == "callback_number":
            self.state.number_hearings.clear()
        self.state.skipped.discard(name)
        self.state.attempts[name] = 0
        self.state.confirmed = False

    def _needs_followup(self) -> bool:
        return bool(self.state.reasons) or self.state.wants_human or bool(self.state.unanswered)

    def _engaged(self) -> bool:
        """The caller has said what the call is about (a request, a question or a person)."""
        return bool(self.state.faq_answered) or self._needs_followup()

    def _missing(self) -> list[str]:
        if not self._needs_followup():
            return []
        order = [f for f in self.context.settings.collect if f in CONTACT_FIELDS]
        order += [f for f in ESSENTIAL_FIELDS if f not in order]
        return [f for f in order if f not in self.context.fields and f not in self.state.skipped]

    def _next(self, notes: list[str]) -> Reply:
        """Say ``notes``, then ask the next thing the call needs."""
        if self.state.spell_needed:
            self.state.stage = Stage.SPELL_NAME
            self.state.spell_attempts = 0
            return self._say(" ".join([*notes, SPELL_PROMPT]), expect="spelling", question=SPELL_PROMPT)
        for name in self._missing():
            tries = self.state.attempts[name]
            if tries >= MAX_FIELD_ATTEMPTS:
                self.state.skipped.add(name)
                continue
            self.state.attempts[name] += 1
            if tries == MAX_FIELD_ATTEMPTS - 1 and name == "name":
                self.state.stage = Stage.SPELL_NAME
                self.state.spell_attempts = 0
                return self._say(" ".join([*notes, SPELL_PROMPT]), expect="spelling", question=SPELL_PROMPT)
            if tries == MAX_FIELD_ATTEMPTS - 1 and name == "callback_number" and self.context.caller_id:
                self.state.stage = Stage.CALLER_ID
                return self._say(" ".join([*notes, CALLER_ID_PROMPT]), expect="yes_no", question=CALLER_ID_PROMPT)
            question = PROMPTS[name][min(tries, 1)]
            if tries and name == "callback_number" and self.context.keypad:
                question = NUMBER_RETRY_KEYPAD
            self._ask_field(name)
            reply = self._say(" ".join([*notes, question]), expect=EXPECT[name], question=question)
            self.state.question_counted = True
            return reply
        unconfirmed = not self.state.confirmed and any(f in self.context.fields for f in CONTACT_FIELDS)
        if unconfirmed and self._needs_followup() and self.state.readbacks < MAX_READBACKS:
            self.state.readbacks += 1
            self.state.stage = Stage.CONFIRM
            question = read_back_text(self.context.fields, CONTACT_FIELDS)
            reply = self._say(" ".join([*notes, question]), expect="yes_no", question=question)
            self.state.question_counted = True
            return reply
        self.state.stage = Stage.MORE if self._engaged() else Stage.OPEN
        if self.state.stage is Stage.MORE:
            self.state.more_asks += 1
            if self.state.more_asks > MAX_MORE_ASKS:
                return self._goodbye_or_last_ask(notes)
        question = MORE_PROMPT if self.state.stage is Stage.MORE else OPEN_PROMPT
        return self._say(" ".join([*notes, question]), question=question)

    def _say_again(self) -> Reply:
        """Ask the caller to repeat what they just said (the pending question stays the same)."""
        return self._say(SAY_AGAIN, expect=self.state.question_expect)

    def _goodbye_or_last_ask(self, notes: list[str] | None = None) -> Reply:
        """Close, unless a callback is needed and the name or a number is still missing (asked once)."""
        notes = notes or []
        missing = [f for f in self._missing() if f == "name" or (f == "callback_number" and not self.context.caller_id)]
        if missing and not self.state.asked_before_goodbye:
            self.state.asked_before_goodbye = True
            name = missing[0]
            question = PROMPTS[name][0]
            self._ask_field(name)
            text = before_you_go(question)
            return self._say(" ".join([*notes, text]), expect=EXPECT[name], question=question)
        return self._close(notes)

    def _close(self, notes: list[str] | None = None) -> Reply:
        self.state.completed = True
        self.state.stage = Stage.CLOSED
        text = closing(self.context.settings.business_name, followup=self._needs_followup())
        return self._say(" ".join([*(notes or []), text]), end_call=True)

    def _say(self, text: str, *, expect: Expectation = "free", end_call: bool = False, question: str = "") -> Reply:
        # A hearing that did not pass as a name ("Angosi S.") would tell the turn-taking a wrong length.
        hint = self.state.name_heard if expect == "spelling" and "name" in self.context.fields else ""
        if hint and self.state.spelled_first:
            hint = " ".join(hint.split()[1:])  # only the last name is spelled now
        reply = Reply(text=text, expect=expect, end_call=end_call, answer_hint=hint)
        self.state.last = reply
        if question:
            self.state.question = question
            self.state.question_expect = expect
            self.state.question_heard = True
            self.state.question_counted = False
        return reply

    def _ask_field(self, name: str) -> None:
        self.state.stage = Stage.FIELD
        self.state.asking = name
