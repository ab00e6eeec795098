"""The receptionist's state during one call: a stage and what it has gathered."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from calls.dialogue.reply import Reply
from calls.pipeline.protocols import Expectation


class Stage(StrEnum):
    """What the agent's last reply asked for, so what the caller's next words answer."""

    OPEN = "open"  # "How can I help?"
    MORE = "more"  # "Is there anything else?"
    FIELD = "field"  # one contact field: ``DialogueState.asking``
    SPELL_NAME = "spell_name"
    CONFIRM = "confirm"  # the read-back
    FIX = "fix"  # "What should I change?"
    CALLER_ID = "caller_id"  # "Shall we call you back on the number you're calling from?"
    CLOSED = "closed"  # the goodbye was said


@dataclass(slots=True)
class DialogueState:
    """Everything the receptionist tracks besides the captured fields (those are in the call context)."""

    stage: Stage = Stage.OPEN
    asking: str = ""  # the field asked for at ``Stage.FIELD``
    reasons: list[str] = field(default_factory=list)
    faq_answered: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    wants_human: bool = False
    # A transfer to a person: "" (none yet), "dialing", then how it ended (``TransferStatus``).
    transfer: str = ""
    confirmed: bool = False
    completed: bool = False
    # The last reply, for "could you repeat that?".
    last: Reply = field(default_factory=lambda: Reply(text=""))
    # The asking part of the last reply and what it expects, for re-prompts.
    question: str = ""
    question_expect: Expectation = "free"
    # False when the caller cut the question off before hearing it.
    question_heard: bool = True
    # The question used up one of the field's prompts (or one of the read-backs),
    # given back if it goes unheard.
    question_counted: bool = False
    unheard_questions: list[str] = field(default_factory=list)
    silences: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # prompts per field since it was last set
    skipped: set[str] = field(default_factory=set)
    readbacks: int = 0
    more_asks: int = 0  # times "Anything else?" was asked
    unclear_turns: int = 0  # caller turns in a row after "Anything else?" that held nothing understood
    spell_needed: bool = False
    name_heard: str = ""  # a name to be spelled, as first heard
    name_confidence: float = 0.0
    spell_attempts: int = 0
    # A first name spelled alone when the caller had said more: their last name is asked for next.
    spelled_first: str = ""
    last_name_asked: bool = False
    asked_before_goodbye: bool = False
    number_hearings: list[str] = field(default_factory=list)  # every hearing of the number being asked for
