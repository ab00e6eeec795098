"""Turn by turn: a scenario's caller and the tenant's receptionist, without a phone line or real time.

The real-time simulator (``SimulatedCaller``) dials the product and lasts as
long as the call would. To change the dialogue and see what it does to a
few dozen calls in a minute, ``converse`` plays the same caller rules
(``CallerBrain``) against the same policy the product builds, one turn at a
time:

* ``TextEar``: the receptionist gets the caller's words as written, so what
  is measured is the dialogue alone;
* ``SpeechEar``: each caller line is synthesized with the caller's voice,
  passed through the line impairments and transcribed by the product's STT
  with the hints the policy asked for, as in a call but with no pacing.

What this leaves out (turn-taking, barge-in timing, the detector splitting
one long answer in two) is what the real-time benchmark is for; the
verdicts use the same checks (``voicedesk.simulator.expect``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from calls.audio import CALL_RATE, MULAW_RATE, mulaw_decode, resample
from calls.dialogue.faq import FaqIndex
from calls.dialogue.summary import summary
from calls.models import default_categories, default_collect
from calls.pipeline.factory import shared_embedder
from calls.pipeline.protocols import (
    AgentSettings,
    CallContext,
    DialoguePolicy,
    EndCall,
    FaqEntry,
    FieldUpdate,
    Listen,
    ReplyPart,
    Say,
    SpeechToText,
    SttHints,
    Transcript,
)
from calls.providers.registry import POLICY_PROVIDERS
from voicedesk.simulator.caller import CallerBrain, Decision, Line, SpeechModels
from voicedesk.simulator.expect import CallVerdict, StoredCall, StoredTicket, call_verdict
from voicedesk.simulator.scenario import Scenario, TenantSpec

# Turns after which a conversation is stopped as a loop (a real call has
# the caller's four-minute patience instead).
MAX_TURNS = 60
# Words of the greeting a caller who talks over it has heard.
GREETING_HEARD_WORDS = 3
# Silence around a line, as the product's detector keeps it.
_PAD = np.zeros(CALL_RATE // 5, dtype=np.int16)


def agent_settings_for(spec: TenantSpec) -> AgentSettings:
    """The receptionist settings a scenario's business gets when provisioned (``provision_tenant``)."""
    return AgentSettings(
        business_name=spec.name,
        greeting=spec.greeting,
        collect=list(spec.collect) if spec.collect is not None else default_collect(),
        categories=list(spec.categories) if spec.categories is not None else default_categories(),
        urgent_keywords=list(spec.urgent_keywords or ()),
        faqs=[FaqEntry(id=str(i), question=faq.q, answer=faq.a) for i, faq in enumerate(spec.faqs, start=1)],
    )


class Ear(Protocol):
    """How the receptionist hears one caller line."""

    async def hear(self, line: Line, hints: SttHints) -> Transcript:
        """The transcript the policy gets for ``line``."""
        ...


class TextEar:
    """The caller's words exactly as written, heard with full confidence."""

    async def hear(self, line: Line, hints: SttHints) -> Transcript:
        return Transcript(text=line.text, confidence=1.0, words=tuple(line.text.split()))


@dataclass(slots=True)
class SpeechEar:
    """The caller's voice over the (impaired) line, through the product's STT."""

    models: SpeechModels
    stt: SpeechToText

    async def hear(self, line: Line, hints: SttHints) -> Transcript:
        mulaw = await self.models.voice(line.spoken)
        pcm = await asyncio.to_thread(resample, mulaw_decode(mulaw), MULAW_RATE, CALL_RATE)
        padded = np.concatenate([_PAD, pcm, _PAD])
        return await self.stt.transcribe(
            await asyncio.to_thread(resample, padded, CALL_RATE, self.stt.sample_rate), hints=hints
        )


@dataclass(slots=True)
class TurnLog:
    """One utterance of a turn-level conversation."""

    speaker: str
    text: str
    heard: str = ""  # for the caller: what the receptionist got


@dataclass(slots=True)
class TurnConversation:
    """A finished turn-level call: what was said, the outcome as stored, and the verdict."""

    scenario: Scenario
    verdict: CallVerdict
    log: list[TurnLog] = field(default_factory=list)
    captured: dict[str, Any] = field(default_factory=dict)
    ended_by: str = ""

    def format(self) -> str:
        """The conversation as readable lines."""
        lines = []
        for entry in self.log:
            heard = f"   [heard: {entry.heard}]" if entry.heard and entry.heard != entry.text else ""
            lines.append(f"{entry.speaker:>6}: {entry.text}{heard}")
        return "\n".join(lines)


