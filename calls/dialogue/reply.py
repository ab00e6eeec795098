"""A whole reply, and how it turns into the parts a policy streams."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from calls.pipeline.protocols import EndCall, Expectation, FieldUpdate, Listen, ReplyPart, Say, Transfer

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the agent says in one turn, and what it expects back.

    The receptionist decides a reply whole; a streamed reply adds up to one
    (``reply_collect``), which is how tests and text simulations read it.
    """

    text: str
    expect: Expectation = "free"
    end_call: bool = False
    answer_hint: str = ""
    # Put the caller through to this number once the reply is spoken (E.164).
    transfer_to: str = ""

    def parts(self) -> list[ReplyPart]:
        """One ``Say`` per sentence, then ``EndCall``, ``Transfer`` or ``Listen``."""
        said: list[ReplyPart] = [Say(s) for s in _SENTENCE_END.split(self.text.strip()) if s]
        end: ReplyPart
        if self.end_call:
            end = EndCall()
        elif self.transfer_to:
            end = Transfer(to=self.transfer_to)
        else:
            end = Listen(expect=self.expect, answer_hint=self.answer_hint)
        return [*said, end]


async def reply_collect(parts: AsyncIterator[ReplyPart]) -> Reply:
    """Read a streamed reply to its end and put it together (field updates are left out)."""
    sentences: list[str] = []
    listen = Listen()
    end_call = False
    transfer_to = ""
    async for part in parts:
        if isinstance(part, Say):
            sentences.append(part.text)
        elif isinstance(part, Listen):
            listen = part
        elif isinstance(part, EndCall):
            end_call = True
        elif isinstance(part, Transfer):
            transfer_to = part.to
        elif not isinstance(part, FieldUpdate):
            raise TypeError(f"not a reply part: {part!r}")
    if end_call:
        return Reply(text=" ".join(sentences), end_call=True)
    if transfer_to:
        return Reply(text=" ".join(sentences), transfer_to=transfer_to)
    return Reply(text=" ".join(sentences), expect=listen.expect, answer_hint=listen.answer_hint)
