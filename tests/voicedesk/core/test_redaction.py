"""Masking of what callers say in stored transcripts: written and spoken numbers and addresses."""

from __future__ import annotations

import pytest

from voicedesk.core.redaction import transcript_mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call me on 555 201 3344 please", "call me on [phone] please"),
        ("my number is five five five two oh one three three four four", "my number is [phone]"),
        ("Five five five, two zero one, three three four four.", "[phone]."),
        ("double five five two zero one triple three four", "[phone]"),
        ("it's plus 1 555 201 3344", "it's plus [phone]"),
        ("jane.doe@example.com", "[email]"),
        ("it's jane dot doe at example dot com, thanks", "it's [email], thanks"),
        ("Jo underscore Smith at mail dot co dot uk", "[email]"),
        # Not numbers or addresses: short runs, times, counts, everyday "at".
        ("I have two dogs and one cat", "I have two dogs and one cat"),
        ("come at nine thirty on the 12th", "come at nine thirty on the 12th"),
        ("room 101 on floor 2", "room 101 on floor 2"),
        ("one two three", "one two three"),
        ("meet me at the park", "meet me at the park"),
        ("I'm at home dot", "I'm at home dot"),
    ],
)
def test_transcript_mask(text: str, masked: str) -> None:
    assert transcript_mask(text) == masked


def test_masking_twice_changes_nothing_more() -> None:
    once = transcript_mask("five five five two oh one three three four four or jo at example dot com")
    assert once == "[phone] or [email]"
    assert transcript_mask(once) == once
