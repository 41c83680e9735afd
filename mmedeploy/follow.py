"""``promote`` / ``rollback`` without ``--no-wait``: follow the version the API accepted until the
promotion ends.

It ends in PRODUCTION (done), FAILED (or another end a version cannot be promoted from), or
RETIRED again with a higher revision than before the request (a rollback that could not warm the
version leaves it as it was). Otherwise it is still in progress when the timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.lifecycle import TERMINAL, Status
from chalicelib.registry import ModelVersion

DEFAULT_INTERVAL_S = 0.5
DEFAULT_TIMEOUT_S = 900.0


class Outcome(StrEnum):
    PRODUCTION = "production"
    FAILED = "failed"
    RETIRED = "retired"  # a rollback that did not happen: the version is RETIRED again
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class FollowResult:
    outcome: Outcome
    record: ModelVersion | None  # the last read; None if the version was never found
    elapsed: float

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is Outcome.PRODUCTION else 1


def outcome_of(record: ModelVersion, baseline_revision: int | None) -> Outcome | None:
    """Where the promotion ended, or None while it is in progress. ``baseline_revision`` is the
    version's revision before the request (None: unknown, then RETIRED never counts as an end)."""
    if record.status is Status.PRODUCTION:
        return Outcome.PRODUCTION
    if record.status is Status.RETIRED:
        moved = baseline_revision is not None and record.revision > baseline_revision
        return Outcome.RETIRED if moved else None
    if record.status in TERMINAL:  # FAILED, or an end that can never be promoted
        return Outcome.FAILED
    return None


def follow_promotion(
    fetch: Callable[[], ModelVersion | None],
    on_update: Callable[[ModelVersion | None, float], None],
    baseline_revision: int | None,
    interval: float = DEFAULT_INTERVAL_S,
    timeout: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowResult:
    """Read the version every ``interval`` seconds, hand each read (and the seconds elapsed) to
    ``on_update``, until :func:`outcome_of` names an end or ``timeout`` seconds pass."""
    started = clock()
    while True:
        record = fetch()
        elapsed = clock() - started
        on_update(record, elapsed)
        outcome = outcome_of(record, baseline_revision) if record is not None else None
        if outcome is not None:
            return FollowResult(outcome, record, elapsed)
        if elapsed >= timeout:
            return FollowResult(Outcome.TIMED_OUT, record, elapsed)
        sleep(max(0.0, min(interval, timeout - elapsed)))
