"""A local stand-in for the Slack Web API and response_url endpoints that records every call.

Point ``slack_sdk.WebClient(base_url=f"{slack_url}/api/")`` at it. ``GET /_messages`` lists the
recorded calls as JSON (newest last), ``DELETE /_messages`` clears them; ``POST /_outage``
``{"down": true}`` makes every Web API call answer 503 until ``{"down": false}`` (the fault tests).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackSink:
    def __init__(self, host: str, port: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.down = False  # a Slack outage, switched by POST /_outage (the fault tests)
        self._host = host
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="slack-sink")

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry["seq"] = len(self.messages) + 1
            self.messages.append(entry)
        return entry

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/_messages":
                    with sink._lock:
                        self._reply(200, list(sink.messages))
                else:
                    self._reply(404, {"ok": False, "error": "unknown_method"})

            def do_DELETE(self) -> None:
                with sink._lock:
                    sink.messages.clear()
                self._reply(200, {"ok": True})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                if self.path.rstrip("/") == "/_outage":  # tests: Slack down ({"down": true}) or back
                    sink.down = bool(json.loads(raw or "{}").get("down"))
                    self._reply(200, {"ok": True, "down": sink.down})
                    return
                if sink.down and self.path.startswith("/api/"):
                    self._reply(503, {"ok": False, "error": "service_unavailable"})
                    return
                content_type = self.headers.get("Content-Type", "")
                if "json" in content_type:
                    payload: Any = json.loads(raw or "{}")
                else:
                    payload = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                path = self.path.split("?", 1)[0]
                if path.startswith("/api/"):
                    method = path.removeprefix("/api/")
                    ts = f"{time.time():.6f}"
                    sink.record({"method": method, "payload": payload, "at": time.time(), "ts": ts})
                    self._reply(200, {"ok": True, "channel": payload.get("channel", "C0LOCAL"), "ts": ts})
                else:  # a response_url from an interaction
                    sink.record({"method": "response_url", "path": path, "payload": payload, "at": time.time()})
                    self._reply(200, {"ok": True})

        return Handler
