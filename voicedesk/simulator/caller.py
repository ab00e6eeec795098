"""The simulated caller: a rule-following "brain", a voice and an ear.

``CallerBrain`` decides what to say next from what the agent just said,
following the rules of the scenario format (``shared/scenarios/README.md``)
and nothing more: it answers only what it is asked, by trigger words in the
agent's question. It is pure and synchronous, so every decision is unit
tested.

``SimulatedCaller`` plays one scenario over a ``CarrierStream``: it speaks
with the offline TTS (resampled to 8 kHz μ-law), listens to the agent's
*played-out* audio with the offline STT, and segments agent turns by
playback idle gaps. ``SpeechModels`` loads both engines once per process;
concurrent simulated calls share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any, Final, Protocol

import numpy as np

from calls.audio import MULAW_FRAME_BYTES, MULAW_RATE, mulaw_decode, mulaw_encode, resample
from calls.pipeline.protocols import Pcm16, SpeechToText, TextToSpeech
from voicedesk.simulator.carrier import (
    FRAME_S,
    SILENCE_FRAME,
    CarrierError,
    CarrierStream,
    PlayedFrame,
    StreamStats,
    dial,
    new_sid,
)
from voicedesk.simulator.impair import LineImpairment
from voicedesk.simulator.scenario import CallerSpec

# -- the rules' constants ------------------------------------------------------
REPEAT_REQUEST: Final = "Sorry, could you repeat that?"
MAX_REPEATS_PER_PROMPT: Final = 2
NOTHING_MORE: Final = "No, that's all."
YES: Final = "Yes, that's right."
NO: Final = "No, that's not right."
GOODBYE: Final = "Thank you, goodbye."
TIME_UP: Final = "Sorry, I have to go now. Goodbye."
WANT_HUMAN: Final = "Can I speak to a real person, please?"
NO_SUCH_FACT: Final = "Sorry, I'd rather not say."
# A caller without an email or a preferred time says so, as people do; a
# name, number or address they lack they would rather not give.
NO_SUCH_FACT_LINES: Final = {
    "email": "Sorry, I don't have an email address.",
    "preferred_time": "I don't have a preferred time, any time is fine.",
}
SILENT_START_S: Final = 6.0
INTERRUPT_AFTER_S: Final = 1.0
MAX_CALL_S: Final = 4 * 60.0

# -- listening ----------------------------------------------------------------
# The agent's turn is over when nothing audible has played for this long.
TURN_IDLE_S: Final = 0.7
# Quiet put around an agent turn before it is transcribed (0.2 s each side).
SILENCE_PADDING: Final = SILENCE_FRAME * 10
# A turn the caller cannot make sense of may be a filler ("Okay.") before the
# real reply; wait this much longer for more speech before asking to repeat.
UNCLEAR_PATIENCE_S: Final = 2.5
# RMS of 8 kHz PCM above which a 20 ms frame counts as speech (about -50 dBFS);
# TTS leading silence and resampling ripple stay far below it.
SPEECH_RMS: Final = 100.0
# After the caller hangs up, give the product a moment to read the stop.
HANGUP_LINGER_S: Final = 0.5

FIELD_LABELS: Final = {
    "name": "name",
    "callback_number": "number",
    "address": "address",
    "email": "email",
    "preferred_time": "time",
}
# Trigger words for each field, as the README lists them.
_FIELD_TRIGGERS: Final = {
    "name": re.compile(r"\bnames?\b"),
    "callback_number": re.compile(r"\b(?:numbers?|phone)\b"),
    # "Your email address?" asks for the email only.
    "address": re.compile(r"(?<!email )(?<!e-mail )\baddress(?:es)?\b"),
    "email": re.compile(r"\be-?mails?\b"),
    # Not "one letter at a time" or "take your time".
    "preferred_time": re.compile(r"(?<!at a )(?<!your )\btimes?\b"),
}
_OPEN: Final = re.compile(
    r"\b(?:anything else|how can i help|how may i help|how can we help|what can i do for you|"
    r"what (?:are|were) you calling about|what you(?:'re| are) calling about|what is the reason for your call|"
    r"what can i help you with|help you with today)\b"
)
# "Letter by letter" alone asks for a spelling, as a person on the phone takes
# it: the ear may mishear "spell" ("Could you spill your name for me?").
_SPELL: Final = re.compile(r"\bspell(?:ing|ed)?\b|\bletter by letter\b|\bletter at a time\b")
_READ_BACK: Final = re.compile(
    r"\b(?:read (?:that|it|this|those|these|everything) back|read back|let me confirm|to confirm|"
    r"is that (?:right|correct|all correct)|is this (?:right|correct)|did i get that right|have i got that right|"
    r"does that sound right)\b"
)
_CHANGE: Final = re.compile(r"\bwhat should i (?:change|correct|fix)\b|\bwhich (?:one|detail|part) (?:is wrong|should)")
# The agent did not get what the caller said. ("I didn't hear anything" is a
# silence prompt, not this: there is nothing to say again.)
_SAY_AGAIN: Final = re.compile(
    r"\b(?:say (?:it|that) again|repeat (?:it|that)|one more time|didn't (?:quite )?(?:catch|get|understand)|"
    r"did not (?:quite )?(?:catch|get|understand)|missed (?:it|that)|pardon)\b"
)
_CLOSING: Final = re.compile(r"\b(?:good-?bye|bye|have a (?:great|good|nice) (?:day|evening|one))\b")
_SENTENCE: Final = re.compile(r"[^.!?]+[.!?]*")
# A number written only with digits and separators is read digit by digit.
_DIGITS_ONLY: Final = re.compile(r"^[\d\s().+-]+$")
_DIGIT_WORDS: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Intent(StrEnum):
    """Why the caller says (or does) what it does; used in transcripts and tests."""

    SAYS_FIRST = "says_first"
    ANSWER = "answer"
    SPELL = "spell"
    CONFIRM = "confirm"
    CORRECT = "correct"
    ASK = "ask"
    DONE = "done"
    HUMAN = "wants_human"
    SAY_AGAIN = "say_again"
    REPEAT = "repeat"
    GOODBYE = "goodbye"
    HANG_UP = "hang_up"
    LISTEN = "listen"  # nothing to say; keep listening


@dataclass(frozen=True, slots=True)
class Line:
    """One caller utterance: as written in transcripts, and as read to the TTS."""

    text: str
    spoken: str = ""

    def __post_init__(self) -> None:
        if not self.spoken:
            object.__setattr__(self, "spoken", self.text)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the caller does next.

    ``line`` is spoken after at least ``after_s`` seconds, counted from the
    end of the agent's turn (or, with ``barge_in``, from the moment the agent
    started talking, without waiting for it to finish). ``hang_up`` ends the
    call after the line, if any, has been spoken.
    """

    intent: Intent
    line: Line | None = None
    after_s: float = 0.0
    barge_in: bool = False
    hang_up: bool = False


