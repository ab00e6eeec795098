"""An OpenAI-compatible chat server on loopback, for tests and benchmarks.

It speaks the part of the wire protocol the receptionist uses, as the
official ``openai`` SDK sends and reads it (and as Ollama and other
compatible servers serve it under ``/v1``): ``POST /v1/chat/completions``
with ``stream: true`` answered as server-sent events, one
``data: <chat.completion.chunk>`` per token, text in
``choices[0].delta.content``, tool calls as ``delta.tool_calls`` fragments
(``index``; ``id``, ``type`` and ``function.name`` in the first fragment
only; ``function.arguments`` as pieces of a JSON string), a
``finish_reason`` chunk, a usage chunk with no choices when
``stream_options.include_usage`` is set, and ``data: [DONE]``.
``GET /v1/models`` lists the models. ``Authorization: Bearer`` is checked
when the emulator has a key; errors are OpenAI's ``{"error": {...}}``.
Ollama's native API is there too: ``POST /api/chat`` streams NDJSON (one
``message`` per line, tool-call arguments as JSON objects with no id, a
last line with ``done: true``, ``done_reason`` and token counts) and
``GET /api/tags`` lists the models.

There is no language model here. What the "model" answers is decided by a
``Script``: a Python function of the request (messages and tools, exactly
what a real server receives) that returns a ``ModelTurn`` - text, tool
calls, or both - with its timing and, on demand, a fault: an HTTP 500, a
stall before the first token or mid-stream, an error mid-stream, an answer
that never ends, a wrong key. Tests write scripts that behave like a model,
including the ways models go wrong.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Json = dict[str, Any]
Fault = Literal["", "http_500", "stall", "error_mid_stream", "endless", "drop_mid_stream"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the emulated model makes. ``arguments`` is sent as given: it may be broken JSON."""

    name: str
    arguments: str | Json = ""

    def arguments_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """What the emulated model answers to one request, and how.

    ``ttft_s`` is the time to the first token; ``tokens_per_s`` the rate after
    it. ``fault`` makes the answer fail: ``http_500`` before any byte,
    ``stall`` (nothing after ``fault_after`` tokens for ``stall_s``),
    ``error_mid_stream`` (an error event after ``fault_after`` tokens),
    ``drop_mid_stream`` (the connection closes after ``fault_after`` tokens),
    ``endless`` (``text`` repeated until the client hangs up).
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    fault: Fault = ""
    fault_after: int = 0
    stall_s: float = 30.0


Script = Callable[[Json], ModelTurn]


@dataclass(slots=True)
class Exchange:
    """One request the emulator served, for tests to inspect."""

    request: Json
    turn: ModelTurn
    status: int
    sent_at: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, text token) per text chunk


def tokens(text: str) -> list[str]:
    """Text as the emulated model's tokens: each word with the space before it (roughly a real tokenizer's split)."""
    out: list[str] = []
    for index, word in enumerate(text.split(" ")):
        out.append(word if index == 0 else f" {word}")
    return [t for t in out if t]


def last_user_text(request: Json) -> str:
    """The newest user message of a request (what a script usually reacts to)."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def tool_results(request: Json) -> list[Json]:
    """The tool messages after the newest assistant turn that called tools (what the model just got back)."""
    messages = request.get("messages", [])
    results: list[Json] = []
    for message in reversed(messages):
        if message.get("role") == "tool":
            results.insert(0, message)
        else:
            break
    return results


