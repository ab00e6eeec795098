"""The typed seams of the call pipeline.

Every vendor or offline engine lives in one module under ``calls/providers``
and implements one of these protocols. The pipeline core only ever talks to
these types, so adding a provider never touches the core.

Audio conventions: PCM is mono ``numpy.int16``; each object states its own
``sample_rate``. Resampling and μ-law coding live in ``calls.audio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

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
    # Other readings of the same audio (letters only, on spelling turns).
    alternatives: tuple[str, ...] = ()


@runtime_checkable
class SpeechToText(Protocol):
    """Turns one finished utterance into text.

    Implementations must be safe to share between concurrent calls in one
    process (models load once per process) and must not block the event
    loop: heavy work runs in a thread or another process.
    """

    name: str
    sample_rate: int  # the rate ``transcribe`` expects

    async def transcribe(self, audio: Pcm16, *, prompt: str = "") -> Transcript:
        """Transcribe ``audio`` (``sample_rate`` Hz); ``prompt`` biases vocabulary."""
        ...


@runtime_checkable
class LetterRecognizer(Protocol):
    """Optional for a ``SpeechToText``: hearing an utterance as spelled letters only.

    On spelling turns the session asks for both readings at once. Held to
    letters, a recognizer cannot turn "C, H, E, N" into a word ("CH, M"), at
    the price of mistakes of its own; the dialogue weighs both.
    """

    async def transcribe_letters(self, audio: Pcm16, *, prompt: str = "") -> Transcript:
        """Transcribe ``audio`` allowing only letters and separators in the text."""
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


@dataclass(slots=True)
class Reply:
    """What the agent says next, and what it expects back."""

    text: str
    expect: Expectation = "free"
    end_call: bool = False
    # What the answer should look like, when the dialogue knows (for
    # "spelling": the name as first heard), so its end is heard sooner.
    answer_hint: str = ""


@dataclass(slots=True)
class CallOutcome:
    """Everything the dialogue captured; becomes the ticket."""

    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    category: str = ""
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    faq_answered: list[str] = field(default_factory=list)  # FAQ questions (entry.q) answered
    unanswered_questions: list[str] = field(default_factory=list)
    wants_human: bool = False
    callback_requested: bool = False
    confirmed: bool = False
    completed: bool = False  # reached the goodbye
    resolved: bool = False  # nothing left to do (e.g. FAQ-only call)


@runtime_checkable
class DialoguePolicy(Protocol):
    """Decides what the agent says. One instance per call."""

    def greet(self) -> Reply:
        """The opening line."""
        ...

    def respond(self, transcript: Transcript) -> Reply:
        """React to one final caller utterance."""
        ...

    def on_silence(self) -> Reply:
        """The caller said nothing for the silence timeout."""
        ...

    def outcome(self) -> CallOutcome:
        """What has been captured so far (valid at any time, e.g. on hang-up)."""
        ...