# -- the brain ----------------------------------------------------------------


class CallerBrain:
    """Follows the scenario caller's rules. One per simulated call; not thread-safe."""

    def __init__(self, caller: CallerSpec) -> None:
        self.caller = caller
        self.facts: dict[str, str] = dict(caller.facts)
        self._asks = list(caller.asks)
        self._said_first = False
        self._human_asked = False
        self._corrected = False
        self._repeats = 0
        self._utterances = 0
        self._last_answer: Line | None = None  # the last line that said something (not a repeat request)
        self._done = False
        # Set when the opening line barged into the greeting: the greeting's
        # own turn (cut short or not) has then been answered already.
        self._greeting_answered_early = False

    @property
    def utterances(self) -> int:
        """How many lines the caller has decided to say so far."""
        return self._utterances

    @property
    def done(self) -> bool:
        """True once the caller has decided to hang up."""
        return self._done

    def on_agent_started(self) -> Decision | None:
        """The agent's first audio of the call is playing (the greeting has begun)."""
        if self.caller.behaviour.interrupts_greeting and not self._said_first:
            self._said_first = True
            self._greeting_answered_early = True
            return self._say(Intent.SAYS_FIRST, first_line(self.caller), after_s=INTERRUPT_AFTER_S, barge_in=True)
        return None

    @property
    def awaiting_greeting(self) -> bool:
        """True until the opening line is decided: the next reply does not depend on what is heard."""
        return not self._said_first

    def on_talked_over(self) -> Decision:
        """The agent said something while the caller was speaking; it stopped, so nothing to answer."""
        # Typically the greeting cut short by ``interrupts_greeting``: answered already.
        self._greeting_answered_early = False
        return Decision(Intent.LISTEN)

    def understands(self, text: str) -> bool:
        """Whether ``text`` gets a reply other than a request to repeat (no state change)."""
        if not self._said_first or self._greeting_answered_early or _is_closing(text):
            return True
        return classify_prompt(text).kind is not PromptKind.UNKNOWN

    def on_agent_turn(self, text: str) -> Decision:
        """The agent finished a turn that sounded like ``text``; decide the reply."""
        if self._done:
            return Decision(Intent.LISTEN)
        if not self._said_first:
            # Whatever the greeting says, the caller's opening line answers it.
            self._said_first = True
            after = SILENT_START_S if self.caller.behaviour.silent_start else 0.0
            return self._say(Intent.SAYS_FIRST, first_line(self.caller), after_s=after)
        if _is_closing(text):
            return self._say(Intent.GOODBYE, Line(GOODBYE), hang_up=True)
        prompt = classify_prompt(text)
        if self._greeting_answered_early:
            self._greeting_answered_early = False
            if prompt.kind in (PromptKind.UNKNOWN, PromptKind.OPEN):
                # The rest of the greeting, or a fragment of it: already answered.
                return Decision(Intent.LISTEN)
        if prompt.kind is PromptKind.UNKNOWN:
            if self._repeats >= MAX_REPEATS_PER_PROMPT:
                self._done = True
                return Decision(Intent.HANG_UP, hang_up=True)
            self._repeats += 1
            return self._say(Intent.REPEAT, Line(REPEAT_REQUEST))
        self._repeats = 0
        if self.caller.behaviour.wants_human and not self._human_asked:
            self._human_asked = True
            return self._say(Intent.HUMAN, Line(WANT_HUMAN))
        return self._answer(prompt)

    def on_time_up(self) -> Decision:
        """The call has lasted ``MAX_CALL_S``: say goodbye and hang up."""
        return self._say(Intent.GOODBYE, Line(TIME_UP), hang_up=True)

    def predictable_lines(self) -> list[Line]:
        """Lines this caller is likely to say, to synthesize before the call starts.

        Answers to several fields at once are left out: they are rare, and
        synthesized when needed.
        """
        lines = [first_line(self.caller)]
        corrections = self._corrections()
        for name, value in [*self.facts.items(), *corrections.items()]:
            lines.append(field_answer(name, value))
            if name in ("name", "email"):
                lines.append(spelled_line(value, email=name == "email"))
        if corrections:
            lines += [correction_line(corrections), correction_line(corrections, lead="")]
        lines += [Line(ask) for ask in self.caller.asks]
        lines += [Line(text) for text in (YES, NO, NOTHING_MORE, REPEAT_REQUEST, GOODBYE, TIME_UP, WANT_HUMAN)]
        lines.append(Line(NO_SUCH_FACT))
        lines += [Line(text) for name, text in NO_SUCH_FACT_LINES.items() if name not in self.facts]
        unique: dict[str, Line] = {}
        for line in lines:
            unique.setdefault(line.spoken, line)
        return list(unique.values())

    # -- answers -----------------------------------------------------------------
    def _answer(self, prompt: Prompt) -> Decision:
        if prompt.kind is PromptKind.SPELL:
            name = prompt.fields[0] if prompt.fields else "name"
            value = self.facts.get(name)
            if value is None:
                return self._say(Intent.ANSWER, field_answer(name, None))
            return self._say(Intent.SPELL, spelled_line(value, email=name == "email"))
        if prompt.kind is PromptKind.READ_BACK:
            return self._read_back()
        if prompt.kind is PromptKind.CHANGE:
            corrections = self._corrections()
            if corrections:
                return self._say(Intent.CORRECT, correction_line(corrections, lead=""))
            return self._say(Intent.CONFIRM, Line(YES))
        if prompt.kind is PromptKind.FIELDS:
            return self._say(Intent.ANSWER, self._field_answers(prompt.fields))
        if prompt.kind is PromptKind.OPEN:
            if self._asks:
                return self._say(Intent.ASK, Line(self._asks.pop(0)))
            return self._say(Intent.DONE, Line(NOTHING_MORE))
        # SAY_AGAIN: the agent did not get the last line; say it again.
        return self._say(Intent.SAY_AGAIN, self._last_answer or first_line(self.caller))

    def _read_back(self) -> Decision:
        confirms = self.caller.confirms
        if confirms is True or self._corrected:
            return self._say(Intent.CONFIRM, Line(YES))
        if confirms is False:
            return self._say(Intent.CONFIRM, Line(NO))
        self._corrected = True
        corrections = self._corrections()
        # From now on the corrected values are the caller's facts.
        self.facts.update(corrections)
        return self._say(Intent.CORRECT, correction_line(corrections))

    def _corrections(self) -> dict[str, str]:
        confirms = self.caller.confirms
        return dict(confirms) if isinstance(confirms, dict) else {}

    def _field_answers(self, fields: Sequence[str]) -> Line:
        parts = [field_answer(name, self.facts.get(name)) for name in fields]
        return Line(" ".join(p.text for p in parts), " ".join(p.spoken for p in parts))

    def _say(
        self, intent: Intent, line: Line, *, after_s: float = 0.0, barge_in: bool = False, hang_up: bool = False
    ) -> Decision:
        self._utterances += 1
        if intent not in (Intent.REPEAT, Intent.HUMAN):
            self._last_answer = line
        limit = self.caller.behaviour.hangs_up_after
        if limit is not None and self._utterances >= limit:
            hang_up = True
        if hang_up:
            self._done = True
        return Decision(intent, line, after_s=after_s, barge_in=barge_in, hang_up=hang_up)


