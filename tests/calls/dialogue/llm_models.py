"""Scripted models for the OpenAI-compatible emulator: rules over what a real server receives.

There is no language model offline. ``ReceptionistModel`` plays one from
the request alone - the system prompt's FAQ list, the conversation and the
tool results - the way a well-behaved model would use the tools; tests
subclass or wrap it to make it go wrong the ways real models do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from calls.dialogue.extract import extract_digits
from calls.providers.emulators.openai_chat import ModelTurn, ToolCall, tool_results

Json = dict[str, Any]
ASK = {
    "name": "Could I have your name, please?",
    "callback_number": "What's the best number to reach you on?",
    "address": "What's the address, please?",
    "email": "Could I have your email, please?",
    "preferred_time": "What day and time would suit you best?",
}
_STOP = {"what", "are", "you", "your", "the", "do", "does", "is", "a", "an", "of", "on", "in", "to", "and", "i", "we"}


def caller_words(request: Json) -> str:
    """The newest caller utterance, without the speech markup."""
    for message in reversed(request["messages"]):
        if message["role"] == "user":
            return re.sub(r"</?caller_speech>", "", message["content"]).strip()
    return ""


def faq_ids(request: Json) -> dict[str, str]:
    """FAQ id -> question and answer, as listed in the system prompt."""
    system = request["messages"][0]["content"]
    return {m.group(1): m.group(2) for m in re.finditer(r"^- (\w+): (.+)$", system, flags=re.MULTILINE)}


def _stems(text: str) -> set[str]:
    return {w[:4] for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP and len(w) > 2}


def last_agent_line(request: Json) -> str:
    for message in reversed(request["messages"]):
        if message["role"] == "assistant" and message.get("content"):
            return str(message["content"])
    return ""


@dataclass
class ReceptionistModel:
    """A model that follows its prompt: records what it hears, answers from the FAQ, asks what is still needed."""

    requests: list[Json] = field(default_factory=list)

    def __call__(self, request: Json) -> ModelTurn:
        self.requests.append(request)
        results = tool_results(request)
        if results:
            return self.after_tools(request, [json.loads(r["content"]) for r in results])
        return self.on_caller(request, caller_words(request))

    def after_tools(self, request: Json, results: list[Json]) -> ModelTurn:
        needed = next((r["still_needed"] for r in reversed(results) if "still_needed" in r), None)
        if needed:
            return ModelTurn(text=ASK[needed[0]])
        return ModelTurn(text="Is there anything else I can help with?")

    def on_caller(self, request: Json, said: str) -> ModelTurn:
        lower = said.lower()
        calls: list[ToolCall] = []
        if re.search(r"\b(?:repeat that|say that again|pardon)\b", lower):
            return ModelTurn(text=last_agent_line(request) or "How can I help?")
        if re.search(r"\b(?:person|human|someone real|real person)\b", lower):
            calls.append(ToolCall("transfer_to_human", {}))
        details: Json = {}
        name = re.search(r"\b(?i:my name is|this is|it's)\s+([A-Z][a-z]+(?: [A-Z][a-z']+)*)", said)
        if name:
            details["name"] = name.group(1)
        digits = extract_digits(said)
        if len(digits) >= 10:
            details["callback_number"] = digits
        email = re.search(r"my email is (.+?)\.?$", said, flags=re.IGNORECASE)
        if email:
            details["email"] = email.group(1)
        address = re.search(r"the address is (.+?)\.?$", said, flags=re.IGNORECASE)
        if address:
            details["address"] = address.group(1)
        time = re.search(r"^(.+?) would be best", said, flags=re.IGNORECASE)
        if time:
            details["preferred_time"] = time.group(1)
        statements = [s for s in re.split(r"(?<=[.!?])\s+", said) if s and not s.endswith("?")]
        clauses = [c.strip(" .!") for s in statements for c in re.split(r",\s*|\s+and\s+", s)]
        problem = [
            c
            for c in clauses
            if not re.search(r"\b(?:name is|number is|this is|email is|address is|would be best)\b", c, re.I)
            and not re.search(r"\b(?:that's all|that is all|nothing else|person|human)\b", c, re.I)
            and len(c.split()) >= 3
        ]
        if problem:
            details["reason"] = ", ".join(problem)
        if details:
            calls.append(ToolCall("record_caller_details", details))
        urgent = re.search(r"^Urgent keywords: (.*)\.$", request["messages"][0]["content"], flags=re.MULTILINE)
        keywords = [k.strip() for k in urgent.group(1).split(",")] if urgent else []
        hit = next((k for k in keywords if k and k != "none" and k.lower() in lower), None)
        if hit:
            calls.append(ToolCall("mark_urgent", {"keyword": hit}))
        for question in (s for s in re.split(r"(?<=[.!?])\s+", said) if s.endswith("?")):
            if re.search(r"\b(?:person|human)\b", question.lower()):
                continue
            entry = self.faq_for(request, question)
            if entry:
                calls.append(ToolCall("answer_from_faq", {"entry_ids": [entry], "question": question}))
            else:
                calls.append(ToolCall("log_unanswered_question", {"question": question}))
        if calls:
            return ModelTurn(tool_calls=tuple(calls))
        if re.search(r"\b(?:that's all|that is all|nothing else|no,? thanks|bye|goodbye)\b", lower):
            return ModelTurn(tool_calls=(ToolCall("end_call", {}),))
        return ModelTurn(text="Sorry, could you say that again?")

    def faq_for(self, request: Json, question: str) -> str | None:
        """The entry whose question shares the most words with the caller's (two at least, or one rare one)."""
        asked = _stems(question)
        best, best_score = None, 0
        for entry_id, text in faq_ids(request).items():
            entry_q = text.split(" -> ")[0]
            score = len(asked & _stems(entry_q)) * 2 + len(asked & _stems(text))
            if score > best_score:
                best, best_score = entry_id, score
        return best if best_score >= 3 else None
