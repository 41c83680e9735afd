"""RecordApproval: the approval came back (SendTaskSuccess): the version is APPROVED, with the
decider as the history's actor. The ModelApproved event this publishes starts PromoteModel."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.domain.approvals import ApprovalDecision
from chalicelib.domain.lifecycle import Status
from chalicelib.stages.stage_io import StageResult
from chalicelib.stages.tracker import LifecycleTracker


class RecordApprovalInput(BaseModel):
    name: str
    version: str
    decision: ApprovalDecision


class RecordApproval:
    def __init__(self, tracker: LifecycleTracker) -> None:
        self._tracker = tracker

    def run(self, approved: RecordApprovalInput) -> StageResult:
        decision = approved.decision
        moved = self._tracker.move(
            approved.name,
            approved.version,
            Status.APPROVED,
            decision.decided_by,
            f"approved by {decision.decided_by} at {decision.decided_at} (approval {decision.approval_id})",
        )
        return StageResult(status=moved.record.status.value)