# -- understanding the agent ----------------------------------------------------------------


class PromptKind(StrEnum):
    """What an agent turn asks the caller for."""

    SPELL = "spell"
    READ_BACK = "read_back"
    CHANGE = "change"
    FIELDS = "fields"
    OPEN = "open"
    SAY_AGAIN = "say_again"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Prompt:
    """An agent turn, understood: its kind and the fields it names, in spoken order."""

    kind: PromptKind
    fields: tuple[str, ...] = ()


def classify_prompt(text: str) -> Prompt:
    """Find what the agent is asking, from the asking part of its turn.

    The asking part is the last question and the sentence before it ("Sorry,
    I didn't catch your name. Could you say it again?"), plus any remark
    after it ("Could you spell your name? One letter at a time."); without a
    question mark, the last two sentences. Earlier sentences (an FAQ answer,
    "Thanks, Maria.") are ignored, so a field word in them is not mistaken
    for a question.

    Kinds are tried in order of how specific they are: a spelling request,
    a read-back, a correction, a field asked for, "say that again", then an
    open question. A field word in a trailing remark only counts when
    nothing else was asked.
    """
    asking = _asking_part(text)
    ranked: tuple[tuple[PromptKind, bool], ...] = (
        (PromptKind.SPELL, True),
        (PromptKind.READ_BACK, True),
        (PromptKind.CHANGE, True),
        (PromptKind.FIELDS, False),
        (PromptKind.SAY_AGAIN, True),
        (PromptKind.OPEN, True),
        (PromptKind.FIELDS, True),
    )
    prompts = [(_classify_sentence(sentence), trailing) for sentence, trailing in asking]
    for kind, trailing_ok in ranked:
        for prompt, trailing in reversed(prompts):
            if prompt.kind is kind and (trailing_ok or not trailing):
                if kind is PromptKind.SPELL and not prompt.fields:
                    # "Letter by letter." after the question: what to spell is named in the question.
                    named = [other.fields for other, _ in prompts if other.fields]
                    return Prompt(PromptKind.SPELL, named[-1] if named else ())
                return prompt
    return Prompt(PromptKind.UNKNOWN)


