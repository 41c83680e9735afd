"""ApprovalGate: one decision per approval request, whoever clicks and however often.

The decision is claimed in the registry first (a conditional write), then the waiting task is
resumed; the version's status moves when the execution goes on (RecordApproval, or RecordOutcome
for a decline), so the answer here is fast and the registry's history names the decider.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.adapters.step_functions import TaskCallback, TaskGone
from chalicelib.domain.approvals import DECLINED_ERROR, EXPIRED_DECISION, ApprovalDecision, Decision, PendingApproval
from chalicelib.domain.errors import AlreadyDecided
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion


class GateVerdict(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    NOT_AWAITING = "not_awaiting"
    UNDELIVERABLE = "undeliverable"  # the task is gone for a reason other than its timeout
    UNKNOWN_APPROVAL = "unknown_approval"
    FORBIDDEN = "forbidden"
    INVALID_SIGNATURE = "invalid_signature"
    MALFORMED = "malformed"


class GateAnswer(BaseModel):
    ok: bool
    outcome: GateVerdict
    text: str
    name: str | None = None
    version: str | None = None
    status: Status | None = None


class ApprovalGate:
    def __init__(
        self,
        registry: VersionStore,
        approvals: ApprovalStore,
        callback: TaskCallback,
        reconcile: Callable[[ModelVersion], ModelVersion],
    ) -> None:
        """``reconcile`` brings a version in line with its execution (the sweep's check): a
        decision that finds its task gone ends the version there and then, and says so."""
        self._registry = registry
        self._approvals = approvals
        self._callback = callback
        self._reconcile = reconcile

    def decide(self, approval_id: str, decision: Decision, actor: str) -> GateAnswer:
        approval = self._approvals.find_approval(approval_id)
        if approval is None:
            return GateAnswer(
                ok=False, outcome=GateVerdict.UNKNOWN_APPROVAL, text=f"there is no approval request {approval_id}"
            )
        record = self._registry.find(approval.name, approval.version)
        if record is None:
            return GateAnswer(
                ok=False,
                outcome=GateVerdict.UNKNOWN_APPROVAL,
                text=f"{approval.name} {approval.version} is not registered",
            )
        if approval.decision:
            return _already(approval, record)
        if record.status is not Status.AWAITING_APPROVAL or record.approval_id != approval_id:
            return _not_awaiting(approval, record)
        try:
            claimed = self._approvals.claim_decision(approval_id, decision.value, actor)
        except AlreadyDecided as exc:
            return _already(exc.approval, record)
        try:
            self._resume(claimed, decision, actor)
        except TaskGone as gone:
            return self._gone(approval_id, record, actor, gone)
        except Exception:
            # Nothing was resumed: free the claim so a click can be retried, then report the error.
            self._approvals.release_decision(approval_id, actor)
            raise
        if decision is Decision.APPROVE:
            return _answer(
                record,
                True,
                GateVerdict.APPROVED,
                f"{record.name} {record.version} approved by {actor}; promotion to production starts",
            )
        return _answer(record, True, GateVerdict.DECLINED, f"{record.name} {record.version} declined by {actor}")

    def _gone(self, approval_id: str, record: ModelVersion, actor: str, gone: TaskGone) -> GateAnswer:
        """Nothing was decided: say why, truthfully, and what became of the version."""
        if gone.timed_out:
            self._approvals.mark_approval_expired(approval_id, actor)
            return _answer(
                record,
                False,
                GateVerdict.EXPIRED,
                f"too late: the approval request for {record.name} {record.version} had already timed out; "
                "nothing changed",
            )
        self._approvals.release_decision(approval_id, actor)
        after = self._reconcile(record)
        now = f"it is {after.status.value}" + (f" ({after.reason})" if after.status is not record.status else "")
        return _answer(
            after,
            False,
            GateVerdict.UNDELIVERABLE,
            f"the decision on {record.name} {record.version} could not be delivered: its deployment no longer "
            f"waits for it ({gone}); nothing was decided; {now}",
        )

    def _resume(self, approval: PendingApproval, decision: Decision, actor: str) -> None:
        if decision is Decision.APPROVE:
            output = ApprovalDecision(
                decision=decision,
                decided_by=actor,
                approval_id=approval.approval_id,
                decided_at=approval.decided_at or "",
            )
            self._callback.succeed(approval.task_token, output.model_dump(mode="json"))
        else:
            message = f"declined by {actor} (approval {approval.approval_id})"
            self._callback.fail(approval.task_token, DECLINED_ERROR, {"errorMessage": message, "decided_by": actor})


def _answer(record: ModelVersion, ok: bool, outcome: GateVerdict, text: str) -> GateAnswer:
    return GateAnswer(ok=ok, outcome=outcome, text=text, name=record.name, version=record.version, status=record.status)


def _already(approval: PendingApproval, record: ModelVersion) -> GateAnswer:
    if approval.decision == EXPIRED_DECISION:
        return _answer(
            record, False, GateVerdict.EXPIRED, f"the approval request for {record.name} {record.version} has expired"
        )
    verb = Decision.APPROVE.past if approval.decision == Decision.APPROVE else Decision.DECLINE.past
    return _answer(
        record,
        False,
        GateVerdict.ALREADY_DECIDED,
        f"{record.name} {record.version} was already {verb} by {approval.decided_by} at {approval.decided_at}; "
        f"it is {record.status.value}",
    )


def _not_awaiting(approval: PendingApproval, record: ModelVersion) -> GateAnswer:
    if record.status is Status.EXPIRED:
        return _answer(
            record,
            False,
            GateVerdict.EXPIRED,
            f"the approval request for {record.name} {record.version} expired at {record.updated_at}; "
            "nothing changed (upload a new version to ask again)",
        )
    if record.status is Status.AWAITING_APPROVAL:
        why = f"this request was superseded by {record.approval_id}"
    else:
        why = f"it is {record.status.value} since {record.updated_at}"
        if record.reason:
            why += f" ({record.reason})"
    return _answer(
        record,
        False,
        GateVerdict.NOT_AWAITING,
        f"{record.name} {record.version} no longer waits for this approval: {why}; nothing changed",
    )
