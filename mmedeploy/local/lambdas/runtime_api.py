"""The Lambda Runtime API that one execution environment's runtime client polls.

As on AWS, each environment has its own endpoint (``AWS_LAMBDA_RUNTIME_API``, here 127.0.0.1 on a
port of its own) and holds at most one invocation at a time:
``GET /2018-06-01/runtime/invocation/next`` blocks until the platform offers one, the runtime
answers with ``POST .../invocation/{id}/response`` or ``.../error``, and a failed init reports
``POST /2018-06-01/runtime/init/error`` before the process exits.
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

The API is served by the thread that invokes, not by a server thread: :meth:`RuntimeApi.exchange`
reads the runtime's requests and writes the answers itself. Between invocations nothing reads the
socket, so the runtime's ``GET .../next`` waits in the kernel until the next invocation reads it,
which is what "blocks until the platform offers one" means. No thread hands an invocation to
another on the way in or out: on the API's path each hand-off between threads cost more than the
HTTP exchange itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import time
from dataclasses import dataclass
from http import HTTPStatus

PREFIX = "/2018-06-01/runtime"
NEXT = f"{PREFIX}/invocation/next"
INIT_ERROR = f"{PREFIX}/init/error"
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"
# Lambda's limit on a synchronous invocation's response payload
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_READ_BYTES = 256 * 1024


@dataclass
class Offered:
    request_id: str
    payload: bytes
    headers: dict[str, str]


@dataclass
class Answer:
    payload: bytes
    error_type: str | None  # None: a result; else the runtime's (or init's) error type


@dataclass
class Exchanged:
    """How one invocation went: when the runtime took it (None: it never did), and its answer
    (None: none came before the deadline or the process ended)."""

    fetched_at: float | None
    answer: Answer | None
    init_failed: bool = False


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def request(self) -> _Request | None:
        """The next complete request in the buffer, taken out of it; None until one is complete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD_BYTES:
                raise _Malformed("request head too large")
            return None
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, path, _version = lines[0].split(" ", 2)
        except ValueError:
            raise _Malformed(f"malformed request line {lines[0][:80]!r}") from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise _Malformed("Content-Length is not a number") from None
        if length > MAX_RESPONSE_BYTES + _MAX_HEAD_BYTES:
            raise _Malformed(f"a {length}-byte body")
        start = end + 4
        if len(self.buffer) < start + length:
            return None
        body, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
        return _Request(method, path, headers, body)

    def send(self, status: int, body: bytes | dict[str, str], headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json"]
        head += [f"{key}: {value}" for key, value in (headers or {}).items()]
        head.append(f"Content-Length: {len(data)}")
        # a runtime that went away no longer needs the answer
        with contextlib.suppress(OSError):
            self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)


class _Malformed(Exception):
    pass


class RuntimeApi:
    """One environment's Runtime API: a listening socket, the runtime's connections to it, and
    the exchange of one invocation at a time over them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        # the process's end wakes an exchange that waits on the runtime
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._connections: dict[int, _Connection] = {}
        self._ended = False

    @property
    def address(self) -> str:
        port = self._listener.getsockname()[1]
        return f"127.0.0.1:{port}"

    @property
    def ended(self) -> bool:
        return self._ended

    def process_ended(self) -> None:
        """The runtime's process exited: nothing more will be fetched or answered."""
        self._ended = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")

    def exchange(self, offered: Offered, fetch_timeout: float, answer_timeout: float) -> Exchanged:
        """Hand ``offered`` to the runtime's next ``GET .../next`` and wait for its answer."""
        deadline = time.monotonic() + fetch_timeout
        fetched_at: float | None = None
        while True:
            found = self._next_request(deadline)
            if found is None:
                return Exchanged(fetched_at, None)
            connection, request = found
            if request.method == "GET" and request.path == NEXT:
                if fetched_at is not None:
                    # a runtime that asks again without answering has dropped this invocation
                    no_answer = {"errorMessage": "no answer to the offered invocation", "errorType": "InvalidState"}
                    connection.send(500, no_answer)
                    continue
                connection.send(200, offered.payload, offered.headers)
                fetched_at = time.monotonic()
                deadline = fetched_at + answer_timeout
                continue
            if request.method != "POST":
                connection.send(405, {"errorMessage": "method not allowed", "errorType": "InvalidRequest"})
                continue
            error_type = request.headers.get(ERROR_TYPE_HEADER)
            if request.path == INIT_ERROR:
                connection.send(202, {"status": "OK"})
                return Exchanged(None, Answer(request.body, error_type or "Runtime.Unknown"), init_failed=True)
            match = _INVOCATION.match(request.path)
            if match is None:
                connection.send(404, {"errorMessage": "unknown path", "errorType": "InvalidRequest"})
                continue
            if fetched_at is None or match["id"] != offered.request_id:
                connection.send(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
                continue
            if match["kind"] == "response" and len(request.body) > MAX_RESPONSE_BYTES:
                too_large = (
                    f"Response payload size ({len(request.body)} bytes) exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_BYTES} bytes)."
                )
                connection.send(413, {"errorMessage": too_large, "errorType": "RequestEntityTooLarge"})
                payload = json.dumps({"errorMessage": too_large, "errorType": "Function.ResponseSizeTooLarge"})
                return Exchanged(fetched_at, Answer(payload.encode(), "Function.ResponseSizeTooLarge"))
            connection.send(202, {"status": "OK"})
            kind_error = (error_type or "Runtime.Unknown") if match["kind"] == "error" else None
            return Exchanged(fetched_at, Answer(request.body, kind_error))

    def _next_request(self, deadline: float) -> tuple[_Connection, _Request] | None:
        """The runtime's next request on any of its connections; None at the deadline or once the
        process has ended with nothing left to read."""
        while True:
            for connection in list(self._connections.values()):
                try:
                    request = connection.request()
                except _Malformed as error:
                    connection.send(400, {"errorMessage": str(error), "errorType": "InvalidRequest"})
                    self._drop(connection)
                    continue
                if request is not None:
                    return connection, request
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            events = self._selector.select(remaining)
            readable = False
            for key, _ in events:
                if key.fileobj is self._listener:
                    self._accept()
                    readable = True
                elif key.fileobj is self._wake_reader:
                    continue
                else:
                    connection = self._connections[key.fd]
                    try:
                        data = connection.sock.recv(_READ_BYTES)
                    except OSError:
                        data = b""
                    if data:
                        connection.buffer += data
                        readable = True
                    else:
                        self._drop(connection)
            # the wake-up stays readable once the process ended: return when its data is all read
            if self._ended and not readable:
                return None

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections[sock.fileno()] = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ)

    def _drop(self, connection: _Connection) -> None:
        self._connections.pop(connection.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()

    def close(self) -> None:
        for connection in list(self._connections.values()):
            self._drop(connection)
        self._selector.close()
        self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()