def _classify_sentence(sentence: str) -> Prompt:
    s = _normalize(sentence)
    fields = _fields_in(s)
    if _SPELL.search(s):
        return Prompt(PromptKind.SPELL, fields)
    if _READ_BACK.search(s):
        return Prompt(PromptKind.READ_BACK)
    if _CHANGE.search(s):
        return Prompt(PromptKind.CHANGE, fields)
    if fields:
        return Prompt(PromptKind.FIELDS, fields)
    if _SAY_AGAIN.search(s):
        return Prompt(PromptKind.SAY_AGAIN)
    if _OPEN.search(s):
        return Prompt(PromptKind.OPEN)
    return Prompt(PromptKind.UNKNOWN)


def _fields_in(sentence: str) -> tuple[str, ...]:
    found = []
    for name, pattern in _FIELD_TRIGGERS.items():
        match = pattern.search(sentence)
        if match:
            found.append((match.start(), name))
    return tuple(name for _, name in sorted(found))


def _asking_part(text: str) -> list[tuple[str, bool]]:
    """The sentences that can carry the question, each with whether it trails the last question."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip(" .!?")]
    questions = [i for i, s in enumerate(sentences) if s.endswith("?")]
    if not questions:
        return [(s, False) for s in sentences[-2:]]
    last = questions[-1]
    return [(s, i > last) for i, s in enumerate(sentences) if i >= last - 1]


def _is_closing(text: str) -> bool:
    """The agent says goodbye (and is not asking anything after it)."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip(" .!?")]
    tail = sentences[-2:]
    return any(_CLOSING.search(_normalize(s)) for s in tail) and not tail[-1].endswith("?")


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").lower()).strip()


# -- saying things --------------------------------------------------------------


def first_line(caller: CallerSpec) -> Line:
    """The opening line; with ``volunteers_all`` it also carries the name and number."""
    text = caller.says_first
    if not caller.behaviour.volunteers_all:
        return Line(text, speakable(text))
    lead: list[Line] = []
    name = caller.facts.get("name")
    number = caller.facts.get("callback_number")
    if name and name.lower() not in text.lower():
        lead.append(Line(f"This is {name}."))
    if number and not _mentions_number(text, number):
        lead.append(Line(f"My number is {number}.", f"My number is {say_number(number)}."))
    if not lead:
        return Line(text, speakable(text))
    return Line(" ".join([*(p.text for p in lead), text]), " ".join([*(p.spoken for p in lead), speakable(text)]))


def field_answer(name: str, value: str | None) -> Line:
    """The answer to a question about ``name``, e.g. "My number is 555 201 3344."."""
    if value is None:
        return Line(NO_SUCH_FACT_LINES.get(name, NO_SUCH_FACT))
    if name == "name":
        return Line(f"My name is {value}.")
    if name == "callback_number":
        return Line(f"My number is {value}.", f"My number is {say_number(value)}.")
    if name == "address":
        return Line(f"The address is {value}.")
    if name == "email":
        return Line(f"My email is {say_email(value)}.")
    if name == "preferred_time":
        return Line(f"{value[0].upper()}{value[1:]} would be best.")
    raise ValueError(f"unknown field {name!r}")


def correction_line(corrections: dict[str, str], *, lead: str = "No, ") -> Line:
    """A read-back correction: "No, the number is 555 867 5390."."""
    texts, spoken = [], []
    for name, value in corrections.items():
        label = FIELD_LABELS[name]
        if name == "callback_number":
            texts.append(f"the {label} is {value}")
            spoken.append(f"the {label} is {say_number(value)}")
        elif name == "email":
            texts.append(f"the {label} is {say_email(value)}")
            spoken.append(texts[-1])
        else:
            texts.append(f"the {label} is {value}")
            spoken.append(texts[-1])
    return Line(_capitalized(lead + ", and ".join(texts) + "."), _capitalized(lead + ", and ".join(spoken) + "."))


def spelled_line(value: str, *, email: bool = False) -> Line:
    """A spelling as written in the transcript, and as read to the TTS.

    Piper reads "M, A, R" with clipped letter names that the phone line
    blurs; "M - A - R" gets each letter its full length, as a person
    spelling over the phone would. Between hyphens espeak's phonemizer
    takes "A" and "I" for the words "a" and "I" and reduces them ("uh"),
    so those two are written as their letter names.
    """
    written = spell(value, email=email)
    if email:
        return Line(written)
    words = [w for w in value.split() if w]
    spoken = ", ".join(" - ".join(_letter_name(ch) for ch in word if ch.isalnum()) for word in words) + "."
    return Line(written, spoken)


# Letters espeak reads as words when they stand alone between hyphens.
_STRESSED_LETTERS: Final = {"A": "Eigh", "I": "Eye"}


def _letter_name(ch: str) -> str:
    return _STRESSED_LETTERS.get(ch.upper(), ch.upper())


def spell(value: str, *, email: bool = False) -> str:
    """Letter by letter: "Maria Gonzalez" -> "M, A, R, I, A. G, O, N, Z, A, L, E, Z."."""
    if email:
        symbols = {"@": "at", ".": "dot", "-": "dash", "_": "underscore", "+": "plus"}
        items = [symbols.get(ch, ch.upper()) for ch in value if not ch.isspace()]
        return ", ".join(items) + "."
    words = [w for w in re.split(r"[\s]+", value) if w]
    return " ".join(", ".join(ch.upper() for ch in word if ch.isalnum()) + "." for word in words)


