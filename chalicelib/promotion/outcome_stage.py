"""RecordPromotionOutcome: every Catch of PromoteModel ends here. The alias was not flipped, so a
first promotion ends FAILED with the reason, and a rollback leaves its version RETIRED (as it
was, still a rollback candidate) with the reason in its history."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib.lifecycle import Status
from chalicelib.pipeline.outcome_stage import failure_reason
from chalicelib.pipeline.stage_io import OutcomeResult
from chalicelib.pipeline.tracker import LifecycleTracker
from chalicelib.promotion.ownership import owned_by
from chalicelib.promotion.promotion_io import PromotionOutcomeInput

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/promote"


class PromotionOutcome:
    def __init__(self, tracker: LifecycleTracker) -> None:
        self._tracker = tracker

    def run(self, outcome: PromotionOutcomeInput) -> OutcomeResult:
        record = self._tracker.registry.get(outcome.name, outcome.version)
        reason = failure_reason(outcome.error)
        if record.status is not Status.PROMOTING or not owned_by(record, outcome.execution):
            # e.g. a duplicate execution's error: the owner's promotion must not be ended by it
            logger.error(
                "a promotion this execution does not own failed; the version is left as it is",
                extra={"model": outcome.name, "version": outcome.version, "error": reason},
            )
            return OutcomeResult(status=record.status.value)
        if record.promotion and record.promotion.rollback:
            target, reason = Status.RETIRED, f"rollback failed, production unchanged: {reason}"
        else:
            target, reason = Status.FAILED, f"promotion failed, production unchanged: {reason}"
        moved = self._tracker.move(outcome.name, outcome.version, target, ACTOR, reason)
        return OutcomeResult(status=moved.record.status.value)
