"""The LLM receptionist: a chat model with tools, held to the deterministic receptionist's rules.

One ``LlmReceptionistPolicy`` per call, on the official ``openai`` SDK
(chat completions, streamed, with tools). OpenAI, Ollama and any
OpenAI-compatible server are the same adapter with another base URL and
model name.

The deterministic ``ReceptionistPolicy`` of the same call is the referee:
it holds the call's state and makes the outcome (so the ticket comes out
exactly as it would without a model), it answers the greeting and silences,
it reads details back and takes the spelling, and it answers any turn the
model cannot: no first token within ``first_token_s`` (a short filler is
said first), a stream that fails or stalls, tool arguments still invalid
after two errors returned to the model. A failed stream (an error status,
a dropped connection, a wrong key) leaves the rest of the call to it.

Nothing the model says is stored or spoken unchecked. Its tool calls are
checked against what the caller actually said with the deterministic
validators (names, numbers, emails, addresses, times) before anything is
stored; FAQ answers are spoken from the cited entries, never from the
model's words; a sentence of its own that states a fact (a number, a time,
a day, a price) is not spoken, and the caller's question is logged for a
follow-up instead. Priority comes from the business's urgent keywords in
the caller's words, as always. The caller's words go to the model as
marked data, and the prompts are template files in ``prompts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import structlog

from calls.dialogue.answers import heard_number
from calls.dialogue.categories import CategoryClassifier
from calls.dialogue.extract import (
    content_words,
    extract_address,
    extract_email,
    extract_name,
    extract_phone,
    extract_preferred_time,
    is_goodbye,
    matches_urgent,
    reason_text,
    split_sentences,
    wants_human,
)
from calls.dialogue.faq import FaqIndex, is_question, split_questions
from calls.dialogue.phrases import HOLD_ON, NOTE_URGENT, UNANSWERED
from calls.dialogue.policy import ReceptionistPolicy
from calls.dialogue.reply import Reply
from calls.dialogue.state import Stage
from calls.pipeline.protocols import (
    AgentSettings,
    CallContext,
    CallOutcome,
    Expectation,
    FaqEntry,
    FieldUpdate,
    HistoryTurn,
    Listen,
    ReplyPart,
    Say,
    TextEmbedder,
    Transcript,
    Transfer,
    TransferStatus,
)

logger = structlog.get_logger(__name__)

PROMPTS = Path(__file__).with_name("prompts")
# No first token within this long: a filler, and the deterministic policy answers the turn.
FIRST_TOKEN_S = 1.5
# Silence inside a stream that has started, before the turn is given up.
STALL_S = 4.0
# Tool errors returned to the model per turn; one more invalid call and the turn is handed over.
MAX_TOOL_ERRORS = 2
# Model requests per turn (each tool round is one).
MAX_ROUNDS = 4
# Model turns in a row that used no tool (stored nothing, answered nothing): the next turn is the
# referee's, so a model that keeps asking the caller to say it again cannot hold the call in a loop.
MAX_IDLE_TURNS = 2
# Characters of the model's own text per turn: an answer that does not end is cut here.
MAX_REPLY_CHARS = 500
# FAQ entries listed in the system prompt; a longer FAQ is retrieved per turn, this many entries each.
FAQ_IN_PROMPT = 25
FAQ_RETRIEVED = 6
# Turns sent verbatim; older ones go in as a summary.
RECENT_TURNS = 12
# How close a cited FAQ entry must be to what the caller asked (MiniLM cosine, among the best three).
FAQ_CITE_MIN_SCORE = 0.3
FAQ_CITE_RANK = 3
# Deterministic stages whose answer the referee takes: the caller is answering its question.
REFEREE_STAGES = frozenset({Stage.SPELL_NAME, Stage.CONFIRM, Stage.FIX, Stage.CALLER_ID, Stage.CLOSED})

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ABBREVIATION = re.compile(r"\b(?:mr|mrs|ms|dr|st|no|approx|e\.g|i\.e)\.$", re.IGNORECASE)
# What makes a sentence of the model's own a statement of fact it must not make up.
_FACT = re.compile(
    r"\d|[$€£%@]|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|hundred|thousand|dollars?|cents?|euros?|pounds?|percent|a\.m|p\.m|noon|midnight|o'clock|"
    r"mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|saturdays?|sundays?|weekends?|weekdays?|daily|"
    r"january|february|march|april|june|july|august|september|october|november|december|"
    r"open|opens|closed|closes|price|prices|cost|costs|fee|fees|charge|charges|free|discount|warranty|"
    r"guarantee\w*|licensed|insured|cover|covers|area|areas|priorit\w*|urgent\w*|escalat\w*)\b"
    # Other people's calls: the model knows none, so anything it says of them is made up.
    r"|\b(?:other|previous|last|another|earlier)\s+(?:callers?|customers?|clients?|tickets?|calls?)\b"
    # A bare yes or no to the caller's question is an answer, and answers come from the FAQ.
    r"|^\W*(?:yes|yeah|yep|yup|no|nope|absolutely|definitely|certainly|of course)\b(?!\s+problem)",
    re.IGNORECASE,
)
_EXPECT_WORDS: tuple[tuple[Expectation, re.Pattern[str]], ...] = (
    ("spelling", re.compile(r"\bspell\b", re.IGNORECASE)),
    ("digits", re.compile(r"\b(?:number|phone)\b", re.IGNORECASE)),
    ("email", re.compile(r"\be-?mail\b", re.IGNORECASE)),
    ("address", re.compile(r"\baddress\b", re.IGNORECASE)),
    ("time", re.compile(r"\b(?:time|day|when)\b", re.IGNORECASE)),
    ("name", re.compile(r"\bname\b", re.IGNORECASE)),
)

_EXPECT_FIELDS: dict[str, str] = {
    "name": "name",
    "digits": "callback_number",
    "email": "email",
    "address": "address",
    "time": "preferred_time",
}

Message = dict[str, Any]


@functools.cache
def _template(name: str) -> Template:
    return Template((PROMPTS / name).read_text())


def tools() -> list[dict[str, Any]]:
    """The tools offered to the model (``prompts/tools.json``)."""
    loaded: list[dict[str, Any]] = json.loads((PROMPTS / "tools.json").read_text())
    return loaded


TOOL_NAMES = frozenset(t["function"]["name"] for t in tools())


def _listing(items: list[str], empty: str = "none") -> str:
    return ", ".join(items) if items else empty


def _hours(settings: AgentSettings) -> str:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    said = [f"{d} {'-'.join(settings.business_hours[d])}" for d in days if settings.business_hours.get(d)]
    return "; ".join(said) if said else "not given"


def _faq_lines(entries: list[FaqEntry]) -> str:
    return "\n".join(f"- {e.id}: {e.question} -> {e.answer}" for e in entries)


def system_prompt(settings: AgentSettings) -> str:
    """The tenant's system prompt, from ``prompts/system.txt``.

    A long FAQ is not listed: the entries closest to each caller turn go
    with that turn (``faq_retrieved.txt``), found by the FAQ index.
    """
    if len(settings.faqs) > FAQ_IN_PROMPT:
        faq = "(too many to list: the entries closest to each caller turn are given with it)"
    else:
        faq = _faq_lines(settings.faqs) or "(none)"
    return _template("system.txt").substitute(
        business_name=settings.business_name,
        persona=f"Persona: {settings.persona.strip()}" if settings.persona.strip() else "",
        fields=_listing([f.replace("_", " ") for f in settings.collect]),
        categories=_listing(settings.categories),
        urgent_keywords=_listing(settings.urgent_keywords),
        timezone=settings.timezone,
        business_hours=_hours(settings),
        faq=faq,
    )


def caller_message(text: str) -> str:
    """The caller's words as the model gets them: marked as speech, markup taken out."""
    return _template("caller_turn.txt").substitute(text=text.replace("<", " ").replace(">", " ")).strip()


