"""A one- or two-sentence ticket summary built from a ``CallOutcome``."""

from __future__ import annotations

from calls.pipeline.protocols import CallOutcome

# Long enough for a caller's description, short enough for a ticket list.
MAX_REASON_CHARS = 300
# What staff must know of a transfer to a person, by how it went.
TRANSFER_NOTES = {
    "dialing": "asked to speak to a person and was being put through",
    "answered": "asked to speak to a person and was put through",
    "busy": "asked to speak to a person; the line was busy, so call back as a priority",
    "no_answer": "asked to speak to a person; nobody answered, so call back as a priority",
    "failed": "asked to speak to a person; the transfer failed, so call back as a priority",
}


def _quote_list(items: list[str]) -> str:
    quoted = [f'"{q.strip()}"' for q in items]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def summary(outcome: CallOutcome) -> str:
    """Summarise a call in plain words, keeping the caller's own description.

    The first sentence is the category and the reason as the caller said it
    ("Leak: My kitchen sink is leaking all over the floor."); an optional
    second one adds what staff must know (a person was asked for, questions
    the FAQ could not answer, the preferred time).
    """
    category = (outcome.category or "general").strip()
    reason = outcome.reason.strip().rstrip(".")
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS].rsplit(" ", 1)[0] + "..."
    if reason:
        label = "General inquiry" if category.lower() == "general" else category[:1].upper() + category[1:]
        first = f"{label}: {reason}."
    elif outcome.faq_answered:
        first = f"General inquiry: asked {_quote_list(outcome.faq_answered)}, answered from the FAQ."
    elif outcome.wants_human:
        first = "The caller asked to speak to a person without giving a reason."
    elif outcome.unanswered_questions:
        first = "General inquiry."
    else:
        first = "The call ended before the caller said what it was about."

    extras: list[str] = []
    if outcome.transfer in TRANSFER_NOTES:
        extras.append(TRANSFER_NOTES[outcome.transfer])
    elif outcome.wants_human and reason:
        extras.append("asked to speak to a person")
    if outcome.faq_answered and reason:
        extras.append(f"asked {_quote_list(outcome.faq_answered)}, answered from the FAQ")
    if outcome.unanswered_questions:
        extras.append(f"asked {_quote_list(outcome.unanswered_questions)}, which the FAQ does not answer")
    preferred = outcome.fields.get("preferred_time", "")
    if preferred:
        extras.append(f"prefers {preferred}")
    if not extras:
        return first
    who = outcome.fields.get("name") or "The caller"
    return f"{first} {who} {'; '.join(extras)}."


def summary_transfer_restate(text: str, status: str) -> str:
    """A call's summary ``text`` saying how its transfer ended (``status``) instead of that it was under way.

    Twilio reports the end of its ``<Dial>`` after the call itself ended,
    when the summary was written with the transfer still ringing.
    """
    dialing = TRANSFER_NOTES["dialing"]
    if status == "dialing" or status not in TRANSFER_NOTES or dialing not in text:
        return text
    return text.replace(dialing, TRANSFER_NOTES[status], 1)
