"""What a caller's answer holds, given the question it answers."""

from __future__ import annotations

import pytest

from calls.dialogue.answers import field_value, first_name, heard_number, is_request, name_confidence
from calls.pipeline.protocols import Transcript

CALLER_ID = "+15554443333"


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Can you send someone to fix my boiler?", True),
        ("Could I book an appointment for Tuesday?", True),
        ("I need a plumber.", True),
        ("I want to know your opening hours.", False),
        ("Are you open on Saturdays?", False),
        ("Can I get a quote for a new roof?", True),
        ("Hi, can I get into my unit late in the evening, like after nine?", False),
        ("Can I get there by bus?", False),
    ],
)
def test_is_request(sentence: str, expected: bool) -> None:
    assert is_request(sentence) is expected


def test_a_number_close_to_the_caller_id_is_the_caller_id() -> None:
    assert heard_number("It's 555-4434333.", CALLER_ID) == CALLER_ID  # heard
    assert heard_number("The number I'm calling from.", CALLER_ID) == CALLER_ID
    assert heard_number("555 201 3344", CALLER_ID) == "+15552013344"
    assert heard_number("555 201 3344", "") == "+15552013344"


def test_field_values_by_question() -> None:
    assert field_value("name", "It's Maria Gonzalez.", CALLER_ID) == "Maria Gonzalez"
    assert field_value("callback_number", "My number is 555 201 3344.", CALLER_ID) == "+15552013344"
    assert field_value("email", "sofia dot rossi at example dot com", CALLER_ID) == "sofia.rossi@example.com"
    # A question is not an address or a time.
    assert field_value("address", "Do you cover Shelbyville?", CALLER_ID) is None
    assert field_value("preferred_time", "Do you work weekends?", CALLER_ID) is None
    assert field_value("reason", "My sink is leaking.", CALLER_ID) is None


def test_first_name() -> None:
    assert first_name("Maria Gonzalez") == "Maria"
    assert first_name("") == ""


def test_name_confidence_is_the_names_share_of_the_transcript() -> None:
    # Five words, two of them the name: confidence ** 2.5.
    assert name_confidence(Transcript(text="My name is Maria Gonzalez.", confidence=0.9), "Maria Gonzalez") == (
        pytest.approx(0.9**2.5)
    )
    # A bare name is all name.
    assert name_confidence(Transcript(text="Maria Gonzalez.", confidence=0.9), "Maria Gonzalez") == pytest.approx(0.9)