def say_email(email: str) -> str:
    """An email as said aloud: "sofia.rossi@example.com" -> "sofia dot rossi at example dot com"."""
    return email.replace("@", " at ").replace(".", " dot ").replace("  ", " ").strip()


def say_digits(number: str) -> str:
    """Digit by digit, keeping the caller's grouping: "555 201 3344" -> "five five five, two zero one, ..."."""
    groups = [g for g in re.split(r"[^\d]+", number) if g]
    return ", ".join(" ".join(_DIGIT_WORDS[int(d)] for d in group) for group in groups)


def say_number(number: str) -> str:
    """A phone number as the caller says it.

    Written in digits ("555 201 3344") it is read digit by digit in its groups,
    as ``say_digits``. Written in words, the caller says it as written:
    "five five five, two oh one, double three four four" or "area code 415,
    555 0199" (digit runs still read digit by digit), so a scenario can use
    "oh", "double", a spoken area code or a correction mid-number.
    """
    if _DIGITS_ONLY.match(number):
        return say_digits(number)
    # A space after a group of three or more digits is a pause, as in "555 0199".
    number = re.sub(r"(\d{3,})\s+(?=\d)", r"\1, ", number)
    return re.sub(r"\d+", lambda m: " ".join(_DIGIT_WORDS[int(d)] for d in m.group(0)), number)


def _mentions_number(text: str, number: str) -> bool:
    """Whether the opening line already says the number (in digits or as written)."""
    if _DIGITS_ONLY.match(number):
        return _digits(number) in _digits(text)
    return _normalize(number) in _normalize(text)


def speakable(text: str) -> str:
    """Text for the TTS: runs of three or more digits (phone numbers) are read digit by digit."""
    return re.sub(r"\d{3,}(?:[ -]\d{3,})*", lambda m: say_digits(m.group(0)), text)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# -- voice and ear ---------------------------------------------------------------------


def is_speech(mulaw: bytes) -> bool:
    """Whether a μ-law frame is audible speech rather than (near) silence."""
    pcm = mulaw_decode(mulaw).astype(np.float32)
    return bool(pcm.size) and float(np.sqrt(np.mean(pcm * pcm))) >= SPEECH_RMS


def trim_silence(mulaw: bytes, *, keep_frames: int = 2) -> bytes:
    """Drop silent 20 ms frames at both ends, keeping ``keep_frames`` of margin.

    TTS output starts and ends with silence; trimmed, the caller's "last
    speech frame" is the last audible one, so latencies are not flattered.
    """
    frames = [mulaw[i : i + MULAW_FRAME_BYTES] for i in range(0, len(mulaw), MULAW_FRAME_BYTES)]
    voiced = [i for i, frame in enumerate(frames) if is_speech(frame)]
    if not voiced:
        return b""
    first = max(0, voiced[0] - keep_frames)
    last = min(len(frames), voiced[-1] + 1 + keep_frames)
    return b"".join(frames[first:last])


# The caller's ear decodes greedily over Whisper's whole 30 s window, as the
# product did before its own decoding was tuned for speed: the ear is the
# measuring instrument, so the product's tuning must not move it. (With the
# product's beam and 20 s window, the ear now and then stopped after the first
# sentence of an agent turn.)
EAR_WHISPER: Final = {"window_s": 30.0, "full_window_s": 30.0, "beam_size": 1}


class SpeechModels:
    """The caller's TTS and STT: loaded once per process, shared by concurrent calls.

    Synthesized lines are cached by text, since many ("Yes, that's right.")
    recur in every call. ``line`` is the phone line the caller's voice goes
    through: each line is impaired once, seeded by its text, so a run repeats
    exactly.
    """

    def __init__(
        self, tts: TextToSpeech | None = None, stt: SpeechToText | None = None, line: LineImpairment | None = None
    ) -> None:
        from calls.providers.registry import stt_for, tts_for

        self.tts = tts if tts is not None else tts_for("offline")
        self.stt = stt if stt is not None else stt_for("whisper", **EAR_WHISPER)
        self.line = line if line is not None and not line.is_clean else None
        self._voices: dict[str, bytes] = {}
        # Sum of squares and count of the clean speech samples synthesized so
        # far: the caller's usual level, which the line's noise is set against.
        self._speech_energy = 0.0
        self._speech_samples = 0

    async def voice(self, text: str) -> bytes:
        """``text`` spoken as 8 kHz μ-law, without leading or trailing silence, as the line delivers it."""
        cached = self._voices.get(text)
        if cached is None:
            chunks = [chunk async for chunk in self.tts.synthesize(text)]
            pcm: Pcm16 = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            narrow = await asyncio.to_thread(resample, pcm, self.tts.sample_rate, MULAW_RATE)
            # Trimmed before the line adds its noise: the caller's speech ends
            # where the voice ends, not where the hiss does.
            cached = trim_silence(mulaw_encode(narrow))
            if cached:
                clean = mulaw_decode(cached).astype(np.float64)
                self._speech_energy += float(np.sum(clean * clean))
                self._speech_samples += clean.size
            if self.line is not None and cached:
                cached = mulaw_encode(self.line.apply(mulaw_decode(cached), key=text))
            self._voices[text] = cached
        return cached

    @property
    def speech_rms(self) -> float:
        """The RMS of the caller's clean speech synthesized so far (0 before any)."""
        return (self._speech_energy / self._speech_samples) ** 0.5 if self._speech_samples else 0.0

    def idle_noise(self, *, key: str) -> Iterator[bytes] | None:
        """The line's background noise for one call (``key`` seeds it), or None on a quiet line."""
        return self.line.idle_noise(self.speech_rms, key=key) if self.line is not None else None

    async def hear(self, mulaw: bytes) -> str:
        """What the caller understands of ``mulaw`` agent audio (8 kHz)."""
        if not mulaw:
            return ""
        # A turn is cut at its first and last audible frame; Whisper given
        # speech from the very first to the very last sample sometimes stops
        # after the first sentence ("Thank you." of a whole read-back). An
        # ear hears the quiet around it too.
        padded = SILENCE_PADDING + mulaw + SILENCE_PADDING
        wide = await asyncio.to_thread(resample, mulaw_decode(padded), MULAW_RATE, self.stt.sample_rate)
        transcript = await self.stt.transcribe(wide)
        return transcript.text.strip()

    async def prepare(self, texts: Sequence[str]) -> None:
        """Synthesize ``texts`` now, so the caller answers without waiting for the TTS."""
        for text in texts:
            await self.voice(text)

    async def warm_up(self) -> None:
        """Load both engines now, so the first call does not wait for them."""
        await self.voice("Hello.")
        await self.hear(bytes([0xFF]) * MULAW_RATE)


