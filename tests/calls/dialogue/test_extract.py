"""Field and intent extraction from Whisper-style transcripts.

Many inputs are what Whisper tiny.en actually wrote for piper speech over an
8 kHz mu-law line (noted "heard"); the rest are forms callers use.
"""

from __future__ import annotations

import pytest

from calls.dialogue.extract import (
    PhoneReading,
    content_words,
    correction_fields,
    digit_runs,
    digits_near,
    extract_address,
    extract_digits,
    extract_email,
    extract_name,
    extract_phone,
    extract_preferred_time,
    has_no_time_preference,
    heard_words_kept,
    is_affirmative,
    is_backchannel,
    is_correction,
    is_goodbye,
    is_pleasantry,
    is_refusal,
    is_repeat_request,
    matches_urgent,
    mentioned_fields,
    mentions_caller_id,
    number_consensus,
    only_first_spelled,
    phone_reading,
    priority_for,
    reason_text,
    spelled_letters,
    spelled_name,
    split_sentences,
    wants_human,
    without_human_request,
)

ACME = ["leak", "heating", "drains", "installation", "billing", "general"]
HELPIT = ["outage", "account", "hardware", "software", "billing", "general"]
BRIGHTSMILE = ["appointment", "emergency", "billing", "insurance", "general"]
ACME_URGENT = ["flood", "flooding", "gas", "no heat", "sparks"]


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("555 201 3344", "+15552013344"),
        ("555-201-3344", "+15552013344"),
        ("(555) 201-3344", "+15552013344"),
        ("My number is 555-201-3344.", "+15552013344"),  # heard
        ("five five five two zero one three three four four", "+15552013344"),
        ("five five five, two oh one, three three double four", "+15552013344"),
        ("My number is 555 818. Triple 42.", "+15558184442"),  # heard: "triple four two"
        ("five, five, five, eight six seven, five three zero nine", "+15558675309"),
        ("5-5-5-2-0-1-3-3-4-4", "+15552013344"),
        ("five fifty-five, two oh one, thirty-three forty-four", "+15552013344"),
        ("five hundred fifty five, two hundred one, three thousand three hundred forty four", "+15552013344"),
        ("one eight hundred five five five one two one two", "+18005551212"),
        ("plus 44 20 7946 0958", "+442079460958"),
        ("Call me on 555. 201. 3344.", "+15552013344"),
        ("555 201 3344, 555 201 3344", "+15552013344"),  # said twice
        ("No, the number is 555-867-5390.", "+15558675390"),  # heard
        ("Hi, this is James Wilson. My number is 555-444-3333. And I'd like a quote.", "+15554443333"),  # heard
    ],
)
def test_extract_phone(text: str, e164: str) -> None:
    assert extract_phone(text) == e164


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("five five five for one oh seven seven eight eight", "+15554107788"),  # "for" = 4
        ("five five five, to oh one, three three four four", "+15552013344"),  # "to" = 2
        ("five five five two oh one three three for four", "+15552013344"),
        ("My number is 555 201 3344 for sure.", "+15552013344"),  # a trailing "for" is a word
        ("My number is area code 207 555. A 163.", "+12075550163"),  # heard: "oh" as "A"
        ("A 555 201 3344.", "+15552013344"),  # an "a" not between digits is a word
    ],
)
def test_extract_phone_digit_homophones(text: str, e164: str) -> None:
    assert extract_phone(text) == e164


@pytest.mark.parametrize(
    "text",
    [
        "it's 201 3344",  # no area code
        "My number is 555-888-000",  # heard: a zero lost
        "My number is 555-4434333 3 3",  # heard: garbled, 12 digits
        "My number is 1413 555 127.",  # heard: "one, four one three, five five five, oh one two seven"
        "I need a 3 bedroom flat, a 100 dollar quote, 555 201",
        "I've had no heat for 3 days",
        "The address is 42 Oak Street.",
        "",
    ],
)
def test_extract_phone_rejects_incomplete_or_garbled_numbers(text: str) -> None:
    assert extract_phone(text) is None


def test_digit_runs_and_longest_digits() -> None:
    assert digit_runs("Not 555 867 5309, it's plus 1 555 867 5390") == [("5558675309", False), ("15558675390", True)]
    assert extract_digits("My number is 555-888-000") == "555888000"
    assert extract_digits("no digits here") == ""


