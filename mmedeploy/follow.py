"""Following one version in the registry: one polling loop and one renderer of its history.

:func:`poll_version` reads the version every ``interval`` seconds until a caller's test says it
is done or time runs out; :class:`HistoryFeed` prints each history entry once, as it is first
read. ``status --watch`` (:func:`watch_version`), ``promote``/``rollback`` and the demo
(:func:`follow_promotion`) are the two ways of asking "done yet?":

- a watched version is done once it settles (``chalicelib.domain.lifecycle.SETTLED``); one not
  registered yet (just pushed) is waited for like one in progress;
- a promotion ends in PRODUCTION (done), FAILED (or another end a version cannot be promoted
  from), or RETIRED again with a higher revision than before the request (a rollback that could
  not warm the version leaves it as it was). Otherwise it is still in progress at the timeout.

A read that fails for a while (the API throttles, answers 5xx, or does not answer: the
exceptions a caller names in ``retry_on``) is asked again with exponential backoff and jitter,
waiting at least what the API's ``Retry-After`` says, until the timeout; a failure still there
at the timeout is raised. Ctrl-C (KeyboardInterrupt) goes through to the caller, who says that
the deployment goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from rich.console import Console
from rich.text import Text

from chalicelib.domain.lifecycle import SETTLED, TERMINAL, Status
from chalicelib.domain.records import HistoryEntry, ModelVersion

Fetch = Callable[[], ModelVersion | None]
OnUpdate = Callable[[ModelVersion | None, float], None]  # each read, and the seconds elapsed

MAX_BACKOFF_S = 30.0  # the longest wait between two reads after failures


def backoff_s(
    interval: float,
    failures: int,
    retry_after: float | None = None,
    jitter: Callable[[], float] = random.random,
    cap: float = MAX_BACKOFF_S,
) -> float:
    """The wait after ``failures`` failed reads in a row: the interval (at least 1 s) doubled per
    failure up to ``cap``, jittered to between half and all of it so that many followers do not
    ask together; never less than the API's ``retry_after``."""
    ceiling: float = min(cap, max(interval, 1.0) * 2.0 ** (failures - 1))
    wait = ceiling * (0.5 + jitter() / 2)
    return max(wait, retry_after or 0.0)


@dataclass(frozen=True)
class Poll:
    record: ModelVersion | None  # the last one read; None if the version was never found
    elapsed: float
    timed_out: bool


def poll_version(
    fetch: Fetch,
    on_update: OnUpdate,
    done: Callable[[ModelVersion], bool],
    interval: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[Exception], ...] = (),
    jitter: Callable[[], float] = random.random,
) -> Poll:
    """Call ``fetch`` every ``interval`` seconds and hand each read (and the seconds elapsed) to
    ``on_update`` until ``done`` says so of a read, or ``timeout`` seconds pass (the last sleep is
    cut short to end at the timeout, not a full interval after it). A read raising one of
    ``retry_on`` is tried again after :func:`backoff_s`; past the timeout it is raised."""
    started = clock()
    failures = 0
    while True:
        try:
            record = fetch()
        except retry_on as exc:
            failures += 1
            elapsed = clock() - started
            if elapsed >= timeout:
                raise
            wait = backoff_s(interval, failures, getattr(exc, "retry_after_s", None), jitter)
            sleep(max(0.0, min(wait, timeout - elapsed)))
            continue
        failures = 0
        elapsed = clock() - started
        on_update(record, elapsed)
        if record is not None and done(record):
            return Poll(record, elapsed, timed_out=False)
        if elapsed >= timeout:
            return Poll(record, elapsed, timed_out=True)
        sleep(max(0.0, min(interval, timeout - elapsed)))


# -- status --watch ---------------------------------------------------------------------------------
def watch_version(
    fetch: Fetch,
    on_update: OnUpdate,
    interval: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[Exception], ...] = (),
) -> Poll:
    """Follow a version until it settles or ``timeout`` passes."""
    return poll_version(
        fetch, on_update, lambda record: record.status in SETTLED, interval, timeout, clock, sleep, retry_on
    )


# -- promote / rollback ----------------------------------------------------------------------------
class PromotionEnding(StrEnum):
    PRODUCTION = "production"
    FAILED = "failed"
    RETIRED = "retired"  # a rollback that did not happen: the version is RETIRED again
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class FollowResult:
    outcome: PromotionEnding
    record: ModelVersion | None  # the last read; None if the version was never found
    elapsed: float

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is PromotionEnding.PRODUCTION else 1


def ending_of(record: ModelVersion, baseline_revision: int | None) -> PromotionEnding | None:
    """Where the promotion ended, or None while it is in progress. ``baseline_revision`` is the
    version's revision before the request (None: unknown, then RETIRED never counts as an end; a
    FAILED read at that revision is the failure before the request, not yet an end)."""
    if record.status is Status.PRODUCTION:
        return PromotionEnding.PRODUCTION
    moved = baseline_revision is not None and record.revision > baseline_revision
    if record.status is Status.RETIRED:
        return PromotionEnding.RETIRED if moved else None
    if record.status is Status.FAILED and baseline_revision is not None and not moved:
        return None  # a failed promotion asked for again: the failure is the old one, not started yet
    if record.status in TERMINAL:  # FAILED, or an end that can never be promoted
        return PromotionEnding.FAILED
    return None


def follow_promotion(
    fetch: Fetch,
    on_update: OnUpdate,
    baseline_revision: int | None,
    interval: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[Exception], ...] = (),
) -> FollowResult:
    """Follow a version until :func:`ending_of` names an end or ``timeout`` seconds pass."""
    poll = poll_version(
        fetch,
        on_update,
        lambda record: ending_of(record, baseline_revision) is not None,
        interval,
        timeout,
        clock,
        sleep,
        retry_on,
    )
    ended = ending_of(poll.record, baseline_revision) if poll.record is not None and not poll.timed_out else None
    return FollowResult(ended or PromotionEnding.TIMED_OUT, poll.record, poll.elapsed)


# -- the history, each entry once --------------------------------------------------------------------
ALL = 0  # revisions start at 1: show the whole history


class HistoryFeed:
    """An ``on_update`` that prints the followed version's history entries not shown yet, in
    order, each once, as ``line(entry, elapsed)`` renders it.

    ``after`` is the revision of the last entry already seen: ``ALL`` shows the history from its
    start; a revision read before a request shows only what the request changed; None (unknown)
    starts from the latest entry of the first read."""

    def __init__(self, console: Console, line: Callable[[HistoryEntry, float], Text], after: int | None = ALL) -> None:
        self._console = console
        self._line = line
        self._after = after

    def new_entries(self, record: ModelVersion | None) -> list[HistoryEntry]:
        if record is None:
            return []
        after = self._after
        entries = record.history[-1:] if after is None else [e for e in record.history if e.revision > after]
        self._after = max([after or 0, record.revision, *(e.revision for e in entries)])
        return entries

    def __call__(self, record: ModelVersion | None, elapsed: float) -> None:
        for entry in self.new_entries(record):
            self._console.print(self._line(entry, elapsed), soft_wrap=True)
