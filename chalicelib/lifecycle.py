"""A model version's lifecycle: its statuses, the moves between them, and their event names.

The registry enforces these moves with conditional writes, so two handlers racing on one version
can never move it backwards; repeating a move that already happened is a no-op (at-least-once
delivery makes repeats normal).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    RECEIVED = "RECEIVED"
    VALIDATING = "VALIDATING"
    REJECTED = "REJECTED"
    VALIDATED = "VALIDATED"
    WARMING = "WARMING"
    STAGED = "STAGED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    EXPIRED = "EXPIRED"
    PROMOTING = "PROMOTING"
    PRODUCTION = "PRODUCTION"
    RETIRED = "RETIRED"
    FAILED = "FAILED"


S = Status

# status -> the statuses it may be entered from
ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    S.RECEIVED: frozenset(),  # only created
    S.VALIDATING: frozenset({S.RECEIVED}),
    S.REJECTED: frozenset({S.RECEIVED, S.VALIDATING}),
    S.VALIDATED: frozenset({S.VALIDATING}),
    S.WARMING: frozenset({S.VALIDATED}),
    S.STAGED: frozenset({S.WARMING}),
    S.AWAITING_APPROVAL: frozenset({S.STAGED}),
    S.APPROVED: frozenset({S.AWAITING_APPROVAL}),
    S.DECLINED: frozenset({S.AWAITING_APPROVAL}),
    S.EXPIRED: frozenset({S.AWAITING_APPROVAL}),
    S.PROMOTING: frozenset({S.APPROVED}),
    S.PRODUCTION: frozenset({S.PROMOTING, S.RETIRED}),  # RETIRED -> PRODUCTION is a rollback
    S.RETIRED: frozenset({S.PRODUCTION}),
    S.FAILED: frozenset(
        {S.RECEIVED, S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING}
    ),
}

# Where a version's deployment ends. RETIRED and PRODUCTION are not "in progress" either: a
# DeployModel execution is over once a version reaches any of these.
TERMINAL = frozenset({S.REJECTED, S.DECLINED, S.EXPIRED, S.FAILED, S.RETIRED})
SETTLED = TERMINAL | {S.AWAITING_APPROVAL, S.APPROVED, S.PRODUCTION}

# The lifecycle event (detail-type on the mmedeploy-lifecycle bus) each status is announced by.
EVENT_FOR_STATUS: dict[Status, str] = {
    S.RECEIVED: "ModelReceived",
    S.VALIDATING: "ValidationStarted",
    S.REJECTED: "ModelRejected",
    S.VALIDATED: "ModelValidated",
    S.WARMING: "WarmingStarted",
    S.STAGED: "ModelWarmed",
    S.AWAITING_APPROVAL: "ApprovalRequested",
    S.APPROVED: "ModelApproved",
    S.DECLINED: "ModelDeclined",
    S.EXPIRED: "ApprovalExpired",
    S.PROMOTING: "PromotionStarted",
    S.PRODUCTION: "ModelPromoted",
    S.RETIRED: "ModelRetired",
    S.FAILED: "DeploymentFailed",
}


def may_move(current: Status, target: Status) -> bool:
    return current in ALLOWED_FROM[target]