@pytest.mark.parametrize(
    ("text", "caller_id", "near"),
    [
        ("My number is 555-888-000", "+15558880000", True),  # heard: one digit dropped
        ("My number is 555-11122222", "+15551112222", True),  # heard: one digit doubled
        ("My number is 555 201 3344", "+15557654321", False),
        ("It's 555", "+15555550000", False),  # too few digits to judge
        ("My number is 555 444 3343", "+15554443333", True),  # a whole number one digit off
        ("My number is 555 444 3323", "+15554443332", True),  # two neighbours swapped
        ("It's 1 555 444 3343", "+15554443333", True),
        # A whole number two digits off is the caller's other phone.
        ("area code two oh seven, five five five, oh one six three", "+12075550190", False),
        ("one, four one three, five five five, oh one two seven", "+14135550190", False),
    ],
)
def test_digits_near(text: str, caller_id: str, near: bool) -> None:
    assert digits_near(text, caller_id) is near


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, this number is fine.", True),
        ("The one I'm calling from.", True),
        ("My number is 555 201 3344.", False),
    ],
)
def test_mentions_caller_id(text: str, expected: bool) -> None:
    assert mentions_caller_id(text) is expected


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi, this is James Wilson, my number is 555 444 3333, and I'd like a quote.", "James Wilson"),
        ("My name is Robert Chen.", "Robert Chen"),
        ("my name is robert chen", "Robert Chen"),
        ("it's maria gonzalez", "Maria Gonzalez"),
        ("No, my name is Aisha Patel.", "Aisha Patel"),
        ("Hello, it's Sarah from next door.", "Sarah"),
        ("This is Dr. Smith.", "Smith"),
        ("I'm Maria.", "Maria"),
        ("It's flooding.", None),
        ("it's flooding", None),
        ("this is urgent", None),
        ("I'm calling about my bill", None),
        ("Sorry, yes, I'm here. My toilet keeps running.", None),
        ("Our whole office network is down and nobody can work.", None),
    ],
)
def test_extract_name_volunteered(text: str, name: str | None) -> None:
    assert extract_name(text) == name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Maria Gonzalez.", "Maria Gonzalez"),
        ("Yeah, it's Maria Gonzalez.", "Maria Gonzalez"),
        ("Sure. Linda Okafor.", "Linda Okafor"),
        ("Um, Nora Lindqvist.", "Nora Lindqvist"),
        ("It's, um, Maria.", "Maria"),
        ("Asia Petal.", "Asia Petal"),
        ("o'brien", "O'Brien"),
        ("They should petal.", None),  # heard for "Aisha Patel": not a name
        ("Then you'll can.", None),  # heard for "Daniel Kim"
        ("Do you offer emergency service?", None),
        ("Sorry, I'd rather not say.", None),
        ("My number is 555 201 3344.", None),
    ],
)
def test_extract_name_when_asked(text: str, name: str | None) -> None:
    assert extract_name(text, asked=True) == name


