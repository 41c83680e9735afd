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
    ROLLED_BACK = "ROLLED_BACK"


S = Status

# status -> the statuses it may be entered from
ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    # created, or started again by a redeploy (the same artifact, a fresh DeployModel)
    S.RECEIVED: frozenset({S.FAILED, S.EXPIRED}),
    S.VALIDATING: frozenset({S.RECEIVED}),
    S.REJECTED: frozenset({S.RECEIVED, S.VALIDATING}),
    S.VALIDATED: frozenset({S.VALIDATING}),
    S.WARMING: frozenset({S.VALIDATED}),
    S.STAGED: frozenset({S.WARMING}),
    S.AWAITING_APPROVAL: frozenset({S.STAGED}),
    S.APPROVED: frozenset({S.AWAITING_APPROVAL}),
    S.DECLINED: frozenset({S.AWAITING_APPROVAL}),
    S.EXPIRED: frozenset({S.AWAITING_APPROVAL}),
    # RETIRED -> PROMOTING is a rollback: the earlier version is copied (a no-op) and warmed again;
    # FAILED -> PROMOTING, an approved version whose promotion failed (the alias never moved to it)
    # asked for again (chalicelib/promote_model/ownership.py says which FAILED ones)
    S.PROMOTING: frozenset({S.APPROVED, S.RETIRED, S.FAILED}),
    S.PRODUCTION: frozenset({S.PROMOTING}),  # only through the alias flip, after warming
    # PROMOTING -> RETIRED: a rollback that could not warm leaves the version as it was
    S.RETIRED: frozenset({S.PRODUCTION, S.PROMOTING}),
    S.FAILED: frozenset(
        {S.RECEIVED, S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING}
    ),
    # a rollout (a PROMOTING version taking canary steps) its gates or an admin ended: the canary
    # is removed and production never changed
    S.ROLLED_BACK: frozenset({S.PROMOTING}),
}

# -- the groupings: every set of statuses the code decides on is defined here, and only here ------
# Where a version's deployment ends. RETIRED and PRODUCTION are not "in progress" either: a
# DeployModel execution is over once a version reaches any of these.
TERMINAL = frozenset({S.REJECTED, S.DECLINED, S.EXPIRED, S.FAILED, S.RETIRED, S.ROLLED_BACK})
# Where a version waits for nobody but people (or is over): `status --watch` stops here.
SETTLED = TERMINAL | {S.AWAITING_APPROVAL, S.APPROVED, S.PRODUCTION}
# Still moving through a state machine (`mmedeploy status` shows these in progress).
IN_PROGRESS = frozenset(Status) - SETTLED
# Where an execution owns the version (DeployModel until a decision, PromoteModel while PROMOTING):
# the reconciler's sweep checks each against its execution.
EXECUTION_OWNED = IN_PROGRESS | {S.AWAITING_APPROVAL}
# What a redeploy may start again (chalicelib/deploy_model/redeploy.py says which FAILED ones).
REDEPLOYABLE = frozenset({S.FAILED, S.EXPIRED})
# Where a deployment ends without a version to use: `status --watch` exits 1 on these.
FAILURE = frozenset({S.REJECTED, S.FAILED, S.EXPIRED, S.DECLINED, S.ROLLED_BACK})

# Where a pinned version is served (the inference routes): staged versions from the staging MME
# (where they were warmed), promoted ones from the production MME. Others (rejected, failed,
# declined, expired, or still in the pipeline) do not serve.
ON_STAGING = frozenset({S.STAGED, S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING})
ON_PRODUCTION = frozenset({S.PRODUCTION, S.RETIRED})
SERVING = ON_STAGING | ON_PRODUCTION
# A canary candidate: staged and warm, not yet promoted.
CANARY_CANDIDATES = frozenset({S.STAGED, S.AWAITING_APPROVAL, S.APPROVED})
# What PromoteModel may start from: APPROVED (a promotion) or RETIRED (a rollback, or a promotion
# requested again through the admin API); and a FAILED version whose promotion failed, requested
# again (chalicelib/promote_model/ownership.py may_claim).
PROMOTABLE = frozenset({S.APPROVED, S.RETIRED})
# Once decided, the approval message shows where the version stands instead of its buttons.
AFTER_DECISION = frozenset({S.APPROVED, S.DECLINED, S.EXPIRED, S.PROMOTING, S.PRODUCTION, S.FAILED, S.ROLLED_BACK})

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
    S.ROLLED_BACK: "RolloutAborted",
}


# Not status changes of their own: a rollback's PRODUCTION is announced as ModelRolledBack, and an
# admin's promotion request (the API) as PromotionRequested; both start PromoteModel.
MODEL_ROLLED_BACK = "ModelRolledBack"
PROMOTION_REQUESTED = "PromotionRequested"
# Progressive delivery (a mode of PromoteModel): an admin's rollout request starts PromoteModel as
# PromotionRequested does; a rollout's PRODUCTION is announced as RolloutCompleted; each canary step
# is announced, without a status change, as RolloutStepStarted and each passed gate reading that
# ends a step as RolloutGatePassed (an ended rollout is ROLLED_BACK's RolloutAborted).
ROLLOUT_REQUESTED = "RolloutRequested"
ROLLOUT_COMPLETED = "RolloutCompleted"
ROLLOUT_STEP_STARTED = "RolloutStepStarted"
ROLLOUT_GATE_PASSED = "RolloutGatePassed"


def may_move(current: Status, target: Status) -> bool:
    return current in ALLOWED_FROM[target]