def stored_ticket(captured: dict[str, Any]) -> StoredTicket:
    """The ticket ``tickets.services.ticket_create_from_call`` files for ``captured``."""
    fields: dict[str, str] = captured.get("fields", {})
    return StoredTicket(
        number="",
        caller_name=fields.get("name", ""),
        callback_number=fields.get("callback_number", ""),
        category=captured.get("category") or "general",
        priority=captured.get("priority") or "normal",
        status="resolved" if captured.get("resolved") else "new",
        summary=captured.get("summary") or captured.get("reason") or "",
        faq_answered=tuple(captured.get("faq_answered", [])),
        unanswered_questions=len(captured.get("unanswered_questions", [])),
        callback_requested=bool(captured.get("callback_requested")),
    )


async def _reply(parts: AsyncIterator[ReplyPart]) -> tuple[str, Listen | None, bool]:
    said: list[str] = []
    listen: Listen | None = None
    ends = False
    async for part in parts:
        if isinstance(part, Say):
            said.append(part.text)
        elif isinstance(part, Listen):
            listen = part
        elif isinstance(part, EndCall):
            ends = True
        elif isinstance(part, FieldUpdate):
            pass
    return " ".join(t.strip() for t in said if t.strip()), listen, ends


PolicyFactory = Callable[[Scenario], DialoguePolicy]


def policy_for(scenario: Scenario) -> DialoguePolicy:
    """The receptionist the product builds for the scenario's business and caller."""
    settings = agent_settings_for(scenario.tenant)
    embedder = shared_embedder()
    return POLICY_PROVIDERS.build(
        "receptionist",
        # As on the phone line the real-time runs use, where keys may be pressed.
        context=CallContext(settings=settings, caller_id=scenario.caller.phone, keypad=True),
        embedder=embedder,
        faq_index=FaqIndex(settings.faqs, embedder),
    )


async def converse(scenario: Scenario, ear: Ear, *, policy: DialoguePolicy | None = None) -> TurnConversation:
    """Play ``scenario``'s caller against a receptionist, turn by turn, and judge the outcome."""
    if policy is None:
        policy = await asyncio.to_thread(policy_for, scenario)
    settings = agent_settings_for(scenario.tenant)
    base_hints = SttHints(business_name=settings.business_name, vocabulary=tuple(settings.recognition_vocabulary()))
    brain = CallerBrain(scenario.caller)
    result = TurnConversation(scenario=scenario, verdict=CallVerdict(label=scenario.id, asked=()))
    agent_text, listen, ends = await _reply(policy.greet())
    result.log.append(TurnLog("agent", agent_text))
    early = brain.on_agent_started()
    pending: Decision | None = None
    if early is not None and early.line is not None:
        # Talked over the greeting: the caller heard its first words only.
        heard = " ".join(agent_text.split()[:GREETING_HEARD_WORDS])
        policy.on_interrupted(said=agent_text, heard=heard)
        brain.on_talked_over()
        pending = early
    for _ in range(MAX_TURNS):
        if ends and pending is None:
            decision = brain.on_agent_turn(agent_text)
            if decision.line is not None:
                result.log.append(TurnLog("caller", decision.line.text))
            result.ended_by = "agent"
            break
        decision = pending or brain.on_agent_turn(agent_text)
        pending = None
        if decision.after_s >= 5.0:
            # The caller is quiet longer than the product waits: a silence prompt first.
            agent_text, listen, ends = await _reply(policy.on_silence())
            result.log.append(TurnLog("agent", agent_text))
            if ends:
                result.ended_by = "agent"
                break
        if decision.line is None:
            if decision.hang_up:
                result.ended_by = "caller"
                break
            agent_text, listen, ends = await _reply(policy.on_silence())
            result.log.append(TurnLog("agent", agent_text))
            continue
        hints = base_hints
        if listen is not None:
            hints = SttHints(
                business_name=base_hints.business_name,
                vocabulary=base_hints.vocabulary,
                expect=listen.expect,
                answer_hint=listen.answer_hint,
            )
        transcript = await ear.hear(decision.line, hints)
        result.log.append(TurnLog("caller", decision.line.text, heard=transcript.text))
        # A caller who hangs up after speaking was still heard: the product
        # finishes the last turn before the call ends.
        agent_text, listen, ends = await _reply(policy.respond(transcript))
        if decision.hang_up:
            result.ended_by = "caller"
            break
        result.log.append(TurnLog("agent", agent_text))
    else:
        result.ended_by = "loop"
    outcome = policy.outcome()
    captured = asdict(outcome)
    captured["summary"] = summary(outcome)
    result.captured = captured
    stored = StoredCall(
        call_id=0,
        status="completed",
        end_reason=result.ended_by,
        captured=captured,
        ticket=stored_ticket(captured),
    )
    problem = "the conversation looped" if result.ended_by == "loop" else None
    result.verdict = call_verdict(scenario.id, scenario.expect, stored, error=problem)
    return result