@pytest.mark.parametrize(
    ("hearings", "final", "number"),
    [
        (["5554107788"], False, "+15554107788"),
        (["15554107788"], False, "+15554107788"),
        (["55541077888"], False, None),  # one digit too many: which one?
        (["55541077888", "55541077888"], False, None),  # heard the same way twice: still unclear
        (["55541077888", "55541077888", "5554007788"], False, "+15554107788"),
        (["5554107788", "5554107789"], False, None),
        (["5554107788", "5554107789"], True, "+15554107789"),  # no better reason: the latest
        (["5554107788", "5554107789", "5554107788"], False, "+15554107788"),
        (["555410778"], False, None),
        (["+442071234567"], False, "+442071234567"),  # the country code said, not snapped to the US
        (["+442071234567", "+442071234567"], False, "+442071234567"),
        (["55541077888"], True, "+15554107788"),  # final: a doubled digit undone
        (["12"], True, None),
        # One digit short every time: any of thirty numbers fits, so none is read back.
        (["555671440"], True, None),
        (["555671440", "555671440", "555671440"], True, None),
        (["555671440", "5556714400"], True, "+15556714400"),  # the whole hearing supplies the digit
    ],
)
def test_number_consensus(hearings: list[str], final: bool, number: str | None) -> None:
    assert number_consensus(hearings, final=final) == number


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("M, A, R, I, A. G, O, N, Z, A, L, E, Z.", ["maria", "gonzalez"]),
        ("M-A-R-I-A G-O-N-Z-A-L-E-Z", ["maria", "gonzalez"]),
        ("M. A. R. I. A. G. O. N. Z. A. L. E. Z.", ["mariagonzalez"]),
        ("em a ar i a", ["maria"]),
        ("P as in Peter, A as in apple, T, E, L", ["patel"]),
        ("Sure, I spell it M, A, R, I, A.", ["maria"]),
        ("M, A, R, I, A, last name G, O, N, Z, A, L, E, Z", ["maria", "gonzalez"]),
        ("Double-U, I, L, S, O, N", ["wilson"]),
        ("R, O, double S, I", ["rossi"]),
        ("L, I, N, D, A. Okay, AF, O, R.", ["linda", "okafor"]),  # capitals run together are letters
        ("L-I-N-D-A. Okay, AFOR.", ["linda", "ok", "afor"]),  # regrouped by spelled_name
        ("R-O-B-E-R-T, CH, N.", ["robert", "ch", "n"]),
        ("PRIYANKA, R-H-H-U-N-A-T-H-A-N.", ["priyanka", "rhhunathan"]),  # a whole word in capitals
        ("C, A, R, L, O, S, M, E, and D, O, Z, A.", ["carlosmendoza"]),  # "and" between letters is N
        ("It's John and I spell it J, O, H, N.", ["john"]),  # not between letters: a word
        ("Maria Gonzalez.", []),
    ],
)
def test_spelled_letters(text: str, groups: list[str]) -> None:
    assert ["".join(g) for g in spelled_letters(text, spelling=True)] == groups


def test_capitals_are_words_unless_the_caller_is_spelling() -> None:
    text = "It's Bob, my AC and TV are broken too."
    assert spelled_letters(text) == []
    assert ["".join(g) for g in spelled_letters(text, spelling=True)] == ["acntvr"]  # "are": R


@pytest.mark.parametrize(
    ("text", "heard", "confidence", "name"),
    [
        ("M, A, R, I, A. G, O, N, Z, A, L, E, Z.", "", 0.0, "Maria Gonzalez"),
        ("A, I, S, H, A. P, A, T, E, L.", "Asia Petal", 0.0, "Aisha Patel"),
        ("A I S H A P A T E L", "Asia Petal", 0.0, "Aisha Patel"),  # run together: split like the heard name
        ("P, A, T, E, L", "Asia Petal", 0.0, "Asia Patel"),  # only the surname spelled
        ("G, R, E, G, N, O, V, A, K", "", 0.0, "Greg Novak"),  # two known names
        ("S, O, F, I, A, R, O, S, S, I.", "Hope You're Rusty", 0.0, "Sofia Rossi"),  # heard garbage
        ("S, O, S, I, A, R, O, S, S, I.", "Sophia Rossi", 0.29, "Sofia Rossi"),  # heard: S for F
        ("R, L, V, E, R, T, T, H, T, N.", "Robert Chin", 0.55, "Robert Chen"),  # garbled, but near known names
        ("R, L, B, D, R, T. C, H, E, N.", "Robert Chin", 0.55, "Robert Chen"),  # bad word kept, good word taken
        ("A, I, F, H, A, T, A, T, E, L.", "Aisha Patel", 0.34, "Aisha Patel"),  # heard: blurred letters
        ("N, O, R, A. L, I, N, D, Q, V, I, S, T.", "Mora Luntquist", 0.12, "Nora Lindqvist"),
        ("D, A, N, I, T, L. K, I, N.", "Daniel Kim", 0.73, "Daniel Kim"),  # confident hearing wins
        # Heard over an 8 kHz line in the simulator: blurred, dropped and run-together letters.
        ("G, R, E, G, N, O, B, A, K.", "Greg Novick", 0.74, "Greg Novak"),
        ("N, O, R, A, L, I, N, D, Q, V, I, F, T.", "Noralindkist", 0.40, "Nora Lindqvist"),
        ("L, I, N, D, A. Okay, AF, O, R.", "Linda Ockefer", 0.39, "Linda Okafor"),
        ("L-I-N-D-A. Okay, AFOR.", "Linda Okafor", 0.5, "Linda Okafor"),
        ("O, L, I, B, I, A. D, R, O, W, N.", "", 0.0, "Olivia Brown"),
        ("D-I-E-G-O-T-O-R-E-F.", "", 0.0, "Diego Torres"),
        ("K-E-B-I-N, O-B-R-I-E-N.", "Kevin O'Brien", 0.66, "Kevin O'Brien"),
        ("A-I-S-H-A, T-A-T-A-T-E-L.", "Asia Patel", 0.4, "Aisha Patel"),  # Whisper stuttered "T-A"
        # The whole name run together, not one word of it: as long as the garbled hearing.
        ("O, N, E, I, L, O, M, E, R.", "one o'lomer", 0.2, "Oneil Omer"),
        # A surname of two words is in the lexicon as one: "V" heard as "D", "S" as "F", pauses lost.
        ("A, N, O, U, K, D, E, D, R, I, E, F.", "Annup Debris", 0.3, "Anouk De Vries"),
        ("Maria Gonzalez.", "", 0.0, None),
        ("Okay.", "", 0.0, None),
    ],
)
def test_spelled_name(text: str, heard: str, confidence: float, name: str | None) -> None:
    assert spelled_name(text, heard=heard, heard_confidence=confidence) == name


