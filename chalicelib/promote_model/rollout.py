"""RolloutStep: PromoteModel's loop for a rollout, between WarmProduction and FlipAlias. Each call
either begins the next canary step or reads the gates of the current one; the state machine waits
``wait_seconds`` between calls (a Wait state), so a rollout holds no Lambda while it bakes.

- Before the first step (the candidate just warmed on production): the canary takes the first
  step's weight (a rollout's canary: served from the production endpoint; only this execution may
  change or end it), noted in the version's history and announced as RolloutStepStarted.
- At each evaluation: both versions' figures since the step began (VersionMetrics), judged by the
  gates (``domain.rollout.gates.judge``):
  - FAIL: the rollout ends at once: ROLLED_BACK (RolloutAborted, Slack) with the gate, the
    figures and the step in its reason, and the canary removed; production never changed.
  - PASS, once the step has baked and unless an admin paused it: RolloutGatePassed, then the next
    step, or after the last canary step ``promote`` (FlipAlias makes it production and removes
    the canary in one transaction, announced as RolloutCompleted).
  - otherwise (WAIT: too little traffic, no p99 yet, metrics unavailable; a PASS still baking or
    paused): the reading is kept on the record (the status panel shows it) and it waits.

Every move is owned by the execution that claimed the version; a retried call finds what its
first try did and goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib.domain.errors import MetricsUnavailable, RolloutEnded
from chalicelib.domain.lifecycle import ROLLOUT_GATE_PASSED, ROLLOUT_STEP_STARTED, Status
from chalicelib.domain.records import ModelVersion, Transition, iso, utc_now
from chalicelib.domain.rollout.figures import VersionFigures
from chalicelib.domain.rollout.gates import Outcome, StepVerdict, judge
from chalicelib.domain.rollout.progress import Reading, RolloutRun
from chalicelib.promote_model.ownership import NotOwned, owned_by, require_owned
from chalicelib.promote_model.stage_io import PromotionStep, RolloutStepResult
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/rollout"


class FiguresSource(Protocol):
    def figures(self, name: str, version: str, start: datetime, end: datetime) -> VersionFigures: ...


def end_rollout(
    tracker: LifecycleTracker,
    record: ModelVersion,
    target: Status,
    actor: str,
    reason: str,
    changes: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> Transition:
    """End ``record``'s rollout: the version moves to ``target`` (ROLLED_BACK, or FAILED when the
    execution failed) first, so the inference API stops sending it traffic at once (a rollout's
    canary serves only a PROMOTING candidate), then the canary is removed. A retry after a crash
    between the two finds the version moved and removes the canary."""
    moved = tracker.move(record.name, record.version, target, actor, reason, changes)
    remove_canary(tracker, record)
    return moved


def remove_canary(tracker: LifecycleTracker, record: ModelVersion) -> None:
    """Remove the canary of ``record``'s rollout, if it is still there (and still its own)."""
    if record.promotion is not None:
        tracker.registry.delete_canary(record.name, rollout_execution=record.promotion.execution_arn)


