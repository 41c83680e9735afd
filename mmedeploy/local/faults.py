"""Faults the local AWS emulator can be told to inject, for the fault tests and for trying by hand
what production meets: DynamoDB throttling a table.

``POST /_mmedeploy/throttle`` with ``{"table": NAME, "seconds": S}`` on the emulator's port: for
the next S seconds every DynamoDB request that names the table (single-item calls, queries,
batches, transactions) is answered ``ProvisionedThroughputExceededException`` — HTTP 400, the
body DynamoDB sends — before moto sees it; ``"seconds": 0`` ends it. Nothing else changes: with
no throttle set, requests pass through untouched (the body is not even read).

The SDKs retry that error (botocore's legacy mode: 10 attempts over about 25 s for DynamoDB), so
a short throttle only slows the pipeline; a longer one reaches the handlers as the domain's
``RegistryBusy``, which the state machines retry and the sweep recovers from (docs/local-stack.md).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

CONTROL_PATH = "/_mmedeploy/throttle"
THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
}


class Throttles:
    """Which tables are throttled, until when (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def set(self, table: str, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self._until[table] = self._clock() + seconds
            else:
                self._until.pop(table, None)

    def active(self) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            for table in [t for t, until in self._until.items() if until <= now]:
                del self._until[table]
            return frozenset(self._until)


def tables_named(request: dict[str, Any]) -> set[str]:
    """Every table a DynamoDB JSON request names."""
    named = {request["TableName"]} if isinstance(request.get("TableName"), str) else set()
    named.update(request.get("RequestItems") or {})  # BatchGetItem, BatchWriteItem
    for item in request.get("TransactItems") or []:  # TransactWriteItems, TransactGetItems
        for operation in item.values():
            if isinstance(operation, dict) and isinstance(operation.get("TableName"), str):
                named.add(operation["TableName"])
    return named


class FaultInjector:
    """A WSGI middleware in front of the emulator: its control route, and the throttles it sets."""

    def __init__(self, app: WsgiApp, throttles: Throttles | None = None) -> None:
        self._app = app
        self.throttles = throttles or Throttles()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH and environ.get("REQUEST_METHOD") == "POST":
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        throttled = self.throttles.active() if target.startswith("DynamoDB_") else frozenset()
        if throttled:
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
            try:
                named = tables_named(json.loads(body or b"{}"))
            except ValueError:
                named = set()
            if named & throttled:
                return _answer(start_response, "400 Bad Request", THROTTLED, "application/x-amz-json-1.0")
        return self._app(environ, start_response)

    def _control(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            asked = json.loads(_read_body(environ) or b"{}")
            table, seconds = str(asked["table"]), float(asked.get("seconds", 0))
        except (ValueError, KeyError, TypeError) as exc:
            return _answer(start_response, "400 Bad Request", {"error": f"expected {{table, seconds}}: {exc}"})
        self.throttles.set(table, seconds)
        return _answer(start_response, "200 OK", {"throttled": sorted(self.throttles.active())})


def _read_body(environ: Environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _answer(
    start_response: StartResponse, status: str, body: dict[str, Any], kind: str = "application/json"
) -> list[bytes]:
    encoded = json.dumps(body).encode()
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(encoded)))])
    return [encoded]


def moto_server(host: str, port: int) -> Any:
    """moto's threaded server with a :class:`FaultInjector` in front (its ``_server_entry``, as in
    moto 5.2.5 — pinned with the seams, :data:`mmedeploy.local.moto_seams.MOTO_VERSION`)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class FaultableMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = FaultInjector(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(host, port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return FaultableMotoServer(ip_address=host, port=port, verbose=False)