def test_a_vowelless_word_heard_is_not_kept_over_its_spelling() -> None:
    # "Mbk" is in the lexicon, as an abbreviation; the letters are the name.
    spelled = spelled_name("E, C, E, K, I, E, L, M, B, E, K, I.", heard="Ezekiel MBK", heard_confidence=0.5)
    assert spelled == "Ezekiel Mbeki"
    assert heard_words_kept(spelled, "Ezekiel MBK") == "Ezekiel Mbeki"


@pytest.mark.parametrize(
    ("spelled", "heard", "kept"),
    [
        # Letters lost and a rhyming one blurred, and no name left: the heard word stands.
        ("Darthoomew Nakamura", "Bartholomew Nakamura", "Bartholomew Nakamura"),
        # Three letters lost and the word break with them, from a name heard whole and known.
        ("Nada Enaoi", "Nadia Benali", "Nadia Benali"),
        # Letters that spell a known name of their own are the caller's.
        ("Tomasz Zielinski", "Thomas Silensky", "Tomasz Zielinski"),
        # As many letters as heard, and another name: the spelling fixes the hearing.
        ("Olivia Brown", "Olivia Braun", "Olivia Brown"),
        # An added letter is not the line's fault: a rare name spelled in full stays.
        ("Nadia Benaoui", "Nadia Benali", "Nadia Benaoui"),
        # One letter fewer than heard, but a known name where the hearing is none.
        ("Siobhan Sullivan", "Siobhano Sullivan", "Siobhan Sullivan"),
        # Two known names a rhyming letter apart: the word heard whole stands ("B, A, N" chose Tan).
        ("Tran Tan Minh", "Tran Van Minh", "Tran Van Minh"),
        # Neither word a known name, a rhyming letter apart: the long word heard whole stands.
        ("Dartholomew Nakamura", "Bartholomew Nakamura", "Bartholomew Nakamura"),
        # ...but not a short one, which Whisper may have made up.
        ("Zepul Nakamura", "Depul Nakamura", "Zepul Nakamura"),
        # "I" and "Y" do not rhyme: the letters stand.
        ("Andi Azizi", "Andy Azizi", "Andi Azizi"),
    ],
)
def test_heard_words_kept(spelled: str, heard: str, kept: str) -> None:
    assert heard_words_kept(spelled, heard) == kept


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("H, A, R, J, I, T.", "Harjit Bruced Ed", True),  # the rest came from the hearing
        ("H, A, R, J, I, T. B, R, U, S, T, A, D.", "Harjit Brustad", False),
        ("P, A, T, E, L", "Asia Patel", False),  # the surname spelled alone
        ("H, A, R, J, I, T.", "Harjit", False),  # one word: nothing filled in
    ],
)
def test_only_first_spelled(text: str, name: str, expected: bool) -> None:
    assert only_first_spelled(text, name) is expected


