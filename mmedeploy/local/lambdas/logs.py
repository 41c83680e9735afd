"""Each function's output, as Lambda keeps it: log group ``/aws/lambda/<function>`` in the
emulator's CloudWatch Logs (one stream per execution environment), and a plain file per function
(``<state dir>/logs/<function>.log``) that stays readable when the emulator is gone. Its EMF lines
become metrics in the emulator's CloudWatch, as CloudWatch Logs makes them (:mod:`.emf`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from mmedeploy.local.lambdas.emf import EmbeddedMetrics

log = logging.getLogger("mmedeploy.local.lambda")

FLUSH_INTERVAL_S = 0.5
# PutLogEvents takes at most 10,000 events a call
BATCH = 10_000


class LogStream:
    def __init__(self, logs: FunctionLogs, function: str, stream: str) -> None:
        self._logs, self.function, self.stream = logs, function, stream

    def write(self, line: str) -> None:
        self._logs.write(self.function, self.stream, line)


class FunctionLogs:
    def __init__(self, folder: Path, client: Callable[[], Any], metrics: EmbeddedMetrics | None = None) -> None:
        self._folder = folder
        self._client = client
        self._metrics = metrics
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._known_groups: set[str] = set()
        self._known_streams: set[tuple[str, str]] = set()
        self._files: dict[str, TextIO] = {}  # open per function: a line is written on the invoke path
        self._stopping = threading.Event()
        self._folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._ship_forever, daemon=True, name="lambda-logs")
        self._thread.start()

    def stream(self, function: str, stream: str) -> LogStream:
        return LogStream(self, function, stream)

    def path(self, function: str) -> Path:
        return self._folder / f"{function}.log"

    def write(self, function: str, stream: str, line: str) -> None:
        now = time.time()
        with self._lock:
            file = self._files.get(function)
            if file is None:
                file = self._files[function] = open(self.path(function), "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open until stop()
            file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))}Z {line}\n")
            self._pending.setdefault((f"/aws/lambda/{function}", stream), []).append(
                {"timestamp": int(now * 1000), "message": line}
            )

    def _ship_forever(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL_S):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        self._ship(pending)
        if self._metrics is not None:
            # here, on the shipping thread, not in write(): the invoke path only appends
            self._metrics.publish(
                (group, event["message"]) for (group, _), events in pending.items() for event in events
            )

    def _ship(self, pending: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        try:
            client = self._client()
            for (group, stream), events in pending.items():
                self._ensure(client, group, stream)
                for start in range(0, len(events), BATCH):
                    client.put_log_events(
                        logGroupName=group, logStreamName=stream, logEvents=events[start : start + BATCH]
                    )
        except Exception as exc:  # noqa: BLE001 - the file keeps every line; CloudWatch is best effort
            log.warning("could not ship function logs to CloudWatch Logs: %s", exc)

    def _ensure(self, client: Any, group: str, stream: str) -> None:
        if group not in self._known_groups:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_group(logGroupName=group)
            self._known_groups.add(group)
        if (group, stream) not in self._known_streams:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            self._known_streams.add((group, stream))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self.flush()
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()
