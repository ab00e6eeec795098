"""The ticket summary a call leaves: how a transfer that ended after the call is restated."""

from calls.dialogue.summary import summary_transfer_restate


def test_a_transfer_that_ended_is_restated_in_the_summary_and_nothing_else_changes() -> None:
    ringing = "Leak: Sink. Ana asked to speak to a person and was being put through; prefers Monday."
    assert summary_transfer_restate(ringing, "busy") == (
        "Leak: Sink. Ana asked to speak to a person; the line was busy, so call back as a priority; prefers Monday."
    )
    assert summary_transfer_restate(ringing, "dialing") == ringing
    assert summary_transfer_restate(ringing, "ringing") == ringing
    assert summary_transfer_restate("Leak: Sink.", "answered") == "Leak: Sink."