def test_spelled_name_weighs_a_letters_only_reading_of_the_same_audio() -> None:
    # Free decoding turned "C, H, E, N" into "CH, M"; held to letters, the same audio gave C-H-E-N.
    free, letters_only = "R-O-B-E-R-T, CH, M.", "R-O-B-E-R-T, C-H-E-N."
    assert spelled_name(free, heard="Robert Chin", heard_confidence=0.49) == "Robert Chin"
    assert spelled_name(free, "Robert Chin", 0.49, alternatives=[letters_only]) == "Robert Chen"
    # A reading that is not spelling at all changes nothing.
    assert spelled_name("Maria Gonzalez.", alternatives=["M, A, R, I, A."]) is None


@pytest.mark.parametrize(
    ("text", "asked", "email"),
    [
        ("sofia dot rossi at example dot com", False, "sofia.rossi@example.com"),
        ("My email is sofia dot rossi at example dot com.", False, "sofia.rossi@example.com"),
        ("Sofia.Rossi@example.com", False, "sofia.rossi@example.com"),
        ("It's sofia.rossi at example.com.", False, "sofia.rossi@example.com"),
        ("you can reach me at sofia dot rossi at example dot com", False, "sofia.rossi@example.com"),
        ("sofia underscore rossi at example dot co dot uk", False, "sofia_rossi@example.co.uk"),
        ("It's Sophia.Rociete.example.com", True, "sophia.rociete@example.com"),  # heard: "at" lost
        ("It's Sophia.Rociete.example.com", False, None),
        ("My sink is leaking at the back", False, None),
    ],
)
def test_extract_email(text: str, asked: bool, email: str | None) -> None:
    assert extract_email(text, asked=asked) == email


@pytest.mark.parametrize(
    ("text", "asked", "time"),
    [
        ("Tuesday afternoon would be best.", True, "Tuesday afternoon"),
        ("Tuesday afternoon.", True, "Tuesday afternoon"),
        ("Anytime after lunch, please.", True, "Anytime after lunch"),
        ("I'd like to book a cleaning appointment for Tuesday afternoon.", False, "Tuesday afternoon"),
        ("Can you come next Tuesday at 2 pm?", False, "Next Tuesday at 2 pm"),
        ("I'm free on Fridays", False, "Fridays"),
        ("Our boiler stopped working this morning", False, None),
        ("My sink is leaking", False, None),
    ],
)
def test_extract_preferred_time(text: str, asked: bool, time: str | None) -> None:
    assert extract_preferred_time(text, asked=asked) == time


@pytest.mark.parametrize(
    ("text", "asked", "address"),
    [
        ("The address is 42 Oak Street.", True, "42 Oak Street"),
        ("It's 42 Oak Street, Springfield.", True, "42 Oak Street, Springfield"),
        ("I live at 42 Oak Street, and my number is 555", False, "42 Oak Street"),
        ("The leak is at 42 Oak Street", False, "42 Oak Street"),
        ("my sink is leaking", False, None),
    ],
)
def test_extract_address(text: str, asked: bool, address: str | None) -> None:
    assert extract_address(text, asked=asked) == address


@pytest.mark.parametrize(
    ("text", "yes", "correction"),
    [
        ("Yes.", True, False),
        ("Yes, that's right.", True, False),
        ("Yeah, that's correct.", True, False),
        ("Correct.", True, False),
        ("That's right.", True, False),
        ("Uh-huh.", True, False),
        ("Okay.", True, False),
        ("No.", False, True),
        ("No, that's not right.", False, True),
        ("No, the number is 555 867 5390.", False, True),
        ("Actually it's 555 867 5390", False, True),
        ("Yes, but the number is wrong", False, True),
    ],
)
def test_yes_and_corrections(text: str, yes: bool, correction: bool) -> None:
    assert is_affirmative(text) is yes
    assert is_correction(text) is correction


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("No, the number is 555 867 5390.", {"callback_number": "555 867 5390"}),
        (
            "No, the number is 555 867 5390, and the name is Aisha Patel.",
            {"callback_number": "555 867 5390", "name": "Aisha Patel"},
        ),
        ("No, my name is Aisha Patel.", {"name": "Aisha Patel"}),
        ("No, the number should be 555 867 5390", {"callback_number": "555 867 5390"}),
        ("No, the email is sofia at example dot com.", {"email": "sofia at example dot com"}),
        ("No, it's 555 867 5390", {}),
    ],
)
def test_correction_fields(text: str, fields: dict[str, str]) -> None:
    assert correction_fields(text) == fields


