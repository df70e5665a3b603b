"""A local stand-in for the Anthropic Messages API, for tests of the real SDK path.

    with AnthropicStandin() as api:                  # listens on 127.0.0.1:<free port>
        api.script(tool_answer({"action": "restart", ...}))
        config = {"anthropic": {"api_key": "test-key", "base_url": api.url}}
        decision = diagnose(context, config)
        assert api_key_of(api.requests[0]["headers"]) == "test-key"

It speaks the wire format the SDK expects: ``POST /v1/messages`` with an API key
(``x-api-key``, or ``Authorization: Bearer`` as SDK 2.x sends it) and an
``anthropic-version`` header; answers ``{"id", "type": "message", "role", "model",
"content": [...], "stop_reason", "stop_sequence", "usage"}``; errors as
``{"type": "error", "error": {"type", "message"}}`` with their HTTP status. Each request
takes the next scripted reply; when the script is empty it answers 500 (so a test never
passes by accident). Replies may carry a ``delay`` (seconds) to exercise timeouts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def _message(content: list[dict[str, Any]], stop_reason: str, model: str = "claude-standin") -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 812, "output_tokens": 96},
    }


def tool_answer(tool_input: Any, name: str = "submit_diagnosis", delay: float = 0.0) -> Reply:
    """A well-formed tool_use answer (``tool_input`` may be anything, to test validation)."""
    block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": tool_input}
    return Reply(200, _message([block], "tool_use"), delay)


def text_answer(text: str) -> Reply:
    """The model ignored the tool and wrote prose."""
    return Reply(200, _message([{"type": "text", "text": text}], "end_turn"))


def error_reply(status: int, kind: str = "api_error", message: str = "Internal server error") -> Reply:
    # retry-after-ms keeps the SDK's backoff short in tests (it honours the header)
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}},
                 headers={"retry-after-ms": "20"})


def api_key_of(headers: Any) -> str:
    """The credential of a request: ``x-api-key`` (classic) or ``Authorization: Bearer``
    (what newer SDK releases send); both are accepted by the API."""
    key = headers.get("x-api-key") or ""
    auth = headers.get("authorization") or ""
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


class AnthropicStandin:
    """Scriptable stand-in server; see module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, reply: Reply) -> None:
                body = json.dumps(reply.body).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                with standin._lock:
                    standin.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                             "body": payload})
                    reply = standin._replies.pop(0) if standin._replies else None
                if self.path.split("?")[0] != "/v1/messages":
                    self._send(Reply(404, {"type": "error", "error": {"type": "not_found_error",
                                                                      "message": f"no route {self.path}"}}))
                    return
                if not api_key_of(self.headers):
                    self._send(Reply(401, {"type": "error", "error": {
                        "type": "authentication_error",
                        "message": "an x-api-key header (or Authorization: Bearer) is required"}}))
                    return
                if not self.headers.get("anthropic-version"):
                    self._send(error_reply(400, "invalid_request_error", "anthropic-version header is required"))
                    return
                if not isinstance(payload, dict) or not payload.get("model") or not payload.get("messages") \
                        or not payload.get("max_tokens"):
                    self._send(error_reply(400, "invalid_request_error", "model, max_tokens and messages are required"))
                    return
                if reply is None:
                    reply = error_reply(500, "api_error", "stand-in has no scripted reply")
                if reply.delay:
                    time.sleep(reply.delay)
                self._send(reply)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._replies)

    def start(self) -> AnthropicStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AnthropicStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
