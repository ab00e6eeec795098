"""FAQ retrieval by sentence embeddings, and spotting questions in caller speech."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calls.pipeline.protocols import FaqEntry, TextEmbedder

# Cosine similarity (all-MiniLM-L6-v2, max over question and question+answer)
# from which an FAQ answer is given. Measured on 55 caller questions against
# the acceptance tenants' FAQs: true paraphrases mostly score 0.52-0.98
# ("Are you open on Saturdays?" -> opening hours 0.744), off-FAQ questions
# from the same trade reach 0.50-0.53 ("Do you have any openings this week?"
# 0.516, "Are you accepting new patients?" 0.503), unrelated ones stay low
# ("Can you also repair my personal laptop screen?" -> support hours 0.120).
# 0.52 had the fewest errors; below it the caller gets a follow-up instead of
# a guessed answer.
MATCH_THRESHOLD = 0.52


@dataclass(frozen=True, slots=True)
class FaqMatch:
    """The best FAQ entry for a caller question, and its cosine similarity."""

    entry: FaqEntry
    score: float


class FaqIndex:
    """Nearest-FAQ lookup; entry embeddings are computed once, at construction.

    Each entry is embedded twice, as its question alone and as question plus
    answer, and a caller question scores the better of the two: the answer
    often holds the words a caller uses ("Saturday", "credit cards").
    """

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        embedder: TextEmbedder,
        threshold: float = MATCH_THRESHOLD,
    ) -> None:
        self.entries: tuple[FaqEntry, ...] = tuple(entries)
        self.threshold = threshold
        self._embedder = embedder
        if self.entries:
            texts = [e.question for e in self.entries] + [f"{e.question} {e.answer}" for e in self.entries]
            vectors = embedder.embed(texts)
            n = len(self.entries)
            self._questions = vectors[:n]
            self._with_answers = vectors[n:]

    def best(self, question: str) -> FaqMatch | None:
        """The closest entry whatever its score; None when the index is empty."""
        if not self.entries or not question.strip():
            return None
        query = self._embedder.embed([question])[0]
        scores = np.maximum(self._questions @ query, self._with_answers @ query)
        i = int(np.argmax(scores))
        return FaqMatch(entry=self.entries[i], score=float(scores[i]))

    def ranked(self, question: str, limit: int) -> list[FaqMatch]:
        """The ``limit`` closest entries, best first, scored exactly like :meth:`best` (ties keep entry order)."""
        if not self.entries or not question.strip() or limit <= 0:
            return []
        query = self._embedder.embed([question])[0]
        scores = np.maximum(self._questions @ query, self._with_answers @ query)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [FaqMatch(entry=self.entries[int(i)], score=float(scores[int(i)])) for i in order]

    def match(self, question: str) -> FaqMatch | None:
        """The closest entry if it clears the threshold, else None."""
        found = self.best(question)
        if found is None or found.score < self.threshold:
            return None
        return found


_LEADING_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|oh|um+|uh+|er|so|and|also|okay|ok|yeah|yes|well|sorry|just|one more thing|"
    r"another thing|quick question|one last thing|actually|then)\b[\s,.!-]*)+",
)
_QUESTION_START = re.compile(
    r"^(?:(?:who|whom|whose|what|what's|whats|which|when|where|where's|why|how|how's)\b"
    # An auxiliary only counts before its subject: "have a good day" and
    # "will do" are not questions.
    r"|(?:do|does|did|don't|doesn't|are|aren't|is|isn't|was|were|can|can't|could|would|will|won't|"
    r"should|shall|may|might)\s+(?:you|i|we|they|he|she|it|there|your|my|our|the|this|that|"
    r"these|those|someone|somebody|anyone|anybody|a|an)\b)"
)
_EMBEDDED_QUESTION = re.compile(
    r"\b(?:i was wondering|i wonder|i'd like to know|i would like to know|i want to know|i wanted to know|"
    r"i wanted to ask|i want to ask|can you tell me|could you tell me|do you know|any idea|"
    r"i have a question about|my question is)\b"
)


def is_question(text: str) -> bool:
    """Whether an utterance asks something (Whisper usually, but not always, adds "?")."""
    t = text.strip().lower().replace("\u2019", "'")
    if not t:
        return False
    if t.endswith("?"):
        return True
    if _EMBEDDED_QUESTION.search(t):
        return True
    return bool(_QUESTION_START.match(_LEADING_FILLER.sub("", t)))