def test_mentioned_fields() -> None:
    assert mentioned_fields("The number is wrong") == ["callback_number"]
    assert mentioned_fields("the name and the email") == ["name", "email"]
    assert mentioned_fields("no") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I need to talk to someone about the bill you sent me.", True),
        ("Can I speak to a real person, please?", True),
        ("Can I talk to a human?", True),
        ("Let me talk to somebody", True),
        ("put me through to the manager", True),
        ("Talk to you later", False),
        ("My toilet keeps running", False),
    ],
)
def test_wants_human(text: str, expected: bool) -> None:
    assert wants_human(text) is expected


def test_what_a_human_request_says_besides() -> None:
    assert content_words(without_human_request("I need to talk to someone about the bill you sent me.")) == [
        "bill",
        "sent",
    ]
    assert content_words(without_human_request("Can I speak to a real person, please?")) == []


@pytest.mark.parametrize(
    ("text", "backchannel", "goodbye", "repeat"),
    [
        ("Uh-huh.", True, False, False),
        ("Mm-hmm", True, False, False),
        ("Okay, yeah.", True, False, False),
        ("No, that's all.", False, True, False),
        ("Nope.", False, True, False),
        ("No thanks, bye.", False, True, False),
        ("That's it, thank you.", False, True, False),
        ("Sorry, could you repeat that?", False, False, True),
        ("Come again?", False, False, True),
        ("Sorry?", False, False, True),
        ("Sorry, yes, I'm here.", False, False, False),
        ("My sink is leaking.", False, False, False),
        ("I think we're done, thanks.", False, True, False),
        ("We're done here.", False, True, False),
        # Whisper's "we're" for "were": a request, not a goodbye.
        ("We need someone to check the repairs we're done properly before we close.", False, False, False),
    ],
)
def test_short_intents(text: str, backchannel: bool, goodbye: bool, repeat: bool) -> None:
    assert is_backchannel(text) is backchannel
    assert is_goodbye(text) is goodbye
    assert is_repeat_request(text) is repeat


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sorry, I'd rather not say.", True),
        ("I don't know.", True),
        ("I don't have one.", True),
        ("No email, sorry.", True),
        ("I don't really use email.", True),
        ("I don't do emails.", True),
        ("I'm not on email.", True),
        ("42 Oak Street", False),
        ("My email is no.reply.kim@example.com", False),
        ("Sure, it's anna at example dot com.", False),
    ],
)
def test_is_refusal(text: str, expected: bool) -> None:
    assert is_refusal(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Any time is fine.", True),
        ("Anytime, really.", True),
        ("Whenever suits you.", True),
        ("I don't mind.", True),
        ("No preference.", True),
        ("I'm flexible.", True),
        ("It doesn't matter.", True),
        ("Any time after five.", False),
        ("Anytime tomorrow.", False),
        ("Whenever, but not Monday.", False),
        ("Any time before 3.", False),
        ("Tuesday afternoon.", False),
    ],
)
def test_has_no_time_preference(text: str, expected: bool) -> None:
    assert has_no_time_preference(text) is expected


