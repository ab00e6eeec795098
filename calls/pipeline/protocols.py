"""The typed seams of the call pipeline.

Every vendor or offline engine lives in one module under ``calls/providers``
and implements one of these protocols. The pipeline core only ever talks to
these types, so adding a provider never touches the core.

Audio conventions: PCM is mono ``numpy.int16``; each object states its own
``sample_rate``. Resampling and μ-law coding live in ``calls.audio``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Pcm16 = npt.NDArray[np.int16]
Float32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Transcript:
    """A final transcript of one caller utterance."""

    text: str
    confidence: float  # 0..1, provider's own scale mapped to a probability
    words: tuple[str, ...] = ()
    # Other readings of the same audio (letters only on spelling turns, digits as words on number turns).
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SttHints:
    """What the session knows about the next caller utterance.

    Each engine turns hints into its own biasing (a Whisper prompt, a cloud
    engine's keyword boost or formatting mode); an engine may ignore any of
    them. ``answer_hint`` is what the answer should look like when the
    dialogue knows (for spelling: the name as first heard).
    """

    expect: Expectation = "free"
    business_name: str = ""
    vocabulary: tuple[str, ...] = ()
    answer_hint: str = ""


@runtime_checkable
class SpeechToText(Protocol):
    """Batch recognition: turns one finished utterance into text.

    The session's voice activity detector decides when an utterance is
    finished and hands over its audio. Implementations must be safe to
    share between concurrent calls in one process (models load once per
    process) and must not block the event loop: heavy work runs in a thread
    or another process.
    """

    name: str
    sample_rate: int  # the rate ``transcribe`` expects

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None) -> Transcript:
        """Transcribe ``audio`` (``sample_rate`` Hz), biased by ``hints``.

        An engine that can hear an utterance in more than one way returns the
        other readings in ``alternatives``: letters only on spelling turns,
        digits as words on number turns.
        """
        ...


class SttEventKind(Enum):
    PARTIAL = "partial"  # the words so far; may still change
    FINAL = "final"  # a stretch of speech the engine will not revise
    END_OF_TURN = "end_of_turn"  # the engine judges the caller has finished their turn


@dataclass(frozen=True, slots=True)
class SttEvent:
    """One event of a recognition stream. ``transcript`` is empty for ``END_OF_TURN``."""

    kind: SttEventKind
    transcript: Transcript = Transcript(text="", confidence=0.0)


@runtime_checkable
class SpeechStream(Protocol):
    """One call's open recognition stream.

    ``feed`` never blocks (it queues or sends); results come out of
    ``events`` as they are ready, in order, until ``close``.
    """

    def feed(self, pcm: Pcm16) -> None:
        """Caller audio at the engine's ``sample_rate``, in arrival order."""
        ...

    def update_hints(self, hints: SttHints) -> None:
        """What is expected from now on (the agent asked a new question)."""
        ...

    def events(self) -> AsyncIterator[SttEvent]:
        """Partial and final transcripts and, where the engine has them, end-of-turn events."""
        ...

    async def close(self) -> None:
        """Flush and end the stream; ``events`` ends after the last result."""
        ...


@runtime_checkable
class StreamingSpeechToText(Protocol):
    """Streaming recognition: audio in as it arrives, transcripts out as they form.

    Engines with their own endpointing report ``END_OF_TURN``; the session
    then answers without waiting out its own endpoint delay. Shared by every
    call in the process, like ``SpeechToText``; each call opens its stream.
    """

    name: str
    sample_rate: int  # the rate ``SpeechStream.feed`` expects

    async def open(self, hints: SttHints) -> SpeechStream:
        """Open one call's stream."""
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Streams synthesized speech for a text, first chunk as early as possible."""

    name: str
    sample_rate: int  # rate of the chunks ``synthesize`` yields

    def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        """Yield PCM chunks for ``text``; cancelling the iterator stops synthesis."""
        ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Per-call, stateful speech detector over fixed-size frames."""

    sample_rate: int
    frame_samples: int

    def speech_probability(self, frame: Float32) -> float:
        """Probability (0..1) that ``frame`` (exactly ``frame_samples`` long) is speech."""
        ...

    def reset(self) -> None:
        """Forget recurrent state, e.g. after a long pause."""
        ...

    def close(self) -> None:
        """Give back what the detector holds (a pooled model) when its call ends; it is not used again."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Sentence embeddings for FAQ retrieval."""

    name: str

    def embed(self, texts: Sequence[str]) -> Float32:
        """Return an (n, dim) array of L2-normalised embeddings."""
        ...


# What the agent expects the caller to say next. The turn detector uses it to
# wait longer while digits or spelling are being read out.
Expectation = Literal["free", "name", "digits", "spelling", "email", "address", "time", "yes_no"]


# -- the dialogue policy -----------------------------------------------------
#
# A policy streams its reply as parts: each sentence is spoken as soon as it
# is yielded, so the caller hears the first one while the rest is decided.


@dataclass(frozen=True, slots=True)
class Say:
    """One sentence to speak, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """A captured field changed (``value`` empty: it was dropped)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Listen:
    """Ends a reply that does not end the call: what the agent expects back."""

    expect: Expectation = "free"
    # What the answer should look like, when the dialogue knows (for
    # "spelling": the name as first heard), so its end is heard sooner.
    answer_hint: str = ""


@dataclass(frozen=True, slots=True)
class EndCall:
    """The reply ends the call once spoken."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Ends a reply: once it is spoken, hand the caller to a person at ``to`` (E.164).

    The session writes down what was captured (so the ticket exists before
    anyone answers), asks the transport to transfer, and tells the policy
    how it went (``TransferringPolicy.on_transfer``).
    """

    to: str


ReplyPart = Say | FieldUpdate | Listen | EndCall | Transfer

# How a transfer to a person went. ``dialing``: under way (the state stored
# while the phone rings); ``handed_off``: the carrier took the call over and
# reports the outcome to its own webhook, so the session ends (Twilio <Dial>).
TransferStatus = Literal["dialing", "answered", "busy", "no_answer", "failed", "handed_off"]
TRANSFER_FAILURES: frozenset[str] = frozenset({"busy", "no_answer", "failed"})


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question and answer of a tenant's knowledge base."""

    id: str
    question: str
    answer: str


# FAQ words given to the recognizer: words this long carry the subject ("insurance", "hours");
# a cap keeps a long FAQ from filling Whisper's prompt.
MIN_FAQ_WORD = 5
MAX_FAQ_WORDS = 24
_FAQ_FUNCTION_WORDS = frozenset(
    (
        "about", "after", "before", "could", "every", "other", "should", "their", "there", "these",
        "those", "where", "which", "while", "would", "what's", "where's", "there's", "doesn't", "don't",
        "someone", "somebody", "anyone", "anybody", "anything", "something", "please",
    )
)  # fmt: skip


@dataclass(slots=True)
class AgentSettings:
    """A tenant's receptionist configuration, as plain data."""

    business_name: str
    greeting: str = ""  # empty: "Thanks for calling {business_name}. How can I help?"
    # How the agent comes across; free text for policies that can use it.
    persona: str = ""
    # Fields to capture, among: name, callback_number, reason, address, email, preferred_time.
    collect: list[str] = field(default_factory=lambda: ["name", "callback_number", "reason"])
    categories: list[str] = field(default_factory=lambda: ["general"])
    # What each category covers, in the business's words (name -> {"description", "examples"}),
    # and examples learned from the help desk (name -> caller sentences).
    category_guides: dict[str, dict[str, Any]] = field(default_factory=dict)
    category_examples: dict[str, list[str]] = field(default_factory=dict)
    urgent_keywords: list[str] = field(default_factory=list)
    faqs: list[FaqEntry] = field(default_factory=list)
    # Business words that bias speech recognition.
    vocabulary: list[str] = field(default_factory=list)
    # Opening hours per weekday ("mon".."sun": [open, close]) in ``timezone``; a missing day is closed.
    business_hours: dict[str, list[str]] = field(default_factory=dict)
    timezone: str = "UTC"
    # Where a caller who asks for a person is put through in business hours (E.164); empty: never.
    transfer_number: str = ""

    def recognition_vocabulary(self) -> list[str]:
        """Words that bias speech recognition: the business's own, its urgent keywords, category names
        and the words its FAQ asks about ("financing", "warranty"), so a question about them is heard."""
        words = [
            *self.vocabulary,
            *self.urgent_keywords,
            *(c for c in self.categories if c.lower() != "general"),
            *self._faq_words()[:MAX_FAQ_WORDS],
        ]
        return list(dict.fromkeys(w.strip() for w in words if w.strip()))

    def _faq_words(self) -> list[str]:
        found = (w.lower() for faq in self.faqs for w in re.findall(r"[A-Za-z][A-Za-z'-]+", faq.question))
        return list(dict.fromkeys(w for w in found if len(w) >= MIN_FAQ_WORD and w not in _FAQ_FUNCTION_WORDS))

    def greeting_text(self) -> str:
        """The tenant's greeting, or the default one."""
        return self.greeting.strip() or f"Thanks for calling {self.business_name}. How can I help?"


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One utterance of the conversation, as the caller or the agent said it."""

    speaker: Literal["caller", "agent"]
    text: str
    # For the agent: cut off by the caller; ``text`` is then what was heard.
    interrupted: bool = False


# Turns a call context keeps; older ones are dropped, so a long call cannot
# grow what a policy has to read (or send to a model) without bound.
MAX_HISTORY_TURNS = 40


@dataclass(slots=True)
class CallContext:
    """Everything a policy starts from and keeps up to date during one call.

    Every policy is built from one, so each gets the same input: the caller,
    the tenant's settings, the conversation so far (the last
    ``max_turns`` utterances) and the fields captured.
    """

    settings: AgentSettings
    caller_id: str = ""  # E.164, empty when withheld
    keypad: bool = False  # the transport delivers keypad tones, so the caller may key a number in
    # The transport can put the caller through to a person (LiveKit SIP, Twilio <Dial>).
    can_transfer: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    max_turns: int = MAX_HISTORY_TURNS
    history: deque[HistoryTurn] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.max_turns)

    def turn_add(self, speaker: Literal["caller", "agent"], text: str) -> None:
        """Append one utterance; the oldest falls out past ``max_turns``."""
        if text:
            self.history.append(HistoryTurn(speaker=speaker, text=text))

    def agent_turn_cut(self, heard: str) -> None:
        """The last agent utterance was interrupted: keep only what the caller heard."""
        for index in range(len(self.history) - 1, -1, -1):
            if self.history[index].speaker == "agent":
                self.history[index] = HistoryTurn(speaker="agent", text=heard, interrupted=True)
                return


@dataclass(slots=True)
class CallOutcome:
    """Everything the dialogue captured; becomes the ticket."""

    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    category: str = ""
    category_confidence: float = 0.0
    # The category is a guess a person should check (nothing was close, or two were).
    category_review: bool = False
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    faq_answered: list[str] = field(default_factory=list)  # FAQ questions (entry.q) answered
    unanswered_questions: list[str] = field(default_factory=list)
    wants_human: bool = False
    callback_requested: bool = False
    confirmed: bool = False
    completed: bool = False  # reached the goodbye
    resolved: bool = False  # nothing left to do (e.g. FAQ-only call)
    # A transfer to a person: "" (none), "dialing", "answered", "busy", "no_answer", "failed".
    transfer: str = ""


@runtime_checkable
class DialoguePolicy(Protocol):
    """Decides what the agent says. One instance per call, built from a ``CallContext``.

    Each method returns an async stream of reply parts: any number of
    ``Say`` and ``FieldUpdate``, ended by one ``Listen`` or ``EndCall``.
    The session reads one stream at a time; a call that ends may leave one
    unfinished. Work that would block the event loop for more than a few
    milliseconds runs in a thread.
    """

    name: str

    def greet(self) -> AsyncIterator[ReplyPart]:
        """The opening line."""
        ...

    def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        """React to one final caller utterance."""
        ...

    def on_silence(self) -> AsyncIterator[ReplyPart]:
        """The caller said nothing for the silence timeout."""
        ...

    def on_interrupted(self, *, said: str, heard: str) -> None:
        """The caller cut the last reply short: of ``said`` they heard only ``heard`` (a word prefix)."""
        ...

    def outcome(self) -> CallOutcome:
        """What has been captured so far (valid at any time, e.g. on hang-up)."""
        ...


@runtime_checkable
class TransferringPolicy(Protocol):
    """A policy that may end a reply with ``Transfer``: it hears how the transfer went."""

    def on_transfer(self, status: TransferStatus) -> AsyncIterator[ReplyPart]:
        """The transfer ended with ``status``: what to say now (``EndCall`` when the caller is gone)."""
        ...


@runtime_checkable
class CallTransferer(Protocol):
    """The transport's way of putting the caller through to a person."""

    async def transfer(self, to: str) -> TransferStatus:
        """Transfer the caller to ``to`` (E.164); return once it is known how it went, or ``handed_off``."""
        ...