class RolloutStep:
    def __init__(
        self, tracker: LifecycleTracker, metrics: FiguresSource, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._tracker = tracker
        self._metrics = metrics
        self._clock = clock

    def run(self, step: PromotionStep) -> RolloutStepResult:
        try:
            return self._run(step)
        except RolloutEnded:
            # ended while this call ran (an admin's abort): what it was doing is moot
            return self._ended(self._tracker.registry.get(step.name, step.version), step)

    def _ended(self, record: ModelVersion, step: PromotionStep) -> RolloutStepResult:
        if record.status is Status.ROLLED_BACK and owned_by(record, step.execution):
            # ended by its gates (a retried call) or by an admin's abort: the canary goes too
            remove_canary(self._tracker, record)
            return RolloutStepResult(action="rolled_back", reason=record.reason)
        require_owned(record, step.execution)  # NotOwned: the Catch's recorder ends it as it stands
        raise NotOwned(f"{step.name} {step.version}'s promotion is not a rollout")

    def _run(self, step: PromotionStep) -> RolloutStepResult:
        record = self._tracker.registry.get(step.name, step.version)
        run = record.promotion.rollout if record.promotion else None
        if record.status is not Status.PROMOTING or run is None or not owned_by(record, step.execution):
            return self._ended(record, step)
        now = self._clock()
        production = self._tracker.registry.find_alias(step.name)
        if production is None or production.version != run.production_version:
            # nothing else may move production during a rollout; should it have moved all the same
            # (an operator's hand), the candidate is no longer judged against what serves
            now_serving = production.version if production else "nothing"
            reason = (
                f"rollout stopped ({run.describe_step()}), canary removed: production moved from "
                f"{run.production_version} to {now_serving} during it"
            )
            end_rollout(self._tracker, record, Status.FAILED, ACTOR, reason)
            return RolloutStepResult(action="rolled_back", step=run.step, weight=run.weight, reason=reason)
        if not run.started:
            if run.paused_by:  # paused while it warmed: it holds before its first step
                return self._wait(record, run, now, None, "paused before its first step")
            return self._begin(record, run, 0, now)
        verdict = self._read(record, run, now)
        if verdict is None:
            return self._wait(record, run, now, None, "the metrics could not be read; reading them again")
        reading = Reading.of(verdict, iso(now))
        if verdict.outcome is Outcome.FAIL:
            return self._roll_back(record, run, reading)
        baked = now - _parse(run.step_started_at) >= timedelta(seconds=run.policy.bake_seconds)
        if verdict.outcome is not Outcome.PASS or not baked or run.paused_by:
            return self._wait(record, run, now, reading, verdict.reason)
        try:
            self._tracker.note(
                step.name,
                step.version,
                ACTOR,
                f"rollout {run.describe_step()} passed: {verdict.reason}",
                ROLLOUT_GATE_PASSED,
                changes=_unless_paused(rollout_changes(last=reading)),
            )
        except _Paused as paused:  # an admin's pause written since this call read the record
            return self._wait(self._tracker.registry.get(step.name, step.version), paused.run, now, reading, "")
        if run.last_canary_step:
            return RolloutStepResult(action="promote", step=run.step, weight=run.weight, reason=verdict.reason)
        return self._begin(record, run, run.step + 1, now)

    def _begin(self, record: ModelVersion, run: RolloutRun, index: int, now: datetime) -> RolloutStepResult:
        assert record.promotion is not None  # owned: require_owned checked it
        wait = self._wait_seconds(run, now, now)
        fields = {
            "step": index,
            "step_started_at": iso(now),
            "next_evaluation_at": iso(now + timedelta(seconds=wait)),
            "last": None,  # the reading of the step before is not this step's
        }
        started = run.model_copy(update=fields)
        self._tracker.registry.put_canary(
            record.name, record.version, started.weight, ACTOR, rollout_execution=record.promotion.execution_arn
        )
        policy = run.policy
        self._tracker.note(
            record.name,
            record.version,
            ACTOR,
            f"rollout {started.describe_step()} started: {started.weight:.0%} of {record.name}'s traffic to "
            f"{record.version}, the rest to {run.production_version}; it bakes {policy.bake_seconds} s, the gates "
            f"read every {policy.evaluation_interval_seconds} s",
            ROLLOUT_STEP_STARTED,
            changes=rollout_changes(**fields),
        )
        logger.info(
            "rollout step started",
            extra={"model": record.name, "version": record.version, "step": index, "weight": started.weight},
        )
        return RolloutStepResult(action="wait", wait_seconds=wait, step=index, weight=started.weight)

    def _read(self, record: ModelVersion, run: RolloutRun, now: datetime) -> StepVerdict | None:
        start = _parse(run.step_started_at)
        try:
            candidate = self._metrics.figures(record.name, record.version, start, now)
            production = self._metrics.figures(record.name, run.production_version, start, now)
        except MetricsUnavailable as exc:
            logger.warning("rollout metrics unavailable", extra={"model": record.name, "error": exc.message})
            return None
        return judge(run.policy, candidate, production)

    def _wait(
        self, record: ModelVersion, run: RolloutRun, now: datetime, reading: Reading | None, why: str
    ) -> RolloutStepResult:
        wait = (
            self._wait_seconds(run, _parse(run.step_started_at), now)
            if run.started
            else (run.policy.evaluation_interval_seconds)
        )
        fields = {"next_evaluation_at": iso(now + timedelta(seconds=wait)), **({"last": reading} if reading else {})}
        # the latest reading, for the status panel: no history entry (nothing changed); an admin's
        # pause written meanwhile wins (the write is refused, the reading shows next time)
        self._tracker.registry.refresh(record, rollout_changes(**fields)(record))
        paused = f" (paused by {run.paused_by})" if run.paused_by else ""
        return RolloutStepResult(
            action="wait", wait_seconds=wait, step=run.step, weight=run.weight, reason=f"{why}{paused}"
        )

    def _roll_back(self, record: ModelVersion, run: RolloutRun, reading: Reading) -> RolloutStepResult:
        reason = (
            f"rolled back at {run.describe_step()}, production {run.production_version} unchanged: {reading.reason}"
        )
        end_rollout(
            self._tracker,
            record,
            Status.ROLLED_BACK,
            ACTOR,
            reason,
            changes=rollout_changes(last=reading, next_evaluation_at=None),
        )
        logger.warning("rollout rolled back", extra={"model": record.name, "version": record.version, "reason": reason})
        return RolloutStepResult(action="rolled_back", step=run.step, weight=run.weight, reason=reason)

    @staticmethod
    def _wait_seconds(run: RolloutRun, step_started: datetime, now: datetime) -> int:
        """The policy's interval, or less when the step's bake ends sooner (at least 1 s)."""
        interval = run.policy.evaluation_interval_seconds
        left = (step_started + timedelta(seconds=run.policy.bake_seconds) - now).total_seconds()
        return max(1, min(interval, round(left))) if left > 0 else interval


def rollout_changes(**fields: Any) -> Callable[[ModelVersion], dict[str, Any]]:
    """A write's changes: ``fields`` set on the rollout as the write finds it (what another writer
    set meanwhile, an admin's pause, is kept). Conflict if the rollout ended meanwhile."""

    def changes(current: ModelVersion) -> dict[str, Any]:
        if current.status is not Status.PROMOTING or current.promotion is None or current.promotion.rollout is None:
            raise RolloutEnded(current.name, current.version, current.status)
        rollout = current.promotion.rollout.model_copy(update=fields)
        return {"promotion": current.promotion.model_copy(update={"rollout": rollout})}

    return changes


class _Paused(Exception):
    """Raised inside a write's changes: the rollout was paused since the call read it."""

    def __init__(self, run: RolloutRun) -> None:
        super().__init__("paused")
        self.run = run


def _unless_paused(changes: Callable[[ModelVersion], dict[str, Any]]) -> Callable[[ModelVersion], dict[str, Any]]:
    """``changes``, refused (``_Paused``) when the rollout the write finds is paused: the check and
    the step's move are one conditional write, so a pause the API answered is never overtaken."""

    def checked(current: ModelVersion) -> dict[str, Any]:
        rollout = current.promotion.rollout if current.promotion else None
        if rollout is not None and rollout.paused_by:
            raise _Paused(rollout)
        return changes(current)

    return checked


def _parse(at: str | None) -> datetime:
    if at is None:
        raise ValueError("the rollout's step has no start")
    return datetime.fromisoformat(at)
