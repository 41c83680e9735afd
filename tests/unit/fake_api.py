"""A stand-in for the API in the CLI's unit tests: a real HTTP server in-process that records each
request and answers canned JSON per method and path (404 otherwise), so the CLI's own HTTP
client is exercised, not a mock of it. Given a registry (``FakeApi.registry``), it also answers the
registry routes (``GET /models/{name}``, ``.../versions/{version}``, ``.../approval``) the way the
app does: the app's own :class:`~chalicelib.inference.catalog.ModelCatalog` over that registry,
its errors by the app's HTTP_STATUS."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON document, extra headers


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    registry_read: bool = False  # answered from FakeApi.registry

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeApi:
    """Answers ``answers[(method, path)]`` (``path`` with its query string), after running
    ``hooks[path]`` if there is one."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
    registry: Any = None  # a ModelRegistry: the registry routes are answered from it

    def registry_answer(self, method: str, path: str) -> Answer | None:
        """The app's answer to a registry read, when ``registry`` is set and ``path`` is one."""
        if self.registry is None or method != "GET":
            return None
        from chalicelib.domain.errors import DomainError
        from chalicelib.inference.catalog import ModelCatalog, page_limit
        from tests.unit.http_answers import http_status

        parsed = urllib.parse.urlsplit(path)
        query = {key: values[0] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        parts = [urllib.parse.unquote(part) for part in parsed.path.strip("/").split("/")]
        catalog = ModelCatalog(self.registry, None, self.registry)  # type: ignore[arg-type]
        try:
            if len(parts) == 2 and parts[0] == "models":
                model = catalog.model(parts[1], page_limit(query.get("limit")), query.get("next"))
                return 200, model.model_dump(mode="json"), {}
            if len(parts) == 4 and parts[0] == "models" and parts[2] == "versions":
                return 200, catalog.version(parts[1], parts[3]), {}
            if len(parts) == 5 and parts[0] == "models" and parts[2:5:2] == ["versions", "approval"]:
                return 200, catalog.approval(parts[1], parts[3]), {}
        except DomainError as error:
            return http_status(error), {"error": error.message}, {}
        return None

    def answer(self, method: str, path: str, status: int, document: dict[str, Any], **headers: str) -> None:
        self.answers[(method, path)] = (status, document, {k.replace("_", "-"): v for k, v in headers.items()})

    def only(self) -> Recorded:
        """The one request sent, registry reads aside."""
        sent = [recorded for recorded in self.requests if not recorded.registry_read]
        assert len(sent) == 1, sent
        return sent[0]


@contextmanager
def serve_fake_api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded = Recorded(self.command, self.path, headers, body)
            fake.requests.append(recorded)
            if self.path in fake.hooks:
                fake.hooks[self.path]()
            canned = fake.answers.get((self.command, self.path))
            if canned is None:
                canned = fake.registry_answer(self.command, self.path)
                recorded.registry_read = canned is not None
            status, document, extra = canned or (404, {"error": f"no route {self.command} {self.path}"}, {})
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL nobody listens on: the CLI's "API unreachable" path."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
