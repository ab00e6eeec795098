"""The FAQ "try a question" preview, with the real MiniLM model the calls use."""

from __future__ import annotations

import pytest

from calls.dialogue.faq import MATCH_THRESHOLD
from calls.dialogue.faq import FaqEntry as IndexEntry
from calls.faq_preview import FaqCandidate, faq_match_preview
from calls.models import FaqEntry
from calls.pipeline.factory import faq_index_for
from tests.factories import FaqEntryFactory

ENTRIES = (
    ("What are your opening hours?", "We are open Monday to Friday from 8 am to 6 pm, and Saturday from 9 am to 1 pm."),
    ("Which payment methods do you accept?", "We accept cash, all major credit cards and bank transfer."),
    ("Which areas do you cover?", "We cover Springfield and every town within 25 miles of it."),
    ("Do you offer emergency service?", "Yes, we have a plumber on call 24 hours a day for emergencies."),
)


@pytest.fixture
def faqs(in_tenant_a) -> dict[str, int]:
    FaqEntry.objects.all().delete()
    return {question: FaqEntryFactory(question=question, answer=answer).pk for question, answer in ENTRIES}


def test_a_paraphrase_is_answered_by_the_right_entry_above_the_threshold(faqs) -> None:
    candidates = faq_match_preview(question="when are you open", schema_name="alpha")

    assert len(candidates) == 3
    best = candidates[0]
    assert (best.entry_id, best.question) == (faqs["What are your opening hours?"], "What are your opening hours?")
    assert best.threshold == MATCH_THRESHOLD
    assert best.above_threshold is True
    assert best.score > MATCH_THRESHOLD
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    assert len({c.entry_id for c in candidates}) == 3


def test_the_preview_scores_exactly_like_a_call(faqs) -> None:
    # The index a call builds: active entries in id order, shared per tenant.
    index = faq_index_for(
        "alpha",
        [IndexEntry(id=str(pk), question=q, answer=a) for (q, a), pk in zip(ENTRIES, faqs.values(), strict=True)],
    )
    question = "Can I pay by credit card?"

    best = faq_match_preview(question=question, schema_name="alpha")[0]
    call_match = index.best(question)

    assert call_match is not None
    assert (best.entry_id, best.score) == (int(call_match.entry.id), call_match.score)
    assert best.question == "Which payment methods do you accept?"


def test_an_unrelated_question_stays_below_the_threshold(faqs) -> None:
    candidates = faq_match_preview(question="Can you recommend a good pizza place nearby?", schema_name="alpha")

    assert len(candidates) == 3
    assert [c.above_threshold for c in candidates] == [False, False, False]
    assert candidates[0].score < MATCH_THRESHOLD


def test_inactive_entries_are_not_candidates(faqs) -> None:
    FaqEntry.objects.filter(pk=faqs["What are your opening hours?"]).update(is_active=False)

    candidates = faq_match_preview(question="when are you open", schema_name="alpha", limit=10)

    assert faqs["What are your opening hours?"] not in [c.entry_id for c in candidates]
    assert len(candidates) == 3


def test_no_active_entries_means_no_candidates(in_tenant_a) -> None:
    FaqEntry.objects.update(is_active=False)

    assert faq_match_preview(question="when are you open", schema_name="alpha") == []


@pytest.mark.parametrize("question", ["", "   \n "])
def test_an_empty_question_is_refused(in_tenant_a, question) -> None:
    with pytest.raises(ValueError, match=r"^Type a question to try\.$"):
        faq_match_preview(question=question, schema_name="alpha")


def test_candidate_threshold_is_inclusive() -> None:
    at = FaqCandidate(entry_id=1, question="q", answer="a", score=0.52, threshold=0.52)
    below = FaqCandidate(entry_id=1, question="q", answer="a", score=0.5199, threshold=0.52)

    assert (at.above_threshold, below.above_threshold) == (True, False)
