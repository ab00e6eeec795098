"""What the receptionist says, word for word.

Prompts are worded so that each one mentions exactly the field it asks for
("name", "number", "address", "email", "time") and nothing else: callers,
and the scenario simulator, answer the field they hear named.
"""

from __future__ import annotations

from calls.pipeline.protocols import Expectation

# Per field: the first prompt, then the retry.
PROMPTS: dict[str, tuple[str, str]] = {
    "name": ("Could I have your name, please?", "Sorry, I didn't catch your name. Could you say it again?"),
    "callback_number": (
        "What's the best number to reach you on?",
        "Sorry, I didn't get the whole number. Could you say it again, digit by digit, with the area code?",
    ),
    "address": ("What's the address, please?", "Sorry, could you repeat the address?"),
    "email": ("Could I have your email, please?", "Sorry, could you say your email again, slowly?"),
    "preferred_time": ("What day and time would suit you best?", "Sorry, what time would work best for you?"),
}
EXPECT: dict[str, Expectation] = {
    "name": "name",
    "callback_number": "digits",
    "address": "address",
    "email": "email",
    "preferred_time": "time",
}
LABELS = {
    "name": "the name",
    "callback_number": "the number",
    "address": "the address",
    "email": "the email",
    "preferred_time": "the time",
}
SPELL_PROMPT = "Could you spell your name for me, letter by letter?"
SPELL_RETRY = "Sorry, could you spell your name again, one letter at a time?"
SPELL_LAST_PROMPT = "And could you spell your last name for me?"
CALLER_ID_PROMPT = "Shall we call you back on the number you're calling from?"
# Where the line carries keypad tones, the retry offers them: keys are never misheard.
NUMBER_RETRY_KEYPAD = (
    "Sorry, I didn't get the whole number. Could you say it again, digit by digit, with the area code, "
    "or type it on your phone's keypad?"
)
VERIFY_NUMBER_PROMPT = "Just to be sure, could you say the number once more?"
OPEN_PROMPT = "How can I help you today?"
MORE_PROMPT = "Is there anything else I can help with?"
GO_AHEAD = "Sure, go ahead."
GREETING_SILENCE = "Hello? Are you still there? Whenever you're ready, just tell me what you're calling about."
SILENCE_GOODBYE = (
    "I'm sorry, I can't hear anything, so I'll end the call now. Please call us back whenever you like. Goodbye."
)
UNANSWERED = (
    "I'm sorry, I don't have that information, but I've noted your question "
    "and someone from the team will follow up with you."
)
HUMAN_FIRST = (
    "Of course. I can't transfer you right now, but I'll have someone from the team call you back as soon as possible."
)
HUMAN_AGAIN = "I understand. I've asked for someone from the team to call you back as soon as possible."
# Said before a transfer: the ticket is written while it plays, so whoever answers has it.
TRANSFERRING = "Of course. I've written down your request for the team, and I'm putting you through to someone now."
# The transfer failed or nobody answered: back with the receptionist, a callback queued.
TRANSFER_BUSY = (
    "I'm sorry, the line is busy right now. I've asked for someone from the team to call you back as a priority."
)
TRANSFER_NO_ANSWER = (
    "I'm sorry, nobody could answer just now. I've asked for someone from the team to call you back as a priority."
)
TRANSFER_FAILED = (
    "I'm sorry, I couldn't put you through. I've asked for someone from the team to call you back as a priority."
)
NOTE_URGENT = "That sounds urgent, so I'm marking it as a priority."
NOTE_ADDED = "Thanks, I've added that to your request."
NOTE_HAVE_THAT = "Thanks, I have that already."
NOTE_NOTED = "Okay, I've made a note of that."
NO_PROBLEM = "No problem."
THANKS = "Thanks."
THANK_YOU = "Thank you."
SORRY = "Sorry about that."
GREAT = "Great, thank you."
SAY_AGAIN = "Sorry, I didn't catch that. Could you say that again?"
HEARD_NOTHING = "Sorry, I didn't hear anything."
READ_BACK_LEAD = "Let me read that back:"
READ_BACK_ASK = "Is that right?"
GOODBYE = "Goodbye!"
# Said when a language model is slow to start its reply, before this turn is answered without it.
HOLD_ON = "One moment, please."
# Everything the agent says that is the same in every call. Synthesized once
# per process at start-up (calls/pipeline/factory.py), so a reply that opens
# with them plays at once and buys time to synthesize what follows.
STOCK_PHRASES: tuple[str, ...] = (
    *(prompt for prompts in PROMPTS.values() for prompt in prompts),
    SPELL_PROMPT,
    SPELL_RETRY,
    SPELL_LAST_PROMPT,
    CALLER_ID_PROMPT,
    NUMBER_RETRY_KEYPAD,
    VERIFY_NUMBER_PROMPT,
    OPEN_PROMPT,
    MORE_PROMPT,
    GREETING_SILENCE,
    UNANSWERED,
    HUMAN_FIRST,
    HUMAN_AGAIN,
    TRANSFERRING,
    TRANSFER_BUSY,
    TRANSFER_NO_ANSWER,
    TRANSFER_FAILED,
    NOTE_URGENT,
    NOTE_ADDED,
    NOTE_HAVE_THAT,
    NOTE_NOTED,
    NO_PROBLEM,
    THANKS,
    THANK_YOU,
    SORRY,
    GREAT,
    SAY_AGAIN,
    HEARD_NOTHING,
    READ_BACK_LEAD,
    READ_BACK_ASK,
    HOLD_ON,
)


def thanks_by_name(first_name: str) -> str:
    return f"Thanks, {first_name}."


def fix_which(labels: list[str]) -> str:
    """ "What should I change: the name or the number?"."""
    which = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
    return f"What should I change: {which}?"


def before_you_go(question: str) -> str:
    return f"Before you go, so the team can call you back: {question}"


def closing(business_name: str, *, followup: bool) -> str:
    """The goodbye: a promise of a call back when one is needed."""
    if followup:
        return f"Thanks for calling {business_name}. Someone from the team will be in touch soon. Goodbye!"
    return f"Thanks for calling {business_name}. Have a great day. Goodbye!"