VOICE_ENGINES: Final = ("piper", "espeak", "offline")


class VoiceSpecError(ValueError):
    """A caller voice specification is not understood."""


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    """Which TTS engine the caller speaks with, and its options.

    Written ``engine`` or ``engine:key=value,...``, e.g. ``piper:speed=0.85``,
    ``espeak:voice=en-gb,speed=1.1,pitch=40``; ``espeak:en-us+f3`` is short
    for ``espeak:voice=en-us+f3``. The options are the engine's own keyword
    arguments (see ``calls.providers``); the engine rejects ones it lacks.
    """

    engine: str = "offline"
    options: tuple[tuple[str, str | int | float], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> VoiceSpec:
        """Read a specification as described above."""
        engine, _, rest = spec.strip().partition(":")
        engine = engine.strip()
        if engine not in VOICE_ENGINES:
            raise VoiceSpecError(f"unknown caller voice engine {engine!r} (known: {', '.join(VOICE_ENGINES)})")
        options: dict[str, str | int | float] = {}
        for item in (part.strip() for part in rest.split(",")):
            if not item:
                continue
            key, sep, raw = item.partition("=")
            if not sep:
                if engine != "espeak" or options:
                    raise VoiceSpecError(f"voice option {item!r} must be written key=value")
                key, raw = "voice", item
            key, raw = key.strip(), raw.strip()
            if not key or not raw:
                raise VoiceSpecError(f"voice option {item!r} must be written key=value")
            if key in options:
                raise VoiceSpecError(f"voice option {key!r} is given twice")
            options[key] = _option_value(raw)
        return cls(engine=engine, options=tuple(options.items()))

    def describe(self) -> str:
        """The specification, as ``parse`` reads it."""
        if not self.options:
            return self.engine
        return self.engine + ":" + ",".join(f"{key}={value}" for key, value in self.options)

    def build(self) -> TextToSpeech:
        """The engine, built through the provider registry; ``VoiceSpecError`` if it refuses an option."""
        from calls.providers.registry import tts_for

        try:
            return tts_for(self.engine, **dict(self.options))
        except TypeError as exc:
            raise VoiceSpecError(f"caller voice {self.describe()!r}: {exc}") from exc
        except ValueError as exc:
            raise VoiceSpecError(f"caller voice {self.describe()!r}: {exc}") from exc


def _option_value(raw: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


@cache
def shared_speech_models() -> SpeechModels:
    """The process-wide ``SpeechModels`` (engines load on first use)."""
    return SpeechModels()


# -- listening: agent turns from the played-out audio ---------------------------------


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """One agent turn as played at the caller's phone."""

    started_at: float  # monotonic time its first audible frame played
    ended_at: float  # monotonic time its last audible frame finished
    audio: bytes  # μ-law, first to last audible frame, gaps kept as silence


class TurnListener:
    """Cuts the played-out agent audio into turns at idle gaps of ``idle_s``.

    A turn is not closed while the caller is speaking: a gap the caller is
    talking into is a barge-in, not the end of what the agent had to say.
    """

    def __init__(
        self,
        *,
        caller_speaking: Callable[[], bool],
        on_turn: Callable[[AgentTurn], None],
        idle_s: float = TURN_IDLE_S,
    ) -> None:
        self._caller_speaking = caller_speaking
        self._on_turn = on_turn
        self._idle_s = idle_s
        self._audio = bytearray()
        self._voiced_bytes = 0
        self._started_at: float | None = None
        self._last_voiced_at = 0.0
        self.first_speech = asyncio.Event()
        self.speech_started = asyncio.Event()  # set at the start of every turn

    @property
    def talking(self) -> bool:
        """True while a turn is in progress (audible audio played within ``idle_s``)."""
        return self._started_at is not None

    def on_tick(self, frame: PlayedFrame) -> None:
        """One 20 ms tick of playback."""
        if frame.agent is not None and is_speech(frame.agent):
            if self._started_at is None:
                self._started_at = frame.at
                self.speech_started.set()
                self.first_speech.set()
            self._audio += frame.agent
            self._voiced_bytes = len(self._audio)
            self._last_voiced_at = frame.at + FRAME_S
            return
        if self._started_at is None:
            return
        self._audio += frame.agent if frame.agent is not None else SILENCE_FRAME
        if frame.at + FRAME_S - self._last_voiced_at >= self._idle_s and not self._caller_speaking():
            self._emit()

    def flush(self) -> None:
        """Close the turn in progress now, if any (the call ended)."""
        if self._started_at is not None:
            self._emit()

    def _emit(self) -> None:
        assert self._started_at is not None
        turn = AgentTurn(self._started_at, self._last_voiced_at, bytes(self._audio[: self._voiced_bytes]))
        self._audio.clear()
        self._voiced_bytes = 0
        self._started_at = None
        self._on_turn(turn)


# -- one simulated call -------------------------------------------------------------------


@dataclass(slots=True)
class TranscriptEntry:
    """One line of the conversation, as the caller experienced it."""

    at_s: float  # seconds since the stream started
    speaker: str  # "agent", "caller" or "call" (events)
    text: str
    intent: str = ""
    latency_ms: float | None = None  # caller lines: until the agent's first audible reply frame


@dataclass(slots=True)
class ConversationResult:
    """What happened on the line during one simulated call."""

    scenario_id: str
    call_sid: str
    transcript: list[TranscriptEntry] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    end_reason: str = ""
    duration_s: float = 0.0
    stream: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    recording: bytes | None = None

    def format(self) -> str:
        """The conversation, one line per utterance, with timestamps and latencies."""
        lines = []
        for entry in sorted(self.transcript, key=lambda e: e.at_s):
            stamp = f"{int(entry.at_s // 60):02d}:{entry.at_s % 60:06.3f}"
            who = {"agent": "AGENT ", "caller": "CALLER", "call": "  --  "}.get(entry.speaker, entry.speaker)
            extra = f"  [{entry.intent}]" if entry.intent else ""
            if entry.latency_ms is not None:
                extra += f"  (agent replied after {entry.latency_ms:.0f} ms)"
            lines.append(f"  {stamp}  {who}  {entry.text}{extra}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Event:
    kind: str  # "turn", "started", "closed", "time_up"
    turn: AgentTurn | None = None


class CallLine(Protocol):
    """The caller's end of a call as ``SimulatedCaller`` uses it: ``CarrierStream``, or another transport's."""

    closed: asyncio.Event
    close_reason: str
    started_at: float  # monotonic time the line opened; tick 0 is due then
    last_speech_sent_at: float
    stats: StreamStats

    @property
    def caller_speaking(self) -> bool: ...

    async def open(self) -> None: ...

    async def hang_up(self) -> None: ...

    async def wait_closed(self) -> None: ...

    def speak(self, mulaw: bytes) -> asyncio.Future[float]: ...

    def stereo_wav(self) -> bytes: ...


class SimulatedCaller:
    """Places one scenario call through the carrier and plays the caller until someone hangs up."""

    def __init__(
        self,
        caller: CallerSpec,
        *,
        scenario_id: str,
        to_number: str,
        base_url: str,
        auth_token: str,
        models: SpeechModels,
        call_sid: str | None = None,
        record: bool = False,
        max_call_s: float = MAX_CALL_S,
        on_entry: Callable[[TranscriptEntry], None] | None = None,
    ) -> None:
        self.caller = caller
        self.brain = CallerBrain(caller)
        self.models = models
        self.base_url = base_url
        self.auth_token = auth_token
        self.to_number = to_number
        self.record = record
        self.max_call_s = max_call_s
        self.on_entry = on_entry
        self.account_sid = new_sid("AC")
        self.result = ConversationResult(scenario_id=scenario_id, call_sid=call_sid or new_sid("CA"))
        self.stream: CallLine | None = None
        self.listener: TurnListener | None = None
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._background: set[asyncio.Task[None]] = set()
        self._awaiting_reply: TranscriptEntry | None = None
        self._speech_end = 0.0
        self._last_agent_rx = 0.0  # last audible agent frame received

    async def run(self) -> ConversationResult:
        """Dial, talk until the call ends, and return what happened. Never raises for call failures."""
        started = time.monotonic()
        try:
            instructions = await dial(
                self.base_url,
                call_sid=self.result.call_sid,
                from_number=self.caller.phone,
                to_number=self.to_number,
                account_sid=self.account_sid,
                auth_token=self.auth_token,
            )
            await self.talk_on(
                CarrierStream(
                    instructions,
                    call_sid=self.result.call_sid,
                    account_sid=self.account_sid,
                    on_tick=self._on_tick,
                    on_media=self._on_media,
                    record=self.record,
                    idle=self.models.idle_noise(key=self.result.scenario_id),
                )
            )
        except CarrierError as exc:
            self.result.error = str(exc)
            self.result.end_reason = "carrier_error"
        finally:
            self.result.duration_s = round(time.monotonic() - started, 3)
        return self.result

    async def talk_on(self, line: CallLine) -> None:
        """Open ``line``, talk until the call ends, and keep how it ended; the line is closed afterwards.

        A transport's own caller (a LiveKit room, say) dials its way and then
        talks here, with the same rules as a carrier call.
        """
        self.stream = line
        self.listener = TurnListener(
            caller_speaking=lambda: line.caller_speaking,
            on_turn=lambda turn: self._events.put_nowait(_Event("turn", turn)),
        )
        await line.open()
        helpers = [
            asyncio.create_task(self._watch(line.closed.wait(), _Event("closed"))),
            asyncio.create_task(self._watch(self.listener.first_speech.wait(), _Event("started"))),
            asyncio.create_task(self._watch(asyncio.sleep(self.max_call_s), _Event("time_up"))),
        ]
        try:
            await self._converse()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await asyncio.gather(*self._background, return_exceptions=True)
            if not line.closed.is_set():
                await line.hang_up()
            await line.wait_closed()
        self.result.end_reason = line.close_reason
        self.result.stream = line.stats.summary()
        if self.record:
            self.result.recording = line.stereo_wav()

    # -- the conversation loop ------------------------------------------------------
    async def _converse(self) -> None:
        assert self.listener is not None
        assert self.stream is not None
        carry = ""
        while True:
            event = await self._events.get()
            if event.kind == "started":
                decision = self.brain.on_agent_started()
                if decision is not None:
                    await self._perform(decision, since=time.monotonic())
                    if decision.hang_up:
                        return
                continue
            if event.kind == "closed":
                await self._hear_last_words()
                self._log("call", f"the agent hung up ({self.stream.close_reason if self.stream else ''})")
                return
            if event.kind == "time_up":
                self._log("call", f"{self.max_call_s:.0f} s have passed")
                await self._perform(self.brain.on_time_up(), since=time.monotonic())
                return
            assert event.turn is not None
            turn = event.turn
            if self.brain.done:
                self._hear_later(turn)
                continue
            if turn.ended_at <= self.stream.last_speech_sent_at + FRAME_S:
                # It ended before the caller stopped talking: the caller has
                # spoken since (or over it), so it needs no answer.
                self._hear_later(turn)
                self.brain.on_talked_over()
                continue
            if self.brain.awaiting_greeting:
                # The opening line answers whatever the greeting says: do not wait for the ear.
                self._hear_later(turn)
                decision = self.brain.on_agent_turn("")
            else:
                heard = await self.models.hear(turn.audio)
                self._log("agent", heard or "(inaudible)", at=turn.started_at)
                text = f"{carry} {heard}".strip()
                carry = ""
                if self.listener.talking or (not self.brain.understands(text) and await self._agent_resumes()):
                    # More is coming ("Okay." then the real reply): decide on all of it.
                    carry = text
                    continue
                decision = self.brain.on_agent_turn(text)
            await self._perform(decision, since=turn.ended_at)
            if decision.hang_up:
                return

    async def _perform(self, decision: Decision, *, since: float) -> None:
        assert self.stream is not None
        assert self.listener is not None
        if decision.line is not None:
            audio = await self.models.voice(decision.line.spoken)
            delay = since + decision.after_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not decision.barge_in:
                while self.listener.talking and not self.stream.closed.is_set():
                    await asyncio.sleep(FRAME_S)  # let the agent finish; a caller does not talk over it
            if self.stream.closed.is_set():
                return
            entry = self._log("caller", decision.line.text, intent=decision.intent.value)
            try:
                ended = await self.stream.speak(audio)
            except CarrierError:
                return
            if not decision.hang_up and ended - self._last_agent_rx > TURN_IDLE_S:
                self._speech_end = ended
                self._awaiting_reply = entry
        if decision.hang_up:
            await asyncio.sleep(HANGUP_LINGER_S)
            self._log("call", "the caller hangs up")
            await self.stream.hang_up()

    def _hear_later(self, turn: AgentTurn) -> None:
        """Transcribe ``turn`` for the transcript only, without holding up the conversation."""

        async def hear() -> None:
            self._log("agent", await self.models.hear(turn.audio) or "(inaudible)", at=turn.started_at)

        task = asyncio.get_running_loop().create_task(hear())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _agent_resumes(self) -> bool:
        assert self.listener is not None
        self.listener.speech_started.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.speech_started.wait(), timeout=UNCLEAR_PATIENCE_S)
            return True
        return False

    async def _hear_last_words(self) -> None:
        """The call is over: transcribe what the agent said last, for the transcript."""
        assert self.listener is not None
        self.listener.flush()
        while not self._events.empty():
            turn = self._events.get_nowait().turn
            if turn is not None:
                self._log("agent", await self.models.hear(turn.audio) or "(inaudible)", at=turn.started_at)

    # -- plumbing ----------------------------------------------------------------------
    def _on_tick(self, frame: PlayedFrame) -> None:
        if self.listener is not None:
            self.listener.on_tick(frame)

    def _on_media(self, payload: bytes, arrived: float) -> None:
        if not is_speech(payload):
            return
        self._last_agent_rx = arrived
        entry = self._awaiting_reply
        if entry is not None:
            entry.latency_ms = round((arrived - self._speech_end) * 1000, 1)
            self.result.latencies_ms.append(entry.latency_ms)
            self._awaiting_reply = None

    async def _watch(self, awaitable: Awaitable[object], event: _Event) -> None:
        await awaitable
        self._events.put_nowait(event)

    def _log(self, speaker: str, text: str, *, at: float | None = None, intent: str = "") -> TranscriptEntry:
        started = self.stream.started_at if self.stream is not None else 0.0
        moment = at if at is not None else time.monotonic()
        entry = TranscriptEntry(at_s=round(max(0.0, moment - started), 3), speaker=speaker, text=text, intent=intent)
        self.result.transcript.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)
        return entry
