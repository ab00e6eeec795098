"""The call context every dialogue policy is built from."""

from __future__ import annotations

from calls.pipeline.protocols import AgentSettings, CallContext, HistoryTurn


def test_history_keeps_the_last_turns_only() -> None:
    context = CallContext(settings=AgentSettings(business_name="Acme"), max_turns=2)
    context.turn_add("agent", "How can I help?")
    context.turn_add("caller", "My sink is leaking.")
    context.turn_add("agent", "Could I have your name, please?")
    assert list(context.history) == [
        HistoryTurn("caller", "My sink is leaking."),
        HistoryTurn("agent", "Could I have your name, please?"),
    ]


def test_empty_text_is_not_a_turn() -> None:
    context = CallContext(settings=AgentSettings(business_name="Acme"))
    context.turn_add("caller", "")
    assert list(context.history) == []


def test_a_cut_reply_keeps_what_was_heard() -> None:
    context = CallContext(settings=AgentSettings(business_name="Acme"))
    context.turn_add("agent", "Thanks, Maria. What's the best number to reach you on?")
    context.turn_add("caller", "Sorry, one moment.")
    context.agent_turn_cut("Thanks, Maria.")
    assert list(context.history) == [
        HistoryTurn("agent", "Thanks, Maria.", interrupted=True),
        HistoryTurn("caller", "Sorry, one moment."),
    ]


def test_a_cut_before_any_agent_turn_changes_nothing() -> None:
    context = CallContext(settings=AgentSettings(business_name="Acme"))
    context.turn_add("caller", "Hello?")
    context.agent_turn_cut("")
    assert list(context.history) == [HistoryTurn("caller", "Hello?")]
