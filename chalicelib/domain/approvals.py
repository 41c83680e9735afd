"""An approval: the request a staged version waits on, and the one decision a person makes on it.

The decision is claimed once in the registry; an approval resumes the waiting DeployModel task
with :class:`ApprovalDecision`, a decline fails it with the error :data:`DECLINED_ERROR`, which
RecordOutcome maps to DECLINED.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, field_validator

# The error SendTaskFailure hands the waiting task when the decision is a decline.
DECLINED_ERROR = "ApprovalDeclined"
# What a claimed decision becomes when the task had stopped waiting before it came.
EXPIRED_DECISION = "expired"
# The decline's name (its button's action_id, its stored decision) before it matched DECLINED.
FORMER_DECLINE = "reject"


class Decision(StrEnum):
    """What an approver decides (the Slack button's action_id, the CLI's command)."""

    APPROVE = "approve"
    DECLINE = "decline"

    @property
    def past(self) -> str:
        return "approved" if self is Decision.APPROVE else "declined"


class ApprovalDecision(BaseModel):
    """What SendTaskSuccess hands the execution (RequestApproval's result)."""

    decision: Decision
    decided_by: str
    approval_id: str
    decided_at: str


class PendingApproval(BaseModel):
    approval_id: str
    name: str
    version: str
    task_token: str
    requested_at: str
    slack_channel: str | None = None
    slack_ts: str | None = None  # the approval message, updated with the outcome
    decision: str | None = None  # "approve" | "decline", claimed once; "expired" if too late
    decided_by: str | None = None
    decided_at: str | None = None

    @field_validator("decision")
    @classmethod
    def _former_decline(cls, value: str | None) -> str | None:
        # Approvals declined before the rename stored "reject": they read as declined.
        return Decision.DECLINE.value if value == FORMER_DECLINE else value
