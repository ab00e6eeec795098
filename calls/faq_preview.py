"""Which FAQ entry would answer a question: the retrieval a call uses, for the FAQ editor's "try it" box."""

from __future__ import annotations

from dataclasses import dataclass

from django_tenants.utils import schema_context

from calls.dialogue.faq import FaqEntry
from calls.models import FaqEntry as FaqEntryRow
from calls.pipeline.factory import faq_index_for

PREVIEW_CANDIDATES = 3


@dataclass(frozen=True, slots=True)
class FaqCandidate:
    """One FAQ entry and how well it matches the question (cosine similarity)."""

    entry_id: int
    question: str
    answer: str
    score: float
    threshold: float

    @property
    def above_threshold(self) -> bool:
        """True when a caller asking this would be given this entry's answer (if it ranks first)."""
        return self.score >= self.threshold


def faq_match_preview(*, question: str, schema_name: str, limit: int = PREVIEW_CANDIDATES) -> list[FaqCandidate]:
    """The ``limit`` best active FAQ entries of ``schema_name`` for ``question``, best first.

    Uses the same entries (active ones), index (shared per tenant, MiniLM
    loaded once per process) and threshold as a live call, so the first
    candidate is the entry a caller would be answered with when it is above
    the threshold. Raises ``ValueError`` for an empty question.
    """
    question = " ".join(question.split())
    if not question:
        raise ValueError("Type a question to try.")
    with schema_context(schema_name):
        faqs = [
            FaqEntry(id=str(row.pk), question=row.question, answer=row.answer)
            for row in FaqEntryRow.objects.filter(is_active=True)
        ]
    index = faq_index_for(schema_name, faqs)
    return [
        FaqCandidate(
            entry_id=int(found.entry.id),
            question=found.entry.question,
            answer=found.entry.answer,
            score=found.score,
            threshold=index.threshold,
        )
        for found in index.ranked(question, limit)
    ]