def sentence_complete(text: str) -> bool:
    """Whether streamed ``text`` ends a sentence (not an abbreviation or a bare mark)."""
    stripped = text.rstrip()
    return (
        stripped.endswith((".", "!", "?"))
        and len(stripped.split()) >= 2
        and not _ABBREVIATION.search(stripped)
        and not re.search(r"\d\.$", stripped)
    )


def complete_sentences(text: str) -> tuple[list[str], str]:
    """Streamed ``text`` as its complete sentences and the rest still coming."""
    pieces = _SENTENCE_END.split(text)
    rest = pieces.pop()
    done = [p.strip() for p in pieces if p.strip()]
    if rest.strip() and sentence_complete(rest):
        done.append(rest.strip())
        rest = ""
    return done, rest


def states_a_fact(sentence: str) -> bool:
    """A sentence of the model's own that states something only the FAQ may say."""
    return bool(_FACT.search(sentence))


def _expectation(text: str) -> Expectation:
    """What an agent line asks for, from its last question."""
    questions = [s for s in split_sentences(text) if s.endswith("?")]
    last = questions[-1] if questions else ""
    return next((expect for expect, words in _EXPECT_WORDS if words.search(last)), "free")


def _openai_client_class() -> Any:
    # Imported with the first LLM policy, not with the dialogue package: most calls never need it.
    from openai import AsyncOpenAI

    return AsyncOpenAI