def test_sentences_and_pleasantries() -> None:
    assert split_sentences("Sorry, yes, I'm here. My toilet keeps running and won't stop.") == [
        "Sorry, yes, I'm here.",
        "My toilet keeps running and won't stop.",
    ]
    # An either-or question Whisper ended early is one question again.
    assert split_sentences("Can I just walk in? Or do I need to book?") == ["Can I just walk in, or do I need to book?"]
    assert split_sentences("Is it the boiler? Oregon pipes froze last year.") == [
        "Is it the boiler?",
        "Oregon pipes froze last year.",
    ]
    assert is_pleasantry("Hi, I just have a couple of questions.")
    assert is_pleasantry("Hello, are you there?")
    assert not is_pleasantry("My toilet keeps running.")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "Hi, this is James Wilson, my number is 555 444 3333, and I'd like a quote to install a new water heater.",
            "I'd like a quote to install a new water heater",
        ),
        (
            "Hi, this is James Wilson. My number is 555-44-333 and I'd like a quote to install a new water heater.",
            "I'd like a quote to install a new water heater",
        ),
        ("Sorry, yes, I'm here. My toilet keeps running and won't stop.", "My toilet keeps running and won't stop"),
        (
            "There's water coming through my ceiling from the flat upstairs, it's flooding.",
            "There's water coming through my ceiling from the flat upstairs, it's flooding",
        ),
        ("Hi, my kitchen sink is leaking all over the floor.", "My kitchen sink is leaking all over the floor"),
        ("Hello.", ""),
        (
            "This is James Wilson. My number is area code two oh seven, five five five, oh one six three. "
            "I'd like my outboard looked over before the season starts.",
            "I'd like my outboard looked over before the season starts",
        ),
        (
            "Hi, it's James Wilson, my number's 555 762 0419, the wind knocked our fence flat.",
            "The wind knocked our fence flat",
        ),
        # Numbers in a reason that are not a phone number stay.
        ("We need two rooms, three nights.", "We need two rooms, three nights"),
    ],
)
def test_reason_text(text: str, reason: str) -> None:
    assert reason_text(text, name="James Wilson") == reason


@pytest.mark.parametrize(
    ("text", "keywords", "wants_person", "priority"),
    [
        ("we have no heat in the house", ACME_URGENT, False, "urgent"),
        ("there's no heating", ACME_URGENT, False, "urgent"),
        ("it's flooding", ACME_URGENT, False, "urgent"),
        ("the basement flooded", ACME_URGENT, False, "urgent"),
        ("my outlet is sparking", ACME_URGENT, False, "urgent"),
        ("the gasket is worn", ACME_URGENT, False, "normal"),
        ("Our whole office network is down", ["down", "outage", "can't work"], False, "urgent"),
        ("we cannot work", ["can't work"], False, "urgent"),
        ("I need to talk to someone about the bill", ACME_URGENT, True, "high"),
        ("this is an emergency", ACME_URGENT, False, "high"),
        ("my sink is leaking", ACME_URGENT, False, "normal"),
        ("my sink is leaking", [], False, "normal"),
    ],
)
def test_priority_for(text: str, keywords: list[str], wants_person: bool, priority: str) -> None:
    assert priority_for(text, keywords, wants_person) == priority


def test_matches_urgent_ignores_blank_keywords() -> None:
    assert not matches_urgent("anything at all", ["", "  "])


@pytest.mark.parametrize(
    ("text", "alternatives", "expected"),
    [
        # Numerals lost "double seven six oh": the words reading is the hearing, and the text to go on.
        (
            "My number is 555-902.",
            ["My number is five five five nine oh two double seven six oh."],
            PhoneReading("My number is five five five nine oh two double seven six oh.", ("+15559027760",)),
        ),
        # A digit lost or one too many: every reading is a hearing, the numerals reading last.
        (
            "My number is 555 902 760.",
            ["My number is five five five nine oh two double seven six oh."],
            PhoneReading("My number is five five five nine oh two double seven six oh.", ("+15559027760", "555902760")),
        ),
        (
            "My number is 555 410 77888.",
            ["My number is 555-400-7788."],
            PhoneReading("My number is 555-400-7788.", ("+15554007788", "55541077888")),
        ),
        # A whole numerals reading is taken alone.
        (
            "My number is 555 410 7788.",
            ["My number is 555-400-7788."],
            PhoneReading("My number is 555 410 7788.", ("+15554107788",)),
        ),
        ("My number is 555-902.", ["My number is 555 902."], PhoneReading("My number is 555-902.", ())),
        # "Double four" written as "00" with numerals, as the pair with words: the words reading.
        (
            "My number is 555 301 0049.",
            ["My number is 555-301-4429."],
            PhoneReading("My number is 555-301-4429.", ("+15553014429",)),
        ),
        # Zeros that both readings hear are the caller's.
        (
            "My number is 555 300 4429.",
            ["My number is 555-301-4429."],
            PhoneReading("My number is 555 300 4429.", ("+15553004429",)),
        ),
    ],
)
def test_phone_reading(text: str, alternatives: list[str], expected: PhoneReading) -> None:
    assert phone_reading(text, alternatives) == expected
