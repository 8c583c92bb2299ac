"""A small OpenAI-compatible server for the endpoint tests: fixed answers, chosen faults.

It answers ``POST /v1/chat/completions`` and ``POST /v1/completions`` on 127.0.0.1 with a fixed,
chosen answer per prompt (:func:`answer_for`) and exact usage (:func:`usage_for`), and injects
the faults a test asks for, per prompt and attempt: ``429`` (with ``Retry-After``), ``503``,
``slow`` (answers after ``slow_s``, longer than the client's timeout), ``malformed`` (a 200
whose body is not JSON), ``drop`` (closes the connection without a response), ``401`` / ``400``
(refusals). It counts every request and every complete answer per prompt, server side.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVED_MODEL = "fake-teacher"
FINGERPRINT = "fp_fake_1"

#: (prompt, attempt number starting at 1) -> fault name or None (answer normally).
FaultPlan = Callable[[str, int], "str | None"]


def answer_for(prompt: str) -> str:
    """The fixed answer of ``prompt``: its words reversed, upper-cased."""
    return " ".join(reversed(prompt.split())).upper()


def usage_for(prompt: str) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) the server reports for ``prompt``."""
    return len(prompt.split()) + 3, len(answer_for(prompt).split())


class FakeOpenAI:
    """The server, on a free port of 127.0.0.1, in a daemon thread (a context manager)."""

    def __init__(self, faults: FaultPlan | None = None, *, api_key: str | None = None,
                 slow_s: float = 1.5, delay_s: float = 0.0, labels: dict[str, str] | None = None,
                 retry_after: str = "0.05"):
        self.faults = faults or (lambda prompt, attempt: None)
        self.api_key = api_key
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.labels = labels  # prompt -> answer text, for classification tests
        self.retry_after = retry_after
        self.requests: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}  # prompt -> monotonic time of each attempt
        self.answered: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join(5)
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                with server.lock:
                    server.requests[prompt] += 1
                    server.times.setdefault(prompt, []).append(time.monotonic())
                    attempt = server.requests[prompt]
                    server.bodies.append(body)
                if server.api_key is not None and \
                        self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    # Echo the key, as hosted APIs do (partly masked): the client must redact it.
                    presented = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    return self._json(401, {"error": {
                        "message": f"Incorrect API key provided: {presented}",
                        "type": "invalid_request_error"}})
                fault = server.faults(prompt, attempt)
                if fault == "429":
                    return self._json(429, {"error": {"message": "slow down"}},
                                      headers={"Retry-After": server.retry_after})
                if fault == "503":
                    return self._json(503, {"error": {"message": "overloaded"}})
                if fault in ("400", "401", "404"):
                    return self._json(int(fault), {"error": {"message": f"refused with {fault}"}})
                if fault == "drop":
                    self.close_connection = True
                    return None
                if fault == "malformed":
                    return self._raw(200, b'{"id": "x", "choices": [{"text": ', "application/json")
                if fault == "slow":
                    time.sleep(server.slow_s)
                if server.delay_s:
                    time.sleep(server.delay_s)
                text = server.labels[prompt] if server.labels is not None else answer_for(prompt)
                n_in, n_out = usage_for(prompt)
                max_tokens = int(body.get("max_tokens") or 16)
                choice: dict[str, Any] = {"index": 0, "finish_reason":
                                          "length" if n_out >= max_tokens else "stop"}
                if chat:
                    choice["message"] = {"role": "assistant", "content": text}
                else:
                    choice["text"] = text
                self._json(200, {
                    "id": f"cmpl-{attempt}", "object": "chat.completion" if chat else "text_completion",
                    "created": 0, "model": SERVED_MODEL, "system_fingerprint": FINGERPRINT,
                    "choices": [choice],
                    "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                              "total_tokens": n_in + n_out}})
                with server.lock:
                    server.answered[prompt] += 1
                return None

            def _json(self, code: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._raw(code, json.dumps(obj).encode(), "application/json", headers)

            def _raw(self, code: int, payload: bytes, ctype: str,
                     headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timed out) first
                    self.close_connection = True

        return Handler