class HandOverError(Exception):
    """The model cannot answer this turn; the deterministic policy will."""

    def __init__(self, why: str, *, for_good: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.for_good = for_good  # the rest of the call too (the server failed, not the model)


class ToolCallError(ValueError):
    """A tool call that breaks a rule; its message goes back to the model."""


@dataclass(slots=True)
class _Turn:
    """One caller turn on its way through the model."""

    transcript: Transcript
    messages: list[Message] = field(default_factory=list)  # this turn's tool rounds
    said: list[str] = field(default_factory=list)
    chars: int = 0
    tool_errors: int = 0
    tools_run: int = 0  # tool calls that passed the checks
    answered: bool = False  # a FAQ answer or an unanswered-question note was said
    withheld: bool = False  # a sentence of this round stated a fact and was not said
    held: list[str] = field(default_factory=list)  # sentences after it, until the round's tools are known
    in_history: bool = False  # what was said so far is the call history's last agent utterance
    faq: list[FaqEntry] = field(default_factory=list)  # entries retrieved for this turn (a long FAQ)
    ends: bool = False
    procedure: Reply | None = None
    transfer_to: str = ""  # the referee decided to put the caller through to a person

    @property
    def text(self) -> str:
        return self.transcript.text.strip()


@dataclass(slots=True)
class TokenUsage:
    """Tokens the model used in this call, as the server counted them."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0


ClientFactory = Callable[[], Any]


class LlmReceptionistPolicy:
    """``DialoguePolicy`` on an OpenAI-compatible chat model, refereed by ``ReceptionistPolicy``.

    ``base_url`` empty is OpenAI itself; Ollama is ``http://localhost:11434/v1``.
    ``embedder``, ``faq_index`` and ``categorizer`` are the referee's (shared per tenant).
    """

    name = "openai"
    # It says its own filler when the model is slow; the session adds none.
    speaks_filler = True

    def __init__(
        self,
        context: CallContext,
        *,
        model: str,
        api_key: str,
        base_url: str = "",
        first_token_s: float = FIRST_TOKEN_S,
        stall_s: float = STALL_S,
        max_idle_turns: int = MAX_IDLE_TURNS,
        temperature: float = 0.2,
        embedder: TextEmbedder | None = None,
        faq_index: FaqIndex | None = None,
        categorizer: CategoryClassifier | None = None,
    ) -> None:
        self.context = context
        self.referee = ReceptionistPolicy(context, embedder=embedder, faq_index=faq_index, categorizer=categorizer)
        self.model = model
        self.first_token_s = first_token_s
        self.stall_s = stall_s
        self.max_idle_turns = max_idle_turns
        self.temperature = temperature
        self.usage = TokenUsage()
        self.handovers: list[str] = []  # why each turn the model did not answer was handed over
        self._api_key = api_key
        self.base_url = base_url
        self._system = system_prompt(context.settings)
        self._tools = tools()
        self._entries = {e.id: e for e in context.settings.faqs}
        self._model_failed = False
        self._idle_turns = 0
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        # The SDK takes over a second to import: here (the call is being set up, off the event
        # loop), not in the first turn, where it would eat the first-token deadline.
        self._sdk = _openai_client_class()

    # ------------------------------------------------------------------
    # DialoguePolicy
    # ------------------------------------------------------------------

    async def greet(self) -> AsyncIterator[ReplyPart]:
        """The tenant's greeting, as the deterministic receptionist says it."""
        async for part in self.referee.greet():
            yield part

    async def on_silence(self) -> AsyncIterator[ReplyPart]:
        """Silences are the deterministic receptionist's: the pending question again, then goodbye."""
        async for part in self.referee.on_silence():
            yield part

    def on_interrupted(self, *, said: str, heard: str) -> None:
        """The referee keeps what the caller heard (the model sees the history as heard)."""
        self.referee.on_interrupted(said=said, heard=heard)

    async def on_transfer(self, status: TransferStatus) -> AsyncIterator[ReplyPart]:
        """How a transfer went is the referee's to answer: put through, or back with a callback queued."""
        async for part in self.referee.on_transfer(status):
            yield part

    def outcome(self) -> CallOutcome:
        """The referee's outcome: the ticket comes out as without a model."""
        return self.referee.outcome()

    async def respond(self, transcript: Transcript) -> AsyncIterator[ReplyPart]:
        """One caller turn through the model; the referee answers it when the model cannot."""
        self.context.turn_add("caller", transcript.text.strip())
        if self._idle_turns >= self.max_idle_turns:
            self._idle_turns = 0
            self.handovers.append("no_progress")
            logger.warning("llm_turn_handed_over", why="no_progress", for_good=False, model=self.model)
            async for part in self.referee.decide(transcript):
                yield part
            return
        if self._model_failed or self.referee.state.stage in REFEREE_STAGES:
            async for part in self.referee.decide(transcript):
                yield part
            return
        saved = (copy.deepcopy(self.referee.state), dict(self.context.fields))
        turn = _Turn(transcript)
        try:
            async for part in self._model_turn(turn):
                yield part
            self._idle_turns = 0 if turn.tools_run else self._idle_turns + 1
        except HandOverError as handover:
            # Nothing the model did in this turn is kept: the referee takes the whole utterance.
            self.referee.state, fields = saved
            self.context.fields.clear()
            self.context.fields.update(fields)
            self._model_failed = self._model_failed or handover.for_good
            self.handovers.append(handover.why)
            logger.warning("llm_turn_handed_over", why=handover.why, for_good=handover.for_good, model=self.model)
            if handover.why == "slow_first_token" and not turn.said:
                yield Say(HOLD_ON)
            async for part in self.referee.decide(transcript):
                yield part

    def llm_usage(self) -> dict[str, float]:
        """Tokens this call used, by model and kind (``"<model>:in"``, ``":cached"``, ``":out"``), for billing."""
        usage = {
            f"{self.model}:in": self.usage.prompt - self.usage.cached,
            f"{self.model}:cached": self.usage.cached,
            f"{self.model}:out": self.usage.completion,
        }
        return {kind: float(tokens) for kind, tokens in usage.items() if tokens}

    # ------------------------------------------------------------------
    # The model's turn
    # ------------------------------------------------------------------

    async def _model_turn(self, turn: _Turn) -> AsyncIterator[ReplyPart]:
        if len(self._entries) > FAQ_IN_PROMPT:
            turn.faq = await asyncio.to_thread(self._faq_closest, turn.text)
        before = dict(self.context.fields)
        for _ in range(MAX_ROUNDS):
            calls: dict[int, dict[str, str]] = {}
            text = ""
            pending = ""
            async with contextlib.aclosing(self._stream(turn)) as stream:
                async for kind, value in stream:
                    if kind == "tool":
                        index, call_id, name, arguments = value
                        call = calls.setdefault(int(index), {"id": "", "name": "", "arguments": ""})
                        call["id"] = call["id"] or call_id
                        call["name"] = call["name"] or name
                        call["arguments"] += arguments
                        continue
                    text += value
                    turn.chars += len(value)
                    sentences, pending = complete_sentences(pending + value)
                    for sentence in sentences:
                        for part in self._own_sentence(sentence, turn):
                            yield part
                    if turn.chars > MAX_REPLY_CHARS:
                        pending = ""
                        logger.warning("llm_reply_cut", chars=turn.chars)
                        break
            for sentence in _SENTENCE_END.split(pending.strip()):
                if sentence:
                    for part in self._own_sentence(sentence, turn):
                        yield part
            if not calls:
                for part in self._settle(turn):
                    yield part
                break
            turn.messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for _, c in sorted(calls.items())
                    ],
                }
            )
            failed = False
            for _, call in sorted(calls.items()):
                try:
                    result, lines = await self._tool(call["name"], call["arguments"], turn)
                    turn.tools_run += 1
                except ToolCallError as error:
                    failed = True
                    result = {"ok": False, "error": str(error)}
                    lines = []
                    logger.info("llm_tool_rejected", tool=call["name"][:40], error=str(error)[:120])
                for name, value in self.context.fields.items():
                    if before.get(name) != value:
                        yield FieldUpdate(name=name, value=value)
                        before[name] = value
                for line in lines:
                    yield self._spoken(turn, line)
                turn.messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
            for part in self._settle(turn):
                yield part
            if failed:
                turn.tool_errors += 1
                if turn.tool_errors > MAX_TOOL_ERRORS:
                    raise HandOverError("invalid_tool_arguments")
                continue
            if turn.transfer_to:
                break
            if not turn.ends:
                # Details just stored may need reading back or spelling: asked now, in the referee's words.
                turn.procedure = self.referee.procedure_due()
            if turn.ends or turn.procedure is not None:
                break
        for part in self._finish(turn):
            yield part

    def _finish(self, turn: _Turn) -> Iterator[ReplyPart]:
        """End the turn with the referee's read-back, spelling or goodbye when one is due, or the transfer."""
        if turn.transfer_to:
            yield Transfer(to=turn.transfer_to)
            return
        closing = self.referee.goodbye() if turn.ends else turn.procedure or self.referee.procedure_due()
        if closing is None and not turn.said:
            raise HandOverError("nothing_to_say")
        if closing is not None:
            self._spoken(turn, closing.text)
            yield from closing.parts()
            return
        expect = _expectation(turn.said[-1])
        self._referee_follows(" ".join(turn.said), expect)
        yield Listen(expect=expect)

    def _referee_follows(self, said: str, expect: Expectation) -> None:
        """Keep the referee's stage in step with what the model asked, should it take the next turn."""
        state = self.referee.state
        state.last = Reply(text=said, expect=expect)
        questions = [s for s in split_sentences(said) if s.endswith("?")]
        if questions:
            state.question = questions[-1]
            state.question_expect = expect
            state.question_heard = True
            state.question_counted = False
        asked = _EXPECT_FIELDS.get(expect, "")
        if asked and asked in self.referee.missing_fields():
            state.stage = Stage.FIELD
            state.asking = asked
        else:
            engaged = bool(state.reasons or state.faq_answered or state.unanswered or state.wants_human)
            state.stage = Stage.MORE if engaged else Stage.OPEN

    def _spoken(self, turn: _Turn, text: str) -> Say:
        """``text`` is said now: it joins this turn's agent utterance in the history at once, so a
        caller who cuts in mid-stream is known to have heard (part of) this reply, not the last one."""
        turn.said.append(text)
        utterance = HistoryTurn(speaker="agent", text=" ".join(turn.said))
        if turn.in_history and self.context.history and self.context.history[-1].speaker == "agent":
            self.context.history[-1] = utterance
        else:
            self.context.history.append(utterance)
            turn.in_history = True
        return Say(text)

    def _own_sentence(self, sentence: str, turn: _Turn) -> Iterator[ReplyPart]:
        """A sentence in the model's own words: spoken unless it states a fact.

        In place of a made-up answer to the caller's question, the question
        is logged for a follow-up and the caller is told so.
        """
        if not states_a_fact(sentence):
            if turn.withheld:
                turn.held.append(sentence)  # said after the note that replaces the withheld answer
                return
            yield self._spoken(turn, sentence)
            return
        logger.info("llm_sentence_withheld", words=len(sentence.split()))
        turn.withheld = True

    def _settle(self, turn: _Turn) -> Iterator[ReplyPart]:
        """After a round's tools: a withheld answer no tool gave is logged for a follow-up; held sentences follow."""
        if turn.withheld and not turn.answered and is_question(turn.text):
            for question in split_questions(turn.text):
                if is_question(question):
                    self.referee.question_log(question.strip())
            turn.answered = True
            yield self._spoken(turn, UNANSWERED)
        for sentence in turn.held:
            yield self._spoken(turn, sentence)
        turn.held.clear()
        turn.withheld = False

    async def _stream(self, turn: _Turn) -> AsyncGenerator[tuple[str, Any], None]:
        """One model request, streamed: ("text", piece) and ("tool", (index, id, name, arguments piece)).

        The request runs in a task of its own (one task owns the HTTP
        stream); this side waits on its queue with the first-token and
        stall deadlines.
        """
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._client_for_loop()
        pump = asyncio.get_running_loop().create_task(self._pump(self._messages(turn), queue), name="llm-stream")
        started = False
        try:
            while True:
                try:
                    kind, value = await asyncio.wait_for(
                        queue.get(), timeout=self.stall_s if started else self.first_token_s
                    )
                except TimeoutError:
                    raise HandOverError("stalled" if started else "slow_first_token") from None
                if kind == "error":
                    raise HandOverError(f"model_error:{type(value).__name__}", for_good=True)
                if kind == "end":
                    return
                started = True
                yield kind, value
        finally:
            pump.cancel()

    async def _pump(self, messages: list[Message], queue: asyncio.Queue[tuple[str, Any]]) -> None:
        try:
            stream = await self._client_for_loop().chat.completions.create(
                model=self.model,
                messages=messages,
                tools=self._tools,
                stream=True,
                stream_options={"include_usage": True},
                temperature=self.temperature,
            )
            finished = False
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        self._count(chunk.usage)
                    for choice in chunk.choices:
                        finished = finished or choice.finish_reason is not None
                        delta = choice.delta
                        if delta.content:
                            queue.put_nowait(("text", delta.content))
                        for call in delta.tool_calls or ():
                            function = call.function
                            queue.put_nowait(
                                (
                                    "tool",
                                    (
                                        call.index,
                                        call.id or "",
                                        (function.name if function else None) or "",
                                        (function.arguments if function else None) or "",
                                    ),
                                )
                            )
            finally:
                await stream.close()
            # A stream cut off before its finish reason (a dropped connection) is a failure, not an answer.
            queue.put_nowait(("end", None) if finished else ("error", ConnectionError("stream ended unfinished")))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any SDK or transport error: the server failed, not the caller
            queue.put_nowait(("error", exc))

    def _count(self, usage: Any) -> None:
        self.usage.prompt += usage.prompt_tokens or 0
        self.usage.completion += usage.completion_tokens or 0
        details = getattr(usage, "prompt_tokens_details", None)
        self.usage.cached += (getattr(details, "cached_tokens", 0) or 0) if details else 0

    def _client_for_loop(self) -> Any:
        # One client per event loop: its connection pool belongs to the loop that opened it.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = self._sdk(
                api_key=self._api_key, base_url=self.base_url or None, max_retries=0, timeout=self.stall_s * 4
            )
            self._client_loop = loop
        return self._client

    # ------------------------------------------------------------------
    # What the model is sent
    # ------------------------------------------------------------------

    def _messages(self, turn: _Turn) -> list[Message]:
        history = list(self.context.history)
        recent = history[-RECENT_TURNS:]
        older = history[: len(history) - len(recent)]
        messages: list[Message] = [
            {"role": "system", "content": self._system},
            {"role": "system", "content": self._state_note(older, turn)},
        ]
        for utterance in recent:
            if utterance.speaker == "caller":
                messages.append({"role": "user", "content": caller_message(utterance.text)})
            else:
                messages.append({"role": "assistant", "content": utterance.text})
        return [*messages, *turn.messages]

    def _faq_closest(self, text: str) -> list[FaqEntry]:
        ranked = [
            m
            for question in [text, *split_questions(text)]
            for m in self.referee.faq_index.ranked(question, FAQ_RETRIEVED)
        ]
        ranked.sort(key=lambda m: -m.score)
        return list({m.entry.id: m.entry for m in ranked}.values())[:FAQ_RETRIEVED]

    def _state_note(self, older: list[Any], turn: _Turn) -> str:
        state = self.referee.state
        earlier = ""
        if older:
            said = [" ".join(u.text.split()[:12]) for u in older if u.speaker == "caller"]
            earlier = _template("earlier_turns.txt").substitute(
                count=len(older), caller_said=" / ".join(said) or "nothing"
            )
        note = _template("call_state.txt").substitute(
            recorded=_listing([f"{k}: {v}" for k, v in self.context.fields.items()]),
            needed=_listing([f.replace("_", " ") for f in self.referee.missing_fields()]),
            reasons=_listing(state.reasons),
            answered=_listing(state.faq_answered),
            unanswered=_listing(state.unanswered),
            earlier=earlier,
        )
        if turn.faq:
            note = f"{note.strip()}\n{_template('faq_retrieved.txt').substitute(entries=_faq_lines(turn.faq))}"
        return note.strip()

    # ------------------------------------------------------------------
    # Tools, each checked against the caller's words before anything changes
    # ------------------------------------------------------------------

    def _caller_lines(self) -> list[str]:
        return [u.text for u in self.context.history if u.speaker == "caller"]

    async def _tool(self, name: str, arguments: str, turn: _Turn) -> tuple[dict[str, Any], list[str]]:
        """Run one tool call: (the result the model gets, the lines to say)."""
        if name not in TOOL_NAMES:
            raise ToolCallError(f"there is no tool named {name[:40]!r}")
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            raise ToolCallError("the arguments are not valid JSON") from None
        if not isinstance(args, dict):
            raise ToolCallError("the arguments must be a JSON object")
        for key, value in args.items():
            if key != "entry_ids" and not isinstance(value, str):
                raise ToolCallError(f"{key} must be a string")
        match name:
            case "record_caller_details":
                return self._record_details(args, turn)
            case "answer_from_faq":
                return await self._answer_from_faq(args, turn)
            case "log_unanswered_question":
                return self._log_unanswered(args, turn)
            case "request_callback":
                reason = str(args.get("reason") or "")
                if reason:
                    self.referee.reason_add(self._reason_line(reason))
                if not self.referee.state.reasons:
                    raise ToolCallError("give the reason for the call back, in the caller's words")
                return {"ok": True, "still_needed": self.referee.missing_fields()}, []
            case "mark_urgent":
                urgent = [
                    line for line in self._caller_lines() if matches_urgent(line, self.context.settings.urgent_keywords)
                ]
                if not urgent:
                    raise ToolCallError("nothing the caller said matches one of the business's urgent keywords")
                for line in urgent:
                    self.referee.reason_add(self._reason_of(line))
                return {"ok": True}, [NOTE_URGENT]
            case "transfer_to_human":
                if not any(wants_human(line) for line in self._caller_lines()):
                    raise ToolCallError("the caller did not ask to speak to a person")
                # The referee decides: put through now (business hours, a number) or a callback.
                note = self.referee.human_request()
                turn.transfer_to = self.referee.transfer_take()
                if turn.transfer_to:
                    return {"ok": True, "note": "the caller is being put through to a person now"}, [note]
                return {"ok": True, "note": "the caller has been told someone will call back"}, [note]
            case _:  # end_call
                if not is_goodbye(turn.text):
                    raise ToolCallError("the caller has not said they are done")
                turn.ends = True
                return {"ok": True}, []

    def _record_details(self, args: dict[str, Any], turn: _Turn) -> tuple[dict[str, Any], list[str]]:
        unknown = set(args) - {"name", "callback_number", "email", "address", "preferred_time", "reason"}
        if unknown:
            raise ToolCallError(f"unknown details: {', '.join(sorted(unknown))}")
        wanted = self.referee.fields_wanted()
        reason = self._reason_line(str(args["reason"])) if args.get("reason") else ""
        checked: dict[str, str] = {}
        for key, raw in args.items():
            value = str(raw).strip()
            if not value or key == "reason":
                continue
            if key not in wanted:
                raise ToolCallError(f"this business does not collect {key}")
            checked[key] = self._checked_field(key, value)
        if not checked and not reason:
            raise ToolCallError("no details given")
        for key, value in checked.items():
            self.referee.field_record(key, value, turn.transcript)
        self.referee.reason_add(reason)
        return {"ok": True, "recorded": checked, "still_needed": self.referee.missing_fields()}, []

    def _checked_field(self, key: str, value: str) -> str:
        """The value to store for ``key``, as the deterministic validators read it from the caller's words."""
        lines = self._caller_lines()
        caller_id = self.context.caller_id
        if key == "callback_number":
            number = extract_phone(value) or (caller_id if value == caller_id else None)
            if not number:
                raise ToolCallError("callback_number is not a phone number")
            if number not in {heard_number(line, caller_id) for line in lines}:
                raise ToolCallError("the caller did not say that number")
            return number
        if key == "email":
            email = extract_email(value, asked=True)
            if not email:
                raise ToolCallError("email is not an email address")
            if email not in {extract_email(line, asked=True) for line in lines}:
                raise ToolCallError("the caller did not say that email")
            return email
        if key == "name":
            name = extract_name(value, asked=True)
            said = " ".join(lines).lower()
            if not name:
                raise ToolCallError("name is not a person's name")
            if not all(re.search(rf"\b{re.escape(word.lower())}\b", said) for word in name.split()):
                raise ToolCallError("the caller did not say that name")
            return name
        found = extract_address(value, asked=True) if key == "address" else extract_preferred_time(value, asked=True)
        if not found:
            raise ToolCallError(f"{key.replace('_', ' ')} is not understood")
        said_words = set(content_words(" ".join(lines)))
        words = content_words(found)
        if words and sum(w in said_words for w in words) < max(1, (len(words) + 1) // 2):
            raise ToolCallError(f"the caller did not say that {key.replace('_', ' ')}")
        return found

    def _reason_of(self, line: str) -> str:
        """The reason in one caller line: its statements, without greetings and contact details."""
        statements = " ".join(s for s in split_sentences(line) if not is_question(s))
        return reason_text(statements, name=self.context.fields.get("name"))

    def _reason_line(self, reason: str) -> str:
        """The reason as the caller said it: from the newest caller line that says what the model's reason says."""
        wanted = set(content_words(reason))
        for line in reversed(self._caller_lines()):
            if wanted & set(content_words(line)):
                own = self._reason_of(line)
                if own:
                    return own
        raise ToolCallError("the reason must be something the caller said")

    async def _answer_from_faq(self, args: dict[str, Any], turn: _Turn) -> tuple[dict[str, Any], list[str]]:
        ids = args.get("entry_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str | int) for i in ids):
            raise ToolCallError("entry_ids must be a non-empty list of FAQ entry ids")
        entries = []
        for entry_id in dict.fromkeys(str(i) for i in ids):
            entry = self._entries.get(entry_id)
            if entry is None:
                raise ToolCallError(f"there is no FAQ entry {entry_id[:20]!r}")
            entries.append(entry)
        asked = [turn.text, *split_questions(turn.text)]
        relevant = await asyncio.to_thread(self._relevant_ids, asked)
        for entry in entries:
            if entry.id not in relevant:
                raise ToolCallError(
                    f"FAQ entry {entry.id} does not answer what the caller asked; if no entry does, "
                    "call log_unanswered_question"
                )
        turn.answered = True
        return {"ok": True, "spoken": [e.id for e in entries]}, [self.referee.faq_answer(e) for e in entries]

    def _relevant_ids(self, asked: list[str]) -> set[str]:
        index = self.referee.faq_index
        return {
            m.entry.id
            for question in asked
            for m in index.ranked(question, FAQ_CITE_RANK)
            if m.score >= FAQ_CITE_MIN_SCORE
        }

    def _log_unanswered(self, args: dict[str, Any], turn: _Turn) -> tuple[dict[str, Any], list[str]]:
        question = str(args.get("question") or "")
        asked = [q.strip() for q in split_questions(turn.text) if is_question(q)] or (
            [turn.text] if is_question(turn.text) else []
        )
        wanted = set(content_words(question))
        match = next((q for q in asked if wanted & set(content_words(q))), asked[0] if asked else "")
        if not match:
            raise ToolCallError("the caller did not ask a question in this turn")
        self.referee.question_log(match)
        turn.answered = True
        return {"ok": True}, [UNANSWERED]


def llm_policy(
    *,
    context: CallContext,
    model: str = "gpt-4o-mini",
    api_key: str = "",
    base_url: str = "",
    first_token_s: float = FIRST_TOKEN_S,
    temperature: float = 0.2,
    embedder: TextEmbedder | None = None,
    faq_index: FaqIndex | None = None,
    categorizer: CategoryClassifier | None = None,
) -> LlmReceptionistPolicy:
    """The ``openai`` dialogue provider: OpenAI, or any compatible server at ``base_url``."""
    if not api_key and not base_url:
        raise ValueError("the openai dialogue provider needs a key (key_ref) or a base_url")
    return LlmReceptionistPolicy(
        context,
        model=model,
        api_key=api_key or "unused",  # compatible servers without keys still get the header the SDK insists on
        base_url=base_url,
        first_token_s=float(first_token_s),
        temperature=float(temperature),
        embedder=embedder,
        faq_index=faq_index,
        categorizer=categorizer,
    )


OLLAMA_BASE_URL = "http://localhost:11434/v1"


def ollama_policy(
    *,
    context: CallContext,
    model: str = "llama3.1",
    base_url: str = OLLAMA_BASE_URL,
    first_token_s: float = FIRST_TOKEN_S,
    temperature: float = 0.2,
    embedder: TextEmbedder | None = None,
    faq_index: FaqIndex | None = None,
    categorizer: CategoryClassifier | None = None,
) -> LlmReceptionistPolicy:
    """The ``ollama`` dialogue provider: Ollama's OpenAI-compatible endpoint; no key."""
    policy = llm_policy(
        context=context,
        model=model,
        api_key="ollama",  # required by the SDK, ignored by Ollama
        base_url=base_url,
        first_token_s=first_token_s,
        temperature=temperature,
        embedder=embedder,
        faq_index=faq_index,
        categorizer=categorizer,
    )
    policy.name = "ollama"
    return policy
