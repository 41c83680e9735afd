"""The Lambda Runtime API that one execution environment's runtime client polls.

As on AWS, each environment has its own endpoint (``AWS_LAMBDA_RUNTIME_API``, here 127.0.0.1 on a
port of its own) and holds at most one invocation at a time:
``GET /2018-06-01/runtime/invocation/next`` blocks until the platform offers one, the runtime
answers with ``POST .../invocation/{id}/response`` or ``.../error``, and a failed init reports
``POST /2018-06-01/runtime/init/error`` before the process exits.
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda's limit on a synchronous invocation's response payload
MAX_RESPONSE_BYTES = 6 * 1024 * 1024


@dataclass
class Offered:
    request_id: str
    payload: bytes
    headers: dict[str, str]


@dataclass
class Answer:
    payload: bytes
    error_type: str | None  # None: a result; else the runtime's (or init's) error type


class RuntimeApi:
    """The state of one environment's Runtime API: what is offered, fetched and answered."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._offered: Offered | None = None
        self._fetched: str | None = None
        self._answer: Answer | None = None
        self._init_error: Answer | None = None
        self._ended = False  # the runtime's process exited
        self._closed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="lambda-runtime-api")
        self._thread.start()

    @property
    def address(self) -> str:
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    # -- the platform's side ---------------------------------------------------------------------
    def offer(self, offered: Offered) -> None:
        with self._lock:
            self._offered, self._fetched, self._answer = offered, None, None
            self._lock.notify_all()

    def wait_fetched(self, timeout: float) -> bool:
        """True once the runtime took the offered invocation (init is over)."""
        with self._lock:
            return self._lock.wait_for(
                lambda: self._fetched is not None or self._init_error is not None or self._ended, timeout
            ) and (self._fetched is not None)

    def wait_answer(self, timeout: float) -> Answer | None:
        with self._lock:
            self._lock.wait_for(
                lambda: self._answer is not None or self._init_error is not None or self._ended, timeout
            )
            return self._answer or self._init_error

    @property
    def init_error(self) -> Answer | None:
        return self._init_error

    @property
    def ended(self) -> bool:
        return self._ended

    def process_ended(self) -> None:
        """The runtime's process exited: nothing more will be fetched or answered."""
        with self._lock:
            self._ended = True
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- the runtime's side ----------------------------------------------------------------------
    def next_invocation(self) -> Offered | None:
        with self._lock:
            self._lock.wait_for(lambda: self._closed or (self._offered is not None and self._fetched is None))
            if self._closed or self._offered is None:
                return None
            self._fetched = self._offered.request_id
            self._lock.notify_all()
            return self._offered

    def answer(self, request_id: str, answer: Answer) -> bool:
        with self._lock:
            if self._fetched != request_id or self._answer is not None:
                return False
            self._answer = answer
            self._lock.notify_all()
            return True

    def fail_init(self, answer: Answer) -> None:
        with self._lock:
            self._init_error = answer
            self._lock.notify_all()


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._send(404, {"errorMessage": "unknown path", "errorType": "InvalidRequest"})
                return
            offered = api.next_invocation()
            if offered is None:
                self._send(500, {"errorMessage": "the environment is shutting down", "errorType": "Shutdown"})
                return
            self._send(200, offered.payload, {"Content-Type": "application/json", **offered.headers})

        def do_POST(self) -> None:
            body = self._body()
            if body is None:
                return
            error_type = self.headers.get(ERROR_TYPE_HEADER)
            if self.path == f"{PREFIX}/init/error":
                api.fail_init(Answer(body, error_type or "Runtime.Unknown"))
                self._send(202, {"status": "OK"})
                return
            match = _INVOCATION.match(self.path)
            if match is None:
                self._send(404, {"errorMessage": "unknown path", "errorType": "InvalidRequest"})
                return
            if match["kind"] == "response" and len(body) > MAX_RESPONSE_BYTES:
                too_large = (
                    f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_BYTES} bytes)."
                )
                answer = Answer(
                    json.dumps({"errorMessage": too_large, "errorType": "Function.ResponseSizeTooLarge"}).encode(),
                    "Function.ResponseSizeTooLarge",
                )
                api.answer(match["id"], answer)
                self._send(413, {"errorMessage": too_large, "errorType": "RequestEntityTooLarge"})
                return
            kind_error = (error_type or "Runtime.Unknown") if match["kind"] == "error" else None
            if not api.answer(match["id"], Answer(body, kind_error)):
                self._send(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
                return
            self._send(202, {"status": "OK"})

        def _body(self) -> bytes | None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(400, {"errorMessage": "bad Content-Length", "errorType": "InvalidRequest"})
                return None
            return self.rfile.read(length) if length > 0 else b""

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                head.append(f"{key}: {value}")
            head.append(f"Content-Length: {len(data)}")
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
            self.wfile.flush()

    return Handler
