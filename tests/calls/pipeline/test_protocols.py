"""The call context every dialogue policy is built from."""

from __future__ import annotations

from calls.pipeline.protocols import MAX_FAQ_WORDS, AgentSettings, CallContext, FaqEntry, HistoryTurn


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


def test_recognition_vocabulary_holds_the_words_the_faq_asks_about() -> None:
    settings = AgentSettings(
        business_name="Acme",
        categories=["heating", "general"],
        urgent_keywords=["gas smell"],
        vocabulary=["Rheem"],
        faqs=[
            FaqEntry("1", "Do you offer financing?", "Yes."),
            FaqEntry("2", "Which towns do you cover? Where's your office?", "Springfield."),
            FaqEntry("3", "Is there a warranty on financing?", "Two years."),
        ],
    )

    assert settings.recognition_vocabulary() == [
        "Rheem",
        "gas smell",
        "heating",
        "offer",
        "financing",
        "towns",
        "cover",
        "office",
        "warranty",
    ]


def test_a_long_faq_gives_the_recognizer_a_bounded_number_of_words() -> None:
    faqs = [FaqEntry(str(i), f"Do you repair model{chr(97 + i % 26)}{i}?", "Yes.") for i in range(40)]

    vocabulary = AgentSettings(business_name="Acme", categories=["general"], faqs=faqs).recognition_vocabulary()

    assert len(vocabulary) == MAX_FAQ_WORDS  # "repair" and the first models
    assert vocabulary[:2] == ["repair", "modela"]
