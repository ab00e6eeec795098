"""A whole reply and the parts it streams as."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from calls.dialogue.reply import Reply, reply_collect
from calls.pipeline.protocols import EndCall, FieldUpdate, Listen, ReplyPart, Say


async def _stream(parts: list[ReplyPart]) -> AsyncIterator[ReplyPart]:
    for part in parts:
        yield part


def test_parts_are_one_say_per_sentence_then_listen() -> None:
    reply = Reply(
        text="Thank you. Could you spell your name for me, letter by letter?", expect="spelling", answer_hint="Asia"
    )
    assert reply.parts() == [
        Say("Thank you."),
        Say("Could you spell your name for me, letter by letter?"),
        Listen(expect="spelling", answer_hint="Asia"),
    ]


def test_a_closing_reply_ends_with_end_call() -> None:
    assert Reply(text="Thanks for calling. Goodbye!", end_call=True).parts() == [
        Say("Thanks for calling."),
        Say("Goodbye!"),
        EndCall(),
    ]


def test_collecting_the_parts_gives_the_reply_back() -> None:
    reply = Reply(text="Sorry about that. What should I change: the name or the number?", expect="free")
    parts: list[ReplyPart] = [FieldUpdate("name", ""), *reply.parts()]
    assert asyncio.run(reply_collect(_stream(parts))) == reply
    closing = Reply(text="Goodbye!", end_call=True)
    assert asyncio.run(reply_collect(_stream(closing.parts()))) == closing


def test_collecting_rejects_what_is_not_a_part() -> None:
    with pytest.raises(TypeError, match="not a reply part"):
        asyncio.run(reply_collect(_stream([Say("Hi."), "Listen"])))  # type: ignore[list-item]
