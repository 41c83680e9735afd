"""``mmedeploy logs``: a Lambda function's log events, read from CloudWatch Logs as ``sam logs``
reads them.

Lambda writes a function's output to the log group ``/aws/lambda/<function name>``, one stream
per execution environment (``YYYY/MM/DD/[$LATEST]<hex>``); the local stack does the same in its
emulator. This module reads every stream of the group through FilterLogEvents, merges them in time
order and formats each event with a short stream id and its timestamp. The Lambda and CloudWatch
Logs clients are passed in (the target's, in the CLI), so it reads a deployed stack's logs the
same way, and tests give it moto's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

LOG_GROUP_PREFIX = "/aws/lambda/"
DEFAULT_SINCE = "10m"
FOLLOW_INTERVAL_S = 1.0
# Events reach CloudWatch Logs some time after their timestamp (the local stack ships every 0.5 s,
# Lambda within seconds), and one stream's may arrive after another's later ones: each poll of
# --follow reads again from this far before the newest event seen, de-duplicating by event id.
SETTLE_MS = 10_000
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"(\d+)([smhd])")
_LAMBDA_STREAM = re.compile(r"\[[^\]]*\]([0-9A-Za-z]+)$")  # 2026/11/22/[$LATEST]2b7238d2...
SHORT_ID_LENGTH = 8


class FunctionNotFound(Exception):
    """No function has the name given, nor ends with it; ``names`` are those that exist."""

    def __init__(self, query: str, names: list[str]) -> None:
        self.query, self.names = query, names
        existing = ", ".join(names) if names else "none"
        super().__init__(f"no function is named '{query}' or ends with it; the functions: {existing}")


class AmbiguousFunction(Exception):
    """Several functions match the short form given; ``matches`` are they."""

    def __init__(self, query: str, matches: list[str]) -> None:
        self.query, self.matches = query, matches
        super().__init__(f"'{query}' matches {len(matches)} functions: {', '.join(matches)}; give one of these names")


class LogGroupMissing(Exception):
    """The function's log group does not exist (yet): the function has not run."""

    def __init__(self, group: str) -> None:
        self.group = group
        super().__init__(f"no log group {group}")


def parse_since(text: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d`` as seconds; ValueError (saying what is accepted) otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not an age: give a whole number and a unit, as in 30s, 10m, 2h or 1d")
    seconds = int(match.group(1)) * SINCE_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"'{text}' must be more than 0")
    return seconds


def start_time_ms(since_s: float, clock: Callable[[], float] = time.time) -> int:
    """FilterLogEvents' ``startTime`` for events of the last ``since_s`` seconds."""
    return int((clock() - since_s) * 1000)


def function_names(lambda_client: Any) -> list[str]:
    """Every function ListFunctions returns (all pages), sorted."""
    names: list[str] = []
    for page in lambda_client.get_paginator("list_functions").paginate():
        names.extend(function["FunctionName"] for function in page.get("Functions", []))
    return sorted(names)


def resolve_function(query: str, names: Iterable[str]) -> str:
    """The one function ``query`` names: its full name, or a short form a person types.

    Tried in order, the first rule that matches anything decides: the exact name; a name that ends
    with ``-<query>`` (``validate``, ``warm-staging``, ``APIHandler`` for ``mmedeploy-dev-...``); the
    same two ignoring case; a name that contains ``query``, ignoring case. FunctionNotFound when
    nothing matches, AmbiguousFunction when the deciding rule matches several.
    """
    existing = sorted(set(names))
    wanted = query.strip()
    folded = wanted.casefold()
    rules: list[Callable[[str], bool]] = [
        lambda name: name == wanted,
        lambda name: name.endswith(f"-{wanted}"),
        lambda name: name.casefold() == folded,
        lambda name: name.casefold().endswith(f"-{folded}"),
        lambda name: folded in name.casefold(),
    ]
    if wanted:
        for rule in rules:
            matches = [name for name in existing if rule(name)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise AmbiguousFunction(query, matches)
    raise FunctionNotFound(query, existing)


def log_group_name(function: str) -> str:
    return f"{LOG_GROUP_PREFIX}{function}"


@dataclass(frozen=True)
class LogEvent:
    stream: str
    timestamp: int  # milliseconds since the epoch, as CloudWatch Logs keeps it
    message: str
    event_id: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.stream, self.event_id)


def read_events(logs_client: Any, group: str, start_ms: int, end_ms: int | None = None) -> list[LogEvent]:
    """Every event of every stream of ``group`` from ``start_ms`` on (all pages), in time order;
    LogGroupMissing when the group does not exist."""
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if end_ms is not None:
        request["endTime"] = end_ms
    events: list[LogEvent] = []
    tokens: set[str] = set()
    while True:
        try:
            page = logs_client.filter_log_events(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise LogGroupMissing(group) from None
            raise
        events.extend(
            LogEvent(e["logStreamName"], int(e["timestamp"]), e.get("message", ""), str(e["eventId"]))
            for e in page.get("events", [])
        )
        token = page.get("nextToken")
        if not token or token in tokens:  # a token seen before would page forever
            break
        tokens.add(token)
        request["nextToken"] = token
    # each stream's events keep their order (the sort is stable); streams interleave by time
    return sorted(events, key=lambda event: event.timestamp)


def follow_events(
    logs_client: Any,
    group: str,
    start_ms: int,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = FOLLOW_INTERVAL_S,
    settle_ms: int = SETTLE_MS,
) -> Iterator[list[LogEvent]]:
    """Poll ``group`` every ``interval`` seconds, forever: each item is the events not given
    before, in time order (the first: everything since ``start_ms``). A group that does not exist
    yet is waited for (empty items)."""
    seen: dict[tuple[str, str], int] = {}
    while True:
        try:
            events = read_events(logs_client, group, start_ms)
        except LogGroupMissing:
            events = []
        fresh = [event for event in events if event.key not in seen]
        seen.update((event.key, event.timestamp) for event in fresh)
        yield fresh
        if seen:
            start_ms = max(start_ms, max(seen.values()) - settle_ms)
            seen = {key: at for key, at in seen.items() if at >= start_ms}  # older ones are not read again
        sleep(interval)


def short_stream_id(stream: str) -> str:
    """``2026/11/22/[$LATEST]2b7238d25d05...`` -> ``2b7238d2``; another stream name as it is."""
    match = _LAMBDA_STREAM.search(stream)
    return match.group(1)[:SHORT_ID_LENGTH] if match else stream


def format_timestamp(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{timestamp_ms % 1000:03d}Z"


def format_event(event: LogEvent) -> str:
    """``<stream id> <UTC time> <message>``; a message of several lines (the runtime separates a
    traceback's with carriage returns) continues indented under the first."""
    prefix = f"{short_stream_id(event.stream)} {format_timestamp(event.timestamp)} "
    lines = event.message.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    indent = "\n" + " " * len(prefix)
    return prefix + indent.join(lines)
