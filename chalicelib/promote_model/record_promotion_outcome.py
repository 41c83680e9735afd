"""RecordPromotionOutcome: every Catch of PromoteModel ends here. The alias was not flipped, so a
first promotion ends FAILED with the reason, a rollout FAILED with its canary removed, and a
rollback leaves its version RETIRED (as it was, still a rollback candidate) with the reason in its
history."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib.domain.lifecycle import Status
from chalicelib.promote_model.ownership import owned_by
from chalicelib.promote_model.rollout import end_rollout, remove_canary
from chalicelib.promote_model.stage_io import RecordPromotionOutcomeInput
from chalicelib.stages.stage_io import StageResult, failure_reason
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/promote"


class RecordPromotionOutcome:
    def __init__(self, tracker: LifecycleTracker) -> None:
        self._tracker = tracker

    def run(self, outcome: RecordPromotionOutcomeInput) -> StageResult:
        record = self._tracker.registry.get(outcome.name, outcome.version)
        reason = failure_reason(outcome.error)
        ended_rollout = record.promotion is not None and record.promotion.rollout is not None
        if record.status is not Status.PROMOTING and ended_rollout and owned_by(record, outcome.execution):
            # its rollout ended (by its gates, an admin's abort that stops the execution, or an
            # earlier try of this ending): the canary goes, if a failed removal left it
            remove_canary(self._tracker, record)
            return StageResult(status=record.status.value)
        if record.status is not Status.PROMOTING or not owned_by(record, outcome.execution):
            # e.g. a duplicate execution's error: the owner's promotion must not be ended by it
            logger.error(
                "a promotion this execution does not own failed; the version is left as it is",
                extra={"model": outcome.name, "version": outcome.version, "error": reason},
            )
            return StageResult(status=record.status.value)
        rollout = record.promotion.rollout if record.promotion else None
        if rollout is not None:  # the canary goes with it; a rollout or promotion may be asked for again
            reason = f"rollout failed ({rollout.describe_step()}), production unchanged, canary removed: {reason}"
            ended = end_rollout(self._tracker, record, Status.FAILED, ACTOR, reason)
            return StageResult(status=ended.record.status.value)
        if record.promotion and record.promotion.rollback:
            target, reason = Status.RETIRED, f"rollback failed, production unchanged: {reason}"
        else:
            target, reason = Status.FAILED, f"promotion failed, production unchanged: {reason}"
        moved = self._tracker.move(outcome.name, outcome.version, target, ACTOR, reason)
        return StageResult(status=moved.record.status.value)
