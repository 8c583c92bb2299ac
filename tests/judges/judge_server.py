"""A scripted judge behind a real OpenAI-compatible HTTP server on 127.0.0.1.

The judge's answer to a prompt is ``policy(prompt)``: a fixed, chosen function of the text it
is shown (never random), so a test plants exactly the biases it wants — a position bias, a length
bias, ties, answers with no verdict — and knows the right figures. The server counts every
request server-side, and can stop answering after a number of requests (a killed run).

Used by the judge tests and by ``benchmarks/judge_throughput.py``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVED_MODEL = "scripted-judge"

#: The judge prompt the tests use: the answers between fixed markers, so a policy can read them.
PAIRWISE_PROMPT = """You compare two answers to the same question.
Question: {prompt}
[ANSWER A]
{answer_a}
[END A]
[ANSWER B]
{answer_b}
[END B]
Reason briefly, then end with [[A]] if A is better, [[B]] if B is better, [[C]] for a tie.
"""

POINTWISE_PROMPT = """Rate the answer from 1 to 10.
Question: {prompt}
[ANSWER]
{answer}
[END]
End with the score as [[n]].
"""


def shown(prompt: str) -> tuple[str, str]:
    """The two answers a pairwise prompt shows (A, B)."""
    a = re.search(r"\[ANSWER A\]\n(.*?)\n\[END A\]", prompt, re.S)
    b = re.search(r"\[ANSWER B\]\n(.*?)\n\[END B\]", prompt, re.S)
    assert a and b, "not a pairwise prompt of the tests"
    return a.group(1), b.group(1)


def shown_one(prompt: str) -> str:
    m = re.search(r"\[ANSWER\]\n(.*?)\n\[END\]", prompt, re.S)
    assert m, "not a pointwise prompt of the tests"
    return m.group(1)


class JudgeServer:
    """The server, on a free port of 127.0.0.1, in a daemon thread (a context manager)."""

    def __init__(self, policy: Callable[[str], str], *, api_key: str | None = None,
                 stop_after: int | None = None):
        self.policy = policy
        self.api_key = api_key
        self.stop_after = stop_after  # answer this many requests, then refuse with 503
        self.requests = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 128
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                chat = "messages" in body
                prompt = body["messages"][-1]["content"] if chat else body.get("prompt", "")
                with server.lock:
                    server.requests += 1
                    refuse = server.stop_after is not None and server.answered >= server.stop_after
                if server.api_key is not None and \
                        self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._json(401, {"error": {"message": "bad key"}})
                if refuse:
                    return self._json(400, {"error": {"message": "the judge is gone"}})
                text = server.policy(prompt)
                n_in, n_out = len(prompt.split()), len(text.split())
                choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
                if chat:
                    choice["message"] = {"role": "assistant", "content": text}
                else:
                    choice["text"] = text
                self._json(200, {"id": "j", "object": "chat.completion", "created": 0,
                                 "model": SERVED_MODEL, "system_fingerprint": "fp_judge",
                                 "choices": [choice],
                                 "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                                           "total_tokens": n_in + n_out}})
                with server.lock:
                    server.answered += 1
                return None

            def _json(self, code: int, obj: dict[str, Any]) -> None:
                payload = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

        return Handler