class OpenAiChatEmulator:
    """The emulated server. ``start`` serves on 127.0.0.1; ``base_url`` is what the SDK is given."""

    def __init__(
        self,
        script: Script,
        *,
        api_key: str = "sk-emulator",
        models: tuple[str, ...] = ("gpt-4o-mini",),
        ttft_s: float = 0.0,
        tokens_per_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script = script
        self.api_key = api_key  # empty: no key needed (Ollama)
        self.models = models
        self.ttft_s = ttft_s
        self.tokens_per_s = tokens_per_s  # 0: as fast as the socket takes them
        self.exchanges: list[Exchange] = []
        self.model_lists = 0  # answered GET /v1/models
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> OpenAiChatEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    @property
    def requests(self) -> list[Json]:
        with self._lock:
            return [e.request for e in self.exchanges]


_MID_STREAM_ERROR = (
    b'data: {"error": {"message": "The server had an error while processing your request.", '
    b'"type": "server_error", "param": null, "code": null}}\n\n'
)


def _error(message: str, type_: str, code: str | None = None) -> Json:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _handler_for(emulator: OpenAiChatEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests carry caller words: never logged

        def _json(self, status: int, body: Json) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if not emulator.api_key:
                return True
            if self.headers.get("Authorization", "") == f"Bearer {emulator.api_key}":
                return True
            self._json(
                HTTPStatus.UNAUTHORIZED,
                _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
            )
            return False

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/api/tags":
                # Ollama's own model list (no key: Ollama has none).
                models = [
                    {"name": m, "model": m, "modified_at": "2026-01-01T00:00:00Z", "size": 0} for m in emulator.models
                ]
                self._json(HTTPStatus.OK, {"models": models})
                return
            if self.path.rstrip("/") != "/v1/models":
                self._json(HTTPStatus.NOT_FOUND, _error(f"Unknown path {self.path}", "invalid_request_error"))
                return
            if not self._authorized():
                return
            with emulator._lock:
                emulator.model_lists += 1
            created = int(time.time())
            data = [{"id": m, "object": "model", "created": created, "owned_by": "emulator"} for m in emulator.models]
            self._json(HTTPStatus.OK, {"object": "list", "data": data})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") == "/api/chat":
                self._ollama_chat(raw)
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(HTTPStatus.NOT_FOUND, _error(f"Unknown path {self.path}", "invalid_request_error"))
                return
            if not self._authorized():
                return
            try:
                request = json.loads(raw)
            except ValueError:
                self._json(HTTPStatus.BAD_REQUEST, _error("Invalid JSON body.", "invalid_request_error"))
                return
            if request.get("model") not in emulator.models:
                self._json(
                    HTTPStatus.NOT_FOUND,
                    _error(
                        f"The model `{request.get('model')}` does not exist.",
                        "invalid_request_error",
                        "model_not_found",
                    ),
                )
                return
            if not isinstance(request.get("messages"), list) or not request["messages"]:
                self._json(
                    HTTPStatus.BAD_REQUEST, _error("'messages' must be a non-empty array.", "invalid_request_error")
                )
                return
            turn = emulator.script(request)
            exchange = Exchange(request=request, turn=turn, status=200)
            emulator.record(exchange)
            if turn.fault == "http_500":
                exchange.status = 500
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, _error("The server had an error.", "server_error"))
                return
            if not request.get("stream"):
                self._complete(request, turn)
                return
            # The client may hang up (a timeout, a caller who cut in): as a real server, stop.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._stream(request, turn, exchange)

        def _ollama_chat(self, raw: bytes) -> None:
            """Ollama's native chat: NDJSON lines, tool-call arguments as objects, a final ``done`` line."""
            try:
                request = json.loads(raw)
            except ValueError:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "invalid JSON"})
                return
            if request.get("model") not in emulator.models:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"model '{request.get('model')}' not found"})
                return
            turn = emulator.script(request)
            exchange = Exchange(request=request, turn=turn, status=200)
            emulator.record(exchange)
            if turn.fault == "http_500":
                exchange.status = 500
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the model failed"})
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            rate = turn.tokens_per_s if turn.tokens_per_s is not None else emulator.tokens_per_s
            ttft = turn.ttft_s if turn.ttft_s is not None else emulator.ttft_s

            def line(message: Json, **extra: Any) -> None:
                body = {"model": request["model"], "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "message": {"role": "assistant", **message}, **extra}  # fmt: skip
                self.wfile.write(json.dumps(body).encode() + b"\n")
                self.wfile.flush()

            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                time.sleep(ttft)
                for index, tok in enumerate(tokens(turn.text)):
                    if index and rate > 0:
                        time.sleep(1.0 / rate)
                    line({"content": tok}, done=False)
                    exchange.sent_at.append((time.monotonic(), tok))
                if turn.tool_calls:
                    calls = []
                    for call in turn.tool_calls:
                        try:
                            arguments = json.loads(call.arguments_text())
                        except ValueError:
                            arguments = call.arguments_text()  # as broken as the model made it
                        calls.append({"function": {"name": call.name, "arguments": arguments}})
                    line({"content": "", "tool_calls": calls}, done=False)
                usage = usage_of(request, turn)
                line({"content": ""}, done=True, done_reason="stop", total_duration=int(ttft * 1e9),
                     prompt_eval_count=usage["prompt_tokens"], eval_count=usage["completion_tokens"])  # fmt: skip

        def _complete(self, request: Json, turn: ModelTurn) -> None:
            message: Json = {"role": "assistant", "content": turn.text or None}
            if turn.tool_calls:
                message["tool_calls"] = [
                    {"id": f"call_{secrets.token_hex(8)}", "type": "function",
                     "function": {"name": c.name, "arguments": c.arguments_text()}}
                    for c in turn.tool_calls
                ]  # fmt: skip
            finish = "tool_calls" if turn.tool_calls else "stop"
            usage = usage_of(request, turn)
            self._json(
                HTTPStatus.OK,
                {"id": f"chatcmpl-{secrets.token_hex(8)}", "object": "chat.completion", "created": int(time.time()),
                 "model": request["model"], "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                 "usage": usage},
            )  # fmt: skip

        def _stream(self, request: Json, turn: ModelTurn, exchange: Exchange) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            envelope = {
                "id": f"chatcmpl-{secrets.token_hex(8)}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": request["model"],
                "system_fingerprint": "fp_emulator",
            }
            ttft = turn.ttft_s if turn.ttft_s is not None else emulator.ttft_s
            rate = turn.tokens_per_s if turn.tokens_per_s is not None else emulator.tokens_per_s
            gap = 1.0 / rate if rate > 0 else 0.0

            def send(choices: list[Json], **extra: Any) -> None:
                self.wfile.write(f"data: {json.dumps({**envelope, 'choices': choices, **extra})}\n\n".encode())
                self.wfile.flush()

            def delta(d: Json, finish: str | None = None) -> list[Json]:
                return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

            if turn.fault == "stall" and turn.fault_after == 0:
                time.sleep(turn.stall_s)
                return
            time.sleep(ttft)
            pieces: list[tuple[str, Json]] = []  # (kind, delta)
            text_tokens = tokens(turn.text)
            if turn.fault == "endless":
                text_tokens = text_tokens * 10_000
            for index, tok in enumerate(text_tokens):
                first: Json = {"role": "assistant", "content": tok} if index == 0 else {"content": tok}
                pieces.append(("text", first))
            for index, call in enumerate(turn.tool_calls):
                args = call.arguments_text()
                head: Json = {"index": index, "id": f"call_{secrets.token_hex(12)}", "type": "function",
                              "function": {"name": call.name, "arguments": ""}}  # fmt: skip
                if not pieces:
                    pieces.append(("tool", {"role": "assistant", "content": None, "tool_calls": [head]}))
                else:
                    pieces.append(("tool", {"tool_calls": [head]}))
                for at in range(0, len(args), 8):
                    pieces.append(
                        ("tool", {"tool_calls": [{"index": index, "function": {"arguments": args[at : at + 8]}}]})
                    )
            if not pieces:
                pieces.append(("text", {"role": "assistant", "content": ""}))
            for sent, (kind, d) in enumerate(pieces):
                if turn.fault and sent == turn.fault_after and turn.fault_after > 0:
                    if turn.fault == "stall":
                        time.sleep(turn.stall_s)
                        return
                    if turn.fault == "error_mid_stream":
                        self.wfile.write(_MID_STREAM_ERROR)
                        self.wfile.flush()
                        return
                    if turn.fault == "drop_mid_stream":
                        return
                if sent and gap:
                    time.sleep(gap)
                send(delta(d))
                if kind == "text":
                    exchange.sent_at.append((time.monotonic(), d.get("content") or ""))
            send(delta({}, "tool_calls" if turn.tool_calls else "stop"))
            if (request.get("stream_options") or {}).get("include_usage"):
                send([], usage=usage_of(request, turn))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def usage_of(request: Json, turn: ModelTurn) -> Json:
    """The token counts the emulator reports for answering ``request`` with ``turn``."""
    # About four characters a token, as OpenAI's tokenizers average on English.
    prompt = sum(len(str(m.get("content") or "")) for m in request.get("messages", [])) // 4 + 1
    completion = (len(turn.text) + sum(len(c.arguments_text()) for c in turn.tool_calls)) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
