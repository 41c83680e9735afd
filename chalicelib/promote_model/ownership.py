"""Only the PromoteModel execution that moved a version to PROMOTING may go on with it."""

from __future__ import annotations

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion


class NotOwned(Exception):
    """Another execution owns this version's promotion (or none does any more)."""


def owned_by(record: ModelVersion, execution: str) -> bool:
    return record.promotion is not None and record.promotion.execution_arn == execution


def require_owned(record: ModelVersion, execution: str) -> None:
    if record.status is not Status.PROMOTING or not owned_by(record, execution):
        owner = record.promotion.execution_arn if record.promotion else "none"
        raise NotOwned(f"{record.name} {record.version} is {record.status.value}, promotion owned by {owner}")
