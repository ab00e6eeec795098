"""The simulated caller: exact replies to agent prompts for every rule and behaviour, and turn listening."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from calls.audio import mulaw_encode
from calls.pipeline.protocols import SpeechToText
from voicedesk.simulator.caller import (
    GOODBYE,
    NOTHING_MORE,
    REPEAT_REQUEST,
    TIME_UP,
    WANT_HUMAN,
    YES,
    AgentTurn,
    CallerBrain,
    Decision,
    Intent,
    Line,
    Prompt,
    PromptKind,
    TurnListener,
    VoiceSpec,
    VoiceSpecError,
    classify_prompt,
    field_answer,
    first_line,
    is_speech,
    say_digits,
    say_email,
    say_number,
    speakable,
    spell,
    trim_silence,
)
from voicedesk.simulator.carrier import SILENCE_FRAME, PlayedFrame
from voicedesk.simulator.scenario import Behaviour, CallerSpec

GREETING = "Thanks for calling Acme Plumbing and Heating, this is the virtual receptionist. How can I help?"
MARIA = CallerSpec(
    phone="+15557654321",
    says_first="Hi, my kitchen sink is leaking all over the floor.",
    facts={
        "name": "Maria Gonzalez",
        "callback_number": "555 201 3344",
        "address": "42 Oak Street",
        "email": "maria.gonzalez@example.com",
        "preferred_time": "Tuesday afternoon",
    },
    asks=("Are you open on Saturdays?", "Do you offer emergency service?"),
)


def brain_after_greeting(caller: CallerSpec = MARIA) -> CallerBrain:
    brain = CallerBrain(caller)
    brain.on_agent_turn(GREETING)
    return brain


def said(decision: Decision) -> str:
    assert decision.line is not None
    return decision.line.text


# -- prompts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Okay, I've made a note of that. Could I have your name, please?", Prompt(PromptKind.FIELDS, ("name",))),
        ("Thanks, Maria. What's the best number to reach you on?", Prompt(PromptKind.FIELDS, ("callback_number",))),
        ("Can I get a phone to call you back on?", Prompt(PromptKind.FIELDS, ("callback_number",))),
        ("What's the address, please?", Prompt(PromptKind.FIELDS, ("address",))),
        ("Could I have your e-mail, please?", Prompt(PromptKind.FIELDS, ("email",))),
        ("What day and time would suit you best?", Prompt(PromptKind.FIELDS, ("preferred_time",))),
        ("Could I have your number and your name?", Prompt(PromptKind.FIELDS, ("callback_number", "name"))),
        ("Sorry, I didn't catch your name. Could you say it again?", Prompt(PromptKind.FIELDS, ("name",))),
        ("Could you spell your last name for me?", Prompt(PromptKind.SPELL, ("name",))),
        ("Could you spell the email for me?", Prompt(PromptKind.SPELL, ("email",))),
        (
            "Let me read that back: Maria Gonzalez; five five five, two zero one, three three four four. "
            "Is that right?",
            Prompt(PromptKind.READ_BACK),
        ),
        (
            "Sorry about that. What should I change: the name or the number?",
            Prompt(PromptKind.CHANGE, ("name", "callback_number")),
        ),
        ("We are open Monday to Friday. Is there anything else I can help with?", Prompt(PromptKind.OPEN)),
        (
            "Hello? Are you still there? Whenever you're ready, just tell me what you're calling about.",
            Prompt(PromptKind.OPEN),
        ),
        ("How can I help you today?", Prompt(PromptKind.OPEN)),
        ("Sorry, could you say that again?", Prompt(PromptKind.SAY_AGAIN)),
        ("Sorry, I didn't quite catch that. Is there anything else I can help with?", Prompt(PromptKind.SAY_AGAIN)),
        ("Sorry, I didn't catch that, how can I help?", Prompt(PromptKind.SAY_AGAIN)),
        ("Sorry, I didn't hear anything. Is there anything else I can help with?", Prompt(PromptKind.OPEN)),
        ("Okay, sorry. Could you spell your name again? One letter at a time.", Prompt(PromptKind.SPELL, ("name",))),
        # "spell" misheard: the name is asked for, and how is said after it.
        ("Okay, thanks. Could you spill your name for me? Letter by letter.", Prompt(PromptKind.SPELL, ("name",))),
        ("Could you smell your email? Letter by letter.", Prompt(PromptKind.SPELL, ("email",))),
        ("Could you tell your name again, one letter at a time?", Prompt(PromptKind.SPELL, ("name",))),
        ("Take your time. Could I have your name?", Prompt(PromptKind.FIELDS, ("name",))),
        ("Sorry, I didn't catch that. Could I have your number?", Prompt(PromptKind.FIELDS, ("callback_number",))),
        ("Is there anything else? We also have a time slot on Monday.", Prompt(PromptKind.OPEN)),
        ("Please. Tell me your email", Prompt(PromptKind.FIELDS, ("email",))),
        ("The weather is lovely today.", Prompt(PromptKind.UNKNOWN)),
        ("", Prompt(PromptKind.UNKNOWN)),
    ],
)
def test_classify_prompt(agent: str, expected: Prompt) -> None:
    assert classify_prompt(agent) == expected


def test_field_words_in_earlier_sentences_are_not_questions() -> None:
    # An FAQ answer mentioning "time" before "anything else" is not a time question.
    agent = "Our standard time slot is one hour. The fee includes parts. Is there anything else I can help with?"
    assert classify_prompt(agent) == Prompt(PromptKind.OPEN)


# -- saying things ---------------------------------------------------------------


def test_spell_name_and_email() -> None:
    assert spell("Maria Gonzalez") == "M, A, R, I, A. G, O, N, Z, A, L, E, Z."
    assert spell("sofia.rossi@ex.com", email=True) == "S, O, F, I, A, dot, R, O, S, S, I, at, E, X, dot, C, O, M."


def test_numbers_and_emails_are_said_aloud() -> None:
    assert say_digits("555 201 3344") == "five five five, two zero one, three three four four"
    assert say_email("sofia.rossi@example.com") == "sofia dot rossi at example dot com"
    assert speakable("my number is 555 444 3333, at 42 Oak Street") == (
        "my number is five five five, four four four, three three three three, at 42 Oak Street"
    )


def test_field_answers() -> None:
    assert field_answer("name", "Maria Gonzalez") == Line("My name is Maria Gonzalez.")
    assert field_answer("callback_number", "555 201 3344") == Line(
        "My number is 555 201 3344.", "My number is five five five, two zero one, three three four four."
    )
    assert field_answer("address", "42 Oak Street") == Line("The address is 42 Oak Street.")
    assert field_answer("email", "sofia.rossi@example.com") == Line("My email is sofia dot rossi at example dot com.")
    assert field_answer("preferred_time", "Tuesday afternoon") == Line("Tuesday afternoon would be best.")
    assert field_answer("address", None) == Line("Sorry, I'd rather not say.")


# -- the rules --------------------------------------------------------------------


def test_greeting_gets_says_first_whatever_it_says() -> None:
    decision = CallerBrain(MARIA).on_agent_turn("Hello, you've reached BrightSmile Dental.")
    assert decision == Decision(Intent.SAYS_FIRST, Line("Hi, my kitchen sink is leaking all over the floor."))


def test_answers_only_the_field_asked_for() -> None:
    brain = brain_after_greeting()
    assert said(brain.on_agent_turn("Okay, I've made a note of that. Could I have your name, please?")) == (
        "My name is Maria Gonzalez."
    )
    decision = brain.on_agent_turn("Thanks, Maria. What's the best number to reach you on?")
    assert decision.intent is Intent.ANSWER
    assert decision.line == Line(
        "My number is 555 201 3344.", "My number is five five five, two zero one, three three four four."
    )
    assert said(brain.on_agent_turn("Could I have your email, please?")) == (
        "My email is maria dot gonzalez at example dot com."
    )
    assert said(brain.on_agent_turn("What day and time would suit you best?")) == "Tuesday afternoon would be best."
    assert said(brain.on_agent_turn("What's the address, please?")) == "The address is 42 Oak Street."


def test_spells_the_name_by_default_and_the_email_when_asked() -> None:
    brain = brain_after_greeting()
    decision = brain.on_agent_turn("Thanks. Could you spell your last name for me, letter by letter?")
    assert decision == Decision(
        Intent.SPELL,
        # "A" and "I" between hyphens would be read as the words "a" and "I".
        Line(
            "M, A, R, I, A. G, O, N, Z, A, L, E, Z.",
            "M - Eigh - R - Eye - Eigh, G - O - N - Z - Eigh - L - E - Z.",
        ),
    )
    assert said(brain.on_agent_turn("Could you spell your email?")) == (
        "M, A, R, I, A, dot, G, O, N, Z, A, L, E, Z, at, E, X, A, M, P, L, E, dot, C, O, M."
    )


def test_anything_else_walks_through_asks_then_is_done() -> None:
    brain = brain_after_greeting()
    assert brain.on_agent_turn("Is there anything else I can help with?") == Decision(
        Intent.ASK, Line("Are you open on Saturdays?")
    )
    assert said(brain.on_agent_turn("We are open on Saturday from 9 am. Anything else?")) == (
        "Do you offer emergency service?"
    )
    assert brain.on_agent_turn("Yes, we have a plumber on call. How can I help you today?") == Decision(
        Intent.DONE, Line(NOTHING_MORE)
    )
    assert NOTHING_MORE == "No, that's all."


def test_read_back_confirms_with_yes() -> None:
    brain = brain_after_greeting()
    decision = brain.on_agent_turn("Let me read that back: Maria Gonzalez; five five five. Is that right?")
    assert decision == Decision(Intent.CONFIRM, Line("Yes, that's right."))
    assert YES == "Yes, that's right."


def test_read_back_correction_then_yes_and_the_new_value_sticks() -> None:
    caller = replace(MARIA, confirms={"callback_number": "555 867 5390"})
    brain = brain_after_greeting(caller)
    decision = brain.on_agent_turn("Let me read that back: Maria Gonzalez; five five five. Is that right?")
    assert decision == Decision(
        Intent.CORRECT,
        Line(
            "No, the number is 555 867 5390.",
            "No, the number is five five five, eight six seven, five three nine zero.",
        ),
    )
    assert said(brain.on_agent_turn("Sorry about that. What should I change: the name or the number?")) == (
        "The number is 555 867 5390."
    )
    assert said(brain.on_agent_turn("What's the best number to reach you on?")) == "My number is 555 867 5390."
    assert said(brain.on_agent_turn("Let me read that back: ... Is that right?")) == "Yes, that's right."


def test_several_corrections_in_one_line() -> None:
    caller = replace(MARIA, confirms={"name": "Marie Gonzales", "callback_number": "555 201 3345"})
    brain = brain_after_greeting(caller)
    assert said(brain.on_agent_turn("Let me read that back. Is that correct?")) == (
        "No, the name is Marie Gonzales, and the number is 555 201 3345."
    )


def test_confirms_false_says_no() -> None:
    brain = brain_after_greeting(replace(MARIA, confirms=False))
    assert said(brain.on_agent_turn("Let me read that back: Maria. Is that right?")) == "No, that's not right."


def test_repeat_twice_per_prompt_then_hang_up() -> None:
    brain = brain_after_greeting()
    assert brain.on_agent_turn("Blah blah.") == Decision(Intent.REPEAT, Line(REPEAT_REQUEST))
    assert brain.on_agent_turn("Blah blah.") == Decision(Intent.REPEAT, Line(REPEAT_REQUEST))
    assert brain.on_agent_turn("Blah blah.") == Decision(Intent.HANG_UP, hang_up=True)
    assert brain.done
    assert brain.on_agent_turn("Could I have your name?") == Decision(Intent.LISTEN)
    assert REPEAT_REQUEST == "Sorry, could you repeat that?"


def test_repeat_count_resets_once_understood() -> None:
    brain = brain_after_greeting()
    brain.on_agent_turn("Mumble.")
    brain.on_agent_turn("Mumble.")
    assert said(brain.on_agent_turn("Could I have your name, please?")) == "My name is Maria Gonzalez."
    assert brain.on_agent_turn("Mumble.").intent is Intent.REPEAT


def test_understands_has_no_side_effects() -> None:
    brain = brain_after_greeting()
    assert brain.understands("Blah.") is False
    assert brain.understands("Could I have your name?") is True
    assert brain.understands("Thanks for calling. Goodbye!") is True
    assert brain.on_agent_turn("Blah.").intent is Intent.REPEAT
    assert CallerBrain(MARIA).understands("anything at all") is True  # the greeting always is


def test_agent_says_it_again_gets_the_last_line_again() -> None:
    brain = brain_after_greeting()
    brain.on_agent_turn("Could I have your name, please?")
    assert said(brain.on_agent_turn("Sorry, could you say that again?")) == "My name is Maria Gonzalez."


def test_goodbye_when_the_agent_closes() -> None:
    brain = brain_after_greeting()
    decision = brain.on_agent_turn("Thanks for calling Acme. Someone from the team will be in touch soon. Goodbye!")
    assert decision == Decision(Intent.GOODBYE, Line(GOODBYE), hang_up=True)
    assert brain.done


def test_goodbye_after_four_minutes() -> None:
    assert brain_after_greeting().on_time_up() == Decision(Intent.GOODBYE, Line(TIME_UP), hang_up=True)


def test_unknown_fact_is_declined() -> None:
    brain = brain_after_greeting(replace(MARIA, facts={"name": "Maria Gonzalez"}))
    assert said(brain.on_agent_turn("What's the address, please?")) == "Sorry, I'd rather not say."


# -- behaviours --------------------------------------------------------------------


def test_silent_start_waits_six_seconds_before_the_opening_line() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(silent_start=True)))
    assert brain.on_agent_started() is None
    assert brain.on_agent_turn(GREETING) == Decision(
        Intent.SAYS_FIRST, Line("Hi, my kitchen sink is leaking all over the floor."), after_s=6.0
    )


def test_hangs_up_after_n_utterances() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(hangs_up_after=2)))
    first = brain.on_agent_turn(GREETING)
    assert first.hang_up is False
    second = brain.on_agent_turn("Could I have your name, please?")
    assert second == Decision(Intent.ANSWER, Line("My name is Maria Gonzalez."), hang_up=True)
    assert brain.done


def test_hangs_up_after_one_utterance_is_the_opening_line() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(hangs_up_after=1)))
    assert brain.on_agent_turn(GREETING) == Decision(
        Intent.SAYS_FIRST, Line("Hi, my kitchen sink is leaking all over the floor."), hang_up=True
    )


def test_interrupts_greeting_speaks_one_second_in_and_ignores_the_rest_of_it() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(interrupts_greeting=True)))
    assert brain.on_agent_started() == Decision(
        Intent.SAYS_FIRST, Line("Hi, my kitchen sink is leaking all over the floor."), after_s=1.0, barge_in=True
    )
    assert brain.on_agent_started() is None
    assert brain.understands("Thanks for calling Acme") is True
    assert brain.on_agent_turn("Thanks for calling Acme") == Decision(Intent.LISTEN)
    assert said(brain.on_agent_turn("Okay, I've made a note of that. Could I have your name, please?")) == (
        "My name is Maria Gonzalez."
    )


def test_interrupted_greeting_merged_with_the_reply_is_answered() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(interrupts_greeting=True)))
    brain.on_agent_started()
    assert said(brain.on_agent_turn("Thanks for calling. Okay, noted. Could I have your name, please?")) == (
        "My name is Maria Gonzalez."
    )


def test_wants_human_asks_for_a_person_at_the_first_question_only() -> None:
    brain = brain_after_greeting(replace(MARIA, behaviour=Behaviour(wants_human=True)))
    assert brain.on_agent_turn("Okay. Could I have your name, please?") == Decision(Intent.HUMAN, Line(WANT_HUMAN))
    assert WANT_HUMAN == "Can I speak to a real person, please?"
    assert said(brain.on_agent_turn("I understand. Could I have your name, please?")) == "My name is Maria Gonzalez."


def test_volunteers_all_adds_name_and_number_when_says_first_lacks_them() -> None:
    caller = replace(MARIA, behaviour=Behaviour(volunteers_all=True))
    assert first_line(caller) == Line(
        "This is Maria Gonzalez. My number is 555 201 3344. Hi, my kitchen sink is leaking all over the floor.",
        "This is Maria Gonzalez. My number is five five five, two zero one, three three four four. "
        "Hi, my kitchen sink is leaking all over the floor.",
    )


def test_volunteers_all_keeps_a_says_first_that_has_everything() -> None:
    caller = CallerSpec(
        phone="+15554443333",
        says_first="Hi, this is James Wilson, my number is 555 444 3333, and I'd like a quote.",
        facts={"name": "James Wilson", "callback_number": "555 444 3333"},
        behaviour=Behaviour(volunteers_all=True),
    )
    assert first_line(caller) == Line(
        "Hi, this is James Wilson, my number is 555 444 3333, and I'd like a quote.",
        "Hi, this is James Wilson, my number is five five five, four four four, three three three three, "
        "and I'd like a quote.",
    )


def test_a_greeting_cut_short_by_the_caller_needs_no_answer() -> None:
    brain = CallerBrain(replace(MARIA, behaviour=Behaviour(interrupts_greeting=True)))
    brain.on_agent_started()
    assert brain.on_talked_over() == Decision(Intent.LISTEN)
    # The fragment is gone; the agent's next "How can I help?" is a real prompt again.
    assert said(brain.on_agent_turn("How can I help you today?")) == "Are you open on Saturdays?"


def test_awaiting_greeting_until_the_opening_line() -> None:
    brain = CallerBrain(MARIA)
    assert brain.awaiting_greeting is True
    brain.on_agent_turn("")
    assert brain.awaiting_greeting is False


def test_predictable_lines_cover_answers_spelling_corrections_and_stock_phrases() -> None:
    caller = replace(MARIA, facts={"name": "Ann Lee", "callback_number": "555 000 1111"}, asks=("Open Sundays?",),
                     confirms={"callback_number": "555 000 1112"})  # fmt: skip
    assert [line.text for line in CallerBrain(caller).predictable_lines()] == [
        "Hi, my kitchen sink is leaking all over the floor.",
        "My name is Ann Lee.",
        "A, N, N. L, E, E.",
        "My number is 555 000 1111.",
        "My number is 555 000 1112.",
        "No, the number is 555 000 1112.",
        "The number is 555 000 1112.",
        "Open Sundays?",
        "Yes, that's right.",
        "No, that's not right.",
        "No, that's all.",
        "Sorry, could you repeat that?",
        "Thank you, goodbye.",
        "Sorry, I have to go now. Goodbye.",
        "Can I speak to a real person, please?",
        "Sorry, I'd rather not say.",
        "Sorry, I don't have an email address.",
        "I don't have a preferred time, any time is fine.",
    ]


# -- listening: turns from played-out audio ------------------------------------------------

LOUD = mulaw_encode((np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16))
QUIET = SILENCE_FRAME


def test_speech_detection_and_trimming() -> None:
    assert is_speech(LOUD) is True
    assert is_speech(QUIET) is False
    assert trim_silence(QUIET * 5 + LOUD * 2 + QUIET * 6, keep_frames=1) == QUIET + LOUD * 2 + QUIET
    assert trim_silence(QUIET * 3) == b""


def play(listener: TurnListener, frames: list[bytes | None], start_tick: int = 0) -> int:
    for i, agent in enumerate(frames):
        tick = start_tick + i
        listener.on_tick(PlayedFrame(tick=tick, at=tick * 0.02, caller=QUIET, agent=agent))
    return start_tick + len(frames)


def test_a_turn_ends_after_0_7_s_of_nothing_audible() -> None:
    turns: list[AgentTurn] = []
    listener = TurnListener(caller_speaking=lambda: False, on_turn=turns.append)
    tick = play(listener, [None] * 5 + [LOUD] * 10 + [QUIET] * 10 + [LOUD] * 5)  # a 0.2 s pause inside
    assert listener.talking is True
    tick = play(listener, [None] * 34, tick)
    assert turns == []  # 0.68 s of nothing: not yet
    play(listener, [None], tick)
    assert len(turns) == 1
    assert turns[0].started_at == pytest.approx(0.1)
    assert turns[0].ended_at == pytest.approx(0.6)
    assert turns[0].audio == LOUD * 10 + QUIET * 10 + LOUD * 5
    assert listener.talking is False


def test_a_turn_is_not_closed_while_the_caller_talks() -> None:
    turns: list[AgentTurn] = []
    caller_talking = [True]
    listener = TurnListener(caller_speaking=lambda: caller_talking[0], on_turn=turns.append)
    tick = play(listener, [LOUD] * 5 + [None] * 60)
    assert turns == []
    caller_talking[0] = False
    play(listener, [None], tick)
    assert [t.audio for t in turns] == [LOUD * 5]
    assert listener.first_speech.is_set()


def test_an_agent_that_did_not_catch_the_answer_hears_it_again() -> None:
    brain = brain_after_greeting()
    assert said(brain.on_agent_turn("Is there anything else I can help with?")) == "Are you open on Saturdays?"
    decision = brain.on_agent_turn("Sorry, I didn't quite catch that. Is there anything else I can help with?")
    assert decision == Decision(Intent.SAY_AGAIN, Line("Are you open on Saturdays?"))
    # The ask was repeated, not used up: the next "anything else" gets the next one.
    assert said(brain.on_agent_turn("Anything else?")) == "Do you offer emergency service?"


def test_saying_it_again_skips_our_own_repeat_requests() -> None:
    brain = brain_after_greeting()
    brain.on_agent_turn("Could I have your name, please?")
    assert said(brain.on_agent_turn("Mumble.")) == REPEAT_REQUEST
    assert said(brain.on_agent_turn("Sorry, could you say that again?")) == "My name is Maria Gonzalez."


def test_the_greeting_not_caught_gets_the_opening_line_again() -> None:
    brain = brain_after_greeting()
    assert said(brain.on_agent_turn("Sorry, I didn't quite catch that. How can I help?")) == (
        "Hi, my kitchen sink is leaking all over the floor."
    )


@pytest.mark.asyncio
async def test_the_ear_hears_a_whole_read_back_cut_at_its_first_and_last_audible_frame() -> None:
    from pathlib import Path

    from voicedesk.simulator.caller import shared_speech_models

    # Recorded in an acceptance run: given exactly these samples, Whisper
    # tiny.en stopped after "Thank you." and the caller asked to repeat.
    audio = (Path(__file__).parent / "data" / "read-back-cut-at-its-edges.ulaw").read_bytes()

    heard = await shared_speech_models().hear(audio)

    assert heard.startswith("Thank you. Let me read that back. James Wilson")
    # The question may run on from the number ("... 555-443333 is that right?"), as a beam decoded it.
    assert heard.lower().endswith("is that right?")


# -- numbers said in words, missing facts -----------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("555 201 3344", "five five five, two zero one, three three four four"),
        ("(555) 201-3344", "five five five, two zero one, three three four four"),
        ("five five five, two oh one, double three four four", "five five five, two oh one, double three four four"),
        ("area code 415, 555 0199", "area code four one five, five five five, zero one nine nine"),
        ("555 triple 7, 12 oh 8", "five five five triple seven, one two oh eight"),
    ],
)
def test_numbers_are_said_as_written_and_digits_digit_by_digit(written: str, spoken: str) -> None:
    assert say_number(written) == spoken


def test_a_number_in_words_is_answered_as_written() -> None:
    caller = replace(
        MARIA, facts={**MARIA.facts, "callback_number": "five five five, two oh one, double three four four"}
    )
    decision = brain_after_greeting(caller).on_agent_turn("What's the best number to reach you?")
    assert decision.line == Line(
        "My number is five five five, two oh one, double three four four.",
        "My number is five five five, two oh one, double three four four.",
    )


def test_a_correction_mid_number_is_said_as_written() -> None:
    caller = replace(MARIA, facts={**MARIA.facts, "callback_number": "555 812, sorry, 555 821 4406"})
    decision = brain_after_greeting(caller).on_agent_turn("And your phone number?")
    assert decision.line == Line(
        "My number is 555 812, sorry, 555 821 4406.",
        "My number is five five five, eight one two, sorry, five five five, eight two one, four four zero six.",
    )


def test_a_read_back_correction_in_words_is_said_as_written() -> None:
    caller = replace(MARIA, confirms={"callback_number": "area code 312, 555 oh 1 9 9"})
    decision = brain_after_greeting(caller).on_agent_turn("Your number is 555 201 3344. Is that right?")
    assert decision == Decision(
        Intent.CORRECT,
        Line(
            "No, the number is area code 312, 555 oh 1 9 9.",
            "No, the number is area code three one two, five five five oh one nine nine.",
        ),
    )


def test_volunteers_all_says_a_number_in_words_unless_the_opening_line_has_it() -> None:
    words = "five five five, oh six oh, double two one nine"
    caller = replace(
        MARIA, facts={"name": "Ann Lee", "callback_number": words}, behaviour=Behaviour(volunteers_all=True)
    )
    assert first_line(caller).text == (
        f"This is Ann Lee. My number is {words}. Hi, my kitchen sink is leaking all over the floor."
    )
    said_it = replace(caller, says_first=f"Hi, it's Ann Lee on {words}, my sink is leaking.")
    assert first_line(said_it).text == f"Hi, it's Ann Lee on {words}, my sink is leaking."


def test_a_caller_without_an_email_says_so_when_asked_or_asked_to_spell_it() -> None:
    caller = replace(MARIA, facts={"name": "Maria Gonzalez", "callback_number": "555 201 3344"})
    brain = brain_after_greeting(caller)
    assert brain.on_agent_turn("Could I have your email address?") == Decision(
        Intent.ANSWER, Line("Sorry, I don't have an email address.")
    )
    assert said(brain.on_agent_turn("Could you spell your email for me?")) == "Sorry, I don't have an email address."
    assert said(brain.on_agent_turn("When is a good time for us to call?")) == (
        "I don't have a preferred time, any time is fine."
    )
    # A name asked for afterwards is still answered: saying "none" is not a dead end.
    assert said(brain.on_agent_turn("And your name?")) == "My name is Maria Gonzalez."


def test_missing_and_known_facts_in_one_question() -> None:
    caller = replace(MARIA, facts={"name": "Maria Gonzalez"})
    decision = brain_after_greeting(caller).on_agent_turn("Can I get your name and email?")
    assert said(decision) == "My name is Maria Gonzalez. Sorry, I don't have an email address."
    assert field_answer("address", None) == Line("Sorry, I'd rather not say.")


# -- the caller's voice and line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("piper", VoiceSpec("piper")),
        ("offline", VoiceSpec()),
        ("piper:speed=0.85", VoiceSpec("piper", (("speed", 0.85),))),
        ("espeak:en-us+f3", VoiceSpec("espeak", (("voice", "en-us+f3"),))),
        (
            "espeak:voice=en-gb, speed=1.1,pitch=40",
            VoiceSpec("espeak", (("voice", "en-gb"), ("speed", 1.1), ("pitch", 40))),
        ),
    ],
)
def test_voice_specs(spec: str, expected: VoiceSpec) -> None:
    assert VoiceSpec.parse(spec) == expected
    assert VoiceSpec.parse(expected.describe()) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("festival", "unknown caller voice engine 'festival' (known: piper, espeak, offline)"),
        ("piper:fast", "voice option 'fast' must be written key=value"),
        ("espeak:en-gb,en-us", "voice option 'en-us' must be written key=value"),
        ("espeak:speed=1,speed=2", "voice option 'speed' is given twice"),
        ("espeak:speed=", "voice option 'speed=' must be written key=value"),
    ],
)
def test_voice_specs_that_cannot_be_read(spec: str, message: str) -> None:
    with pytest.raises(VoiceSpecError) as error:
        VoiceSpec.parse(spec)
    assert str(error.value) == message


def test_an_option_the_engine_lacks_is_refused_by_the_engine() -> None:
    with pytest.raises(VoiceSpecError) as error:
        VoiceSpec.parse("espeak:noise_scale=0.9").build()
    assert str(error.value).startswith("caller voice 'espeak:noise_scale=0.9': ")
    assert "noise_scale" in str(error.value)
    with pytest.raises(VoiceSpecError) as error:
        VoiceSpec.parse("espeak:pitch=120").build()
    assert str(error.value) == "caller voice 'espeak:pitch=120': pitch must be 0..99, got 120"


def test_an_espeak_voice_is_built_with_its_options() -> None:
    engine = VoiceSpec.parse("espeak:voice=en-gb,speed=1.2,pitch=30").build()
    assert (engine.name, engine.voice, engine.speed, engine.pitch) == ("espeak", "en-gb", 1.2, 30)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_the_line_impairs_the_caller_voice_repeatably() -> None:
    from calls.audio import mulaw_decode
    from voicedesk.simulator.caller import SpeechModels
    from voicedesk.simulator.impair import LineImpairment, measured_snr_db

    voice = VoiceSpec.parse("espeak:en-us+f3").build()
    stt = shared_speech_models_stt()
    clean = await SpeechModels(tts=voice, stt=stt).voice("My name is Ann Lee.")
    quiet = await SpeechModels(tts=voice, stt=stt, line=LineImpairment(gain_db=-10)).voice("My name is Ann Lee.")
    noisy_models = SpeechModels(tts=voice, stt=stt, line=LineImpairment(snr_db=18, seed=4))
    noisy = await noisy_models.voice("My name is Ann Lee.")

    assert len(clean) == len(quiet) == len(noisy) > 0
    level_db = 20 * np.log10(rms_of(mulaw_decode(quiet)) / rms_of(mulaw_decode(clean)))
    assert abs(level_db - (-10)) < 0.5
    assert abs(measured_snr_db(mulaw_decode(clean), mulaw_decode(noisy)) - 18) < 0.5
    again = await SpeechModels(tts=voice, stt=stt, line=LineImpairment(snr_db=18, seed=4)).voice("My name is Ann Lee.")
    assert again == noisy
    assert SpeechModels(tts=voice, stt=stt, line=LineImpairment()).line is None

    # Between lines the noise goes on, at the level it has under the caller's speech.
    speech_rms = rms_of(mulaw_decode(clean))
    assert abs(noisy_models.speech_rms - speech_rms) < 1.0
    idle = noisy_models.idle_noise(key="groom-doodle-full-groom")
    assert idle is not None
    hiss = np.concatenate([mulaw_decode(next(idle)) for _ in range(500)])
    assert abs(20 * np.log10(speech_rms / rms_of(hiss)) - 18) < 0.5
    quiet_models = SpeechModels(tts=voice, stt=stt, line=LineImpairment(gain_db=-10))
    assert quiet_models.idle_noise(key="x") is None


def shared_speech_models_stt() -> SpeechToText:
    from voicedesk.simulator.caller import shared_speech_models

    return shared_speech_models().stt


def rms_of(pcm: np.ndarray) -> float:
    samples = pcm.astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples)))
