"""The OpenAI-compatible emulator, driven by the official openai SDK over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from calls.providers.emulators.openai_chat import ModelTurn, OpenAiChatEmulator, ToolCall, last_user_text, tokens

KEY = "sk-emulator-test"
MODEL = "llama3.1"


@pytest.fixture
def emulator() -> Iterator[OpenAiChatEmulator]:
    def script(request: dict[str, Any]) -> ModelTurn:
        said = last_user_text(request)
        if said == "fail":
            return ModelTurn(fault="http_500")
        if said == "broken":
            return ModelTurn(tool_calls=(ToolCall("record_caller_details", '{"name": "Ma'),))
        if said == "slow":
            return ModelTurn(text="Here we go.", ttft_s=0.3)
        return ModelTurn(
            text="Sure thing.",
            tool_calls=(ToolCall("record_caller_details", {"name": "Maria Gonzalez"}), ToolCall("end_call", {})),
        )

    server = OpenAiChatEmulator(script, api_key=KEY, models=(MODEL, "qwen2.5")).start()
    yield server
    server.stop()


def client(emulator: OpenAiChatEmulator, key: str = KEY) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=emulator.base_url, api_key=key, max_retries=0)


async def model_ids(emulator: OpenAiChatEmulator, key: str = KEY) -> list[str]:
    return [m.id async for m in client(emulator, key).models.list()]


async def _stream(emulator: OpenAiChatEmulator, said: str) -> list[Any]:
    stream = await client(emulator).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": said}],
        tools=[{"type": "function", "function": {"name": "record_caller_details", "parameters": {"type": "object"}}}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return [chunk async for chunk in stream]


def test_a_streamed_answer_is_text_then_tool_call_fragments_then_finish_and_usage(
    emulator: OpenAiChatEmulator,
) -> None:
    chunks = asyncio.run(_stream(emulator, "hello"))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sure thing."
    assert chunks[0].choices[0].delta.role == "assistant"
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function.name if call.function else None) or ""
            entry["arguments"] += (call.function.arguments if call.function else None) or ""
    assert [(c["name"], c["arguments"]) for _, c in sorted(calls.items())] == [
        ("record_caller_details", '{"name": "Maria Gonzalez"}'),
        ("end_call", "{}"),
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    assert emulator.requests[0]["stream_options"] == {"include_usage": True}


def test_malformed_tool_arguments_arrive_as_the_model_sent_them(emulator: OpenAiChatEmulator) -> None:
    chunks = asyncio.run(_stream(emulator, "broken"))

    arguments = "".join(
        (call.function.arguments or "") if call.function else ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
    )
    assert arguments == '{"name": "Ma'


def test_the_first_token_comes_after_the_set_time(emulator: OpenAiChatEmulator) -> None:
    async def first_token_after() -> float:
        started = time.monotonic()
        stream = await client(emulator).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "slow"}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                return time.monotonic() - started
        raise AssertionError("no text")

    assert 0.3 <= asyncio.run(first_token_after()) < 1.0


def test_the_models_are_listed_and_a_wrong_key_is_refused(emulator: OpenAiChatEmulator) -> None:
    assert asyncio.run(model_ids(emulator)) == [MODEL, "qwen2.5"]
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key provided"):
        asyncio.run(model_ids(emulator, "sk-wrong"))
    with pytest.raises(openai.AuthenticationError):
        asyncio.run(_stream_with_key(emulator, "sk-wrong"))
    assert len(emulator.exchanges) == 0


async def _stream_with_key(emulator: OpenAiChatEmulator, key: str) -> None:
    await client(emulator, key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}], stream=True
    )


def test_a_server_error_and_an_unknown_model_are_openai_errors(emulator: OpenAiChatEmulator) -> None:
    with pytest.raises(openai.InternalServerError):
        asyncio.run(_stream(emulator, "fail"))
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        asyncio.run(
            client(emulator).chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
        )
    assert [e.status for e in emulator.exchanges] == [500]


def test_an_answer_without_streaming_is_one_completion(emulator: OpenAiChatEmulator) -> None:
    completion = asyncio.run(
        client(emulator).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    )

    message = completion.choices[0].message
    assert message.content == "Sure thing."
    assert [(c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("record_caller_details", '{"name": "Maria Gonzalez"}'),
        ("end_call", "{}"),
    ]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_a_server_without_a_key_takes_any_key() -> None:
    server = OpenAiChatEmulator(lambda request: ModelTurn(text="Hi there."), api_key="", models=(MODEL,)).start()
    try:
        models = asyncio.run(model_ids(server, "ollama"))
    finally:
        server.stop()
    assert models == [MODEL]


def test_text_is_sent_a_word_at_a_time() -> None:
    assert tokens("Could I have your name?") == ["Could", " I", " have", " your", " name?"]


def test_ollamas_native_chat_streams_ndjson_with_tool_arguments_as_objects(emulator: OpenAiChatEmulator) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "stream": True}
    with httpx.stream("POST", f"{emulator.base_url.removesuffix('/v1')}/api/chat", json=body, timeout=5) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    tags = httpx.get(f"{emulator.base_url.removesuffix('/v1')}/api/tags", timeout=5).json()

    assert response.headers["content-type"] == "application/x-ndjson"
    assert "".join(line["message"]["content"] for line in lines) == "Sure thing."
    calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
    assert calls == [
        {"function": {"name": "record_caller_details", "arguments": {"name": "Maria Gonzalez"}}},
        {"function": {"name": "end_call", "arguments": {}}},
    ]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["done_reason"] == "stop"
    assert lines[-1]["eval_count"] > 0
    assert [m["name"] for m in tags["models"]] == [MODEL, "qwen2.5"]
