"""RecordOutcome: every Catch of DeployModel ends here, so no version is left in progress.

Maps the caught error to the version's ending: the approval timeout is EXPIRED, a decline
DECLINED, anything else FAILED with the error's own message as the reason.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib.deploy_model.stage_io import RecordOutcomeInput
from chalicelib.domain.lifecycle import Status, may_move
from chalicelib.domain.records import ModelVersion
from chalicelib.stages.stage_io import StageError, StageResult, cause_message, failure_reason
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/record-outcome"
TIMEOUTS = {"States.Timeout", "States.HeartbeatTimeout"}
DECLINED = "ApprovalDeclined"  # the error the Slack webhook sends with SendTaskFailure


class RecordOutcome:
    def __init__(self, tracker: LifecycleTracker) -> None:
        self._tracker = tracker

    def run(self, outcome: RecordOutcomeInput) -> StageResult:
        record = self._tracker.registry.get(outcome.name, outcome.version)
        target, reason = ending(outcome.error)
        if record.execution_arn and record.execution_arn != outcome.execution:
            # An execution for a later upload of a registered version (see Validate) failed:
            # that must not end the version another execution owns.
            logger.error(
                "a later upload's execution failed; the version is left as it is",
                extra={"model": outcome.name, "version": outcome.version, "error": reason},
            )
            return StageResult(status=record.status.value)
        if not may_move(record.status, target):
            if target is not Status.FAILED and may_move(record.status, Status.FAILED):
                # e.g. a stage's own States.Timeout before any approval was asked for
                target, reason = Status.FAILED, failure_reason(outcome.error)
            else:  # already ended (e.g. the error came after the version was decided)
                return StageResult(status=record.status.value)
        actor = ACTOR
        if target is Status.DECLINED:
            actor, reason = self._decline(record, reason)
        moved = self._tracker.move(outcome.name, outcome.version, target, actor, reason)
        return StageResult(status=moved.record.status.value)

    def _decline(self, record: ModelVersion, reason: str) -> tuple[str, str]:
        """Who declined, from the decision the gate claimed in the registry (the source of truth;
        SendTaskFailure's cause may not arrive)."""
        approval = self._tracker.approvals.find_approval(record.approval_id) if record.approval_id else None
        if approval is None or not approval.decided_by:
            return ACTOR, reason
        return approval.decided_by, (
            f"declined by {approval.decided_by} at {approval.decided_at} (approval {approval.approval_id})"
        )


def ending(error: StageError) -> tuple[Status, str]:
    message = cause_message(error.Cause)
    if error.Error in TIMEOUTS:
        return Status.EXPIRED, "no approval decision before the approval timeout"
    if error.Error == DECLINED:
        return Status.DECLINED, message or "declined"
    return Status.FAILED, failure_reason(error)
