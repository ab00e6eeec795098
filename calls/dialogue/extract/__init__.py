"""Pull ticket fields and caller intents out of one noisy transcript.

Everything here is a pure function of its arguments (besides reading
MiniLM's word list once). Input
is Whisper-style text: mostly punctuated, sometimes lower case, with
recognition errors ("for" for four, "to" for two, letters as "em a ar").

One module per kind of thing heard; the names callers use are imported
from here.
"""

from calls.dialogue.extract.contact import (
    extract_address,
    extract_email,
    extract_preferred_time,
    has_no_time_preference,
)
from calls.dialogue.extract.intents import (
    correction_fields,
    is_affirmative,
    is_backchannel,
    is_correction,
    is_goodbye,
    is_no_more,
    is_refusal,
    is_repeat_request,
    mentioned_fields,
    wants_human,
)
from calls.dialogue.extract.names import (
    extract_name,
    name_heard_loosely,
)
from calls.dialogue.extract.numbers import (
    PhoneReading,
    digit_runs,
    digits_near,
    extract_digits,
    extract_phone,
    mentions_caller_id,
    national_digits,
    number_consensus,
    number_heard_before,
    phone_reading,
)
from calls.dialogue.extract.reasons import (
    Priority,
    content_words,
    is_pleasantry,
    matches_urgent,
    priority_for,
    reason_text,
    split_sentences,
    without_human_request,
)
from calls.dialogue.extract.spelling import (
    heard_words_kept,
    only_first_spelled,
    spelled_letters,
    spelled_name,
    spelled_surname,
)
from calls.dialogue.extract.text import (
    normalize,
)

__all__ = [
    "PhoneReading",
    "Priority",
    "content_words",
    "correction_fields",
    "digit_runs",
    "digits_near",
    "extract_address",
    "extract_digits",
    "extract_email",
    "extract_name",
    "extract_phone",
    "extract_preferred_time",
    "has_no_time_preference",
    "heard_words_kept",
    "is_affirmative",
    "is_backchannel",
    "is_correction",
    "is_goodbye",
    "is_no_more",
    "is_pleasantry",
    "is_refusal",
    "is_repeat_request",
    "matches_urgent",
    "mentioned_fields",
    "mentions_caller_id",
    "name_heard_loosely",
    "national_digits",
    "normalize",
    "number_consensus",
    "number_heard_before",
    "only_first_spelled",
    "phone_reading",
    "priority_for",
    "reason_text",
    "spelled_letters",
    "spelled_name",
    "spelled_surname",
    "split_sentences",
    "wants_human",
    "without_human_request",
]
