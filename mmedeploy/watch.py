"""``status --watch``: poll a version until it settles (``chalicelib.lifecycle.SETTLED``) or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.lifecycle import SETTLED
from chalicelib.registry import ModelVersion


@dataclass(frozen=True)
class WatchResult:
    record: ModelVersion | None  # the last one read; None if the version never got registered
    timed_out: bool


def watch_version(
    fetch: Callable[[], ModelVersion | None],
    on_update: Callable[[ModelVersion | None, float], None],
    interval: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchResult:
    """Call ``fetch`` every ``interval`` seconds and hand each read (and the seconds elapsed) to
    ``on_update``; a version not registered yet (None) is waited for like one in progress."""
    started = clock()
    while True:
        record = fetch()
        elapsed = clock() - started
        on_update(record, elapsed)
        if record is not None and record.status in SETTLED:
            return WatchResult(record, timed_out=False)
        if elapsed >= timeout:
            return WatchResult(record, timed_out=True)
        sleep(max(0.0, min(interval, timeout - elapsed)))
