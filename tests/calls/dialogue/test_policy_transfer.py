"""ReceptionistPolicy's warm transfer: when a caller asking for a person is put through, and what follows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from calls.dialogue.phrases import (
    HUMAN_AGAIN,
    HUMAN_FIRST,
    PROMPTS,
    TRANSFER_BUSY,
    TRANSFER_NO_ANSWER,
    TRANSFERRING,
)
from calls.dialogue.policy import AgentSettings, ReceptionistPolicy
from calls.dialogue.reply import Reply, reply_collect
from calls.dialogue.summary import summary
from calls.pipeline.protocols import CallContext, EndCall, ReplyPart, Transcript, Transfer, TransferringPolicy
from calls.providers.minilm import MiniLMEmbedder

TRANSFER_NUMBER = "+15550100199"
WEEKDAYS_9_TO_5 = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
# Monday 7 December 2026 in New York (UTC-5).
MONDAY_10_AM = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
MONDAY_6_PM = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
SUNDAY_NOON = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
ASKS_FOR_A_PERSON = "My boiler stopped working. Can I speak to a person, please?"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _policy(
    embedder: MiniLMEmbedder,
    *,
    at: datetime = MONDAY_10_AM,
    transfer_number: str = TRANSFER_NUMBER,
    can_transfer: bool = True,
) -> ReceptionistPolicy:
    settings = AgentSettings(
        business_name="Alpha Plumbing",
        business_hours=WEEKDAYS_9_TO_5,
        timezone="America/New_York",
        transfer_number=transfer_number,
    )
    context = CallContext(settings=settings, caller_id="+15557654321", can_transfer=can_transfer)
    return ReceptionistPolicy(context, embedder=embedder, clock=lambda: at)


def _parts(stream: AsyncIterator[ReplyPart]) -> list[ReplyPart]:
    async def read() -> list[ReplyPart]:
        return [part async for part in stream]

    return asyncio.run(read())


def _said(stream: AsyncIterator[ReplyPart]) -> Reply:
    return asyncio.run(reply_collect(stream))


def _respond(policy: ReceptionistPolicy, text: str) -> list[ReplyPart]:
    return _parts(policy.respond(Transcript(text=text, confidence=0.95)))


def test_in_business_hours_with_a_number_the_caller_is_told_and_the_reply_ends_with_the_transfer(embedder) -> None:
    policy = _policy(embedder)
    parts = _respond(policy, ASKS_FOR_A_PERSON)
    assert parts[-1] == Transfer(to=TRANSFER_NUMBER)
    assert " ".join(p.text for p in parts if hasattr(p, "text")) == TRANSFERRING
    outcome = policy.outcome()
    # What the caller said is on the ticket before the phone rings; no callback while they are put through.
    assert (outcome.reason, outcome.wants_human, outcome.transfer) == ("My boiler stopped working", True, "dialing")
    assert (outcome.callback_requested, outcome.resolved, outcome.priority) == (False, False, "high")
    assert outcome.fields == {"callback_number": "+15557654321"}
    assert summary(outcome) == (
        "General inquiry: My boiler stopped working. The caller asked to speak to a person and was being put through."
    )


def test_put_through_the_call_ends_for_the_agent_with_no_callback(embedder) -> None:
    policy = _policy(embedder)
    _respond(policy, ASKS_FOR_A_PERSON)
    assert isinstance(policy, TransferringPolicy)
    assert _parts(policy.on_transfer("answered")) == [EndCall()]
    outcome = policy.outcome()
    assert (outcome.transfer, outcome.completed, outcome.callback_requested) == ("answered", True, False)


@pytest.mark.parametrize(("status", "lead"), [("busy", TRANSFER_BUSY), ("no_answer", TRANSFER_NO_ANSWER)])
def test_a_busy_or_unanswered_transfer_brings_the_caller_back_to_take_their_details(embedder, status, lead) -> None:
    policy = _policy(embedder)
    _respond(policy, ASKS_FOR_A_PERSON)
    reply = _said(policy.on_transfer(status))
    # Told, then asked for what the callback needs.
    assert reply.text == f"{lead} {PROMPTS['name'][0]}"
    assert (reply.end_call, reply.transfer_to, reply.expect) == (False, "", "name")
    outcome = policy.outcome()
    assert (outcome.transfer, outcome.callback_requested, outcome.priority) == (status, True, "high")
    # Asked again, there is no second transfer: the callback is queued.
    again = _said(policy.respond(Transcript(text="Please let me talk to a human.", confidence=0.95)))
    assert again.text.startswith(HUMAN_AGAIN)
    assert again.transfer_to == ""


@pytest.mark.parametrize("at", [MONDAY_6_PM, SUNDAY_NOON], ids=["after-closing", "closed-day"])
def test_outside_business_hours_no_one_is_available_and_a_callback_is_promised(embedder, at) -> None:
    policy = _policy(embedder, at=at)
    reply = _said(policy.respond(Transcript(text=ASKS_FOR_A_PERSON, confidence=0.95)))
    assert reply.text.startswith(HUMAN_FIRST)
    assert reply.transfer_to == ""
    outcome = policy.outcome()
    assert (outcome.transfer, outcome.wants_human, outcome.callback_requested) == ("", True, True)


def test_without_a_transfer_number_a_callback_is_promised(embedder) -> None:
    policy = _policy(embedder, transfer_number="")
    reply = _said(policy.respond(Transcript(text=ASKS_FOR_A_PERSON, confidence=0.95)))
    assert reply.text.startswith(HUMAN_FIRST)
    assert (reply.transfer_to, policy.outcome().transfer, policy.outcome().callback_requested) == ("", "", True)


def test_a_line_that_cannot_transfer_promises_a_callback(embedder) -> None:
    # The browser test call has no phone line to hand over.
    policy = _policy(embedder, can_transfer=False)
    reply = _said(policy.respond(Transcript(text=ASKS_FOR_A_PERSON, confidence=0.95)))
    assert reply.text.startswith(HUMAN_FIRST)
    assert reply.transfer_to == ""


def test_business_hours_in_the_business_time_zone_decide(embedder) -> None:
    # 16:59 in New York is open; 17:00 is closed.
    open_at = datetime(2026, 12, 7, 21, 59, tzinfo=UTC)
    closed_at = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    assert _policy(embedder, at=open_at).transfer_available() is True
    assert _policy(embedder, at=closed_at).transfer_available() is False
