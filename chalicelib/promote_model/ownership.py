"""Which versions PromoteModel may claim, and only the PromoteModel execution that moved a version
to PROMOTING may go on with it."""

from __future__ import annotations

from chalicelib.domain.lifecycle import PROMOTABLE, Status
from chalicelib.domain.records import ModelVersion


class NotOwned(Exception):
    """Another execution owns this version's promotion (or none does any more)."""


def owned_by(record: ModelVersion, execution: str) -> bool:
    return record.promotion is not None and record.promotion.execution_arn == execution


def require_owned(record: ModelVersion, execution: str) -> None:
    if record.status is not Status.PROMOTING or not owned_by(record, execution):
        owner = record.promotion.execution_arn if record.promotion else "none"
        raise NotOwned(f"{record.name} {record.version} is {record.status.value}, promotion owned by {owner}")


def promotion_failed(record: ModelVersion) -> bool:
    """FAILED by its own promotion: approved, then ended by PromoteModel without the alias moving to
    it (a production warm-up that failed, a concurrent promotion that won, an execution stopped or
    lost). The approval stands, so a promotion may be asked for again. (A redeploy clears
    ``promotion``: a deployment's own failure never counts.)"""
    return record.status is Status.FAILED and record.promotion is not None


def may_claim(record: ModelVersion) -> bool:
    """What PromoteModel may move to PROMOTING: APPROVED, RETIRED (a rollback, or a promotion asked
    for again), or a version whose promotion failed."""
    return record.status in PROMOTABLE or promotion_failed(record)
