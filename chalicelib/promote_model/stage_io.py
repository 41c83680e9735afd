"""The PromoteModel state machine's data (pydantic at the boundary; the ASL places it)."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.stages.stage_io import StageError


class PromotionStep(BaseModel):
    name: str
    version: str
    execution: str  # $$.Execution.Id: only the execution that began the promotion may go on with it


class PrepareInput(PromotionStep):
    requested_by: str = "unknown"  # the lifecycle event's actor (the approver, or the admin)


class PrepareResult(BaseModel):
    started: bool  # False: nothing to do (a duplicate event, or another execution owns it)
    reason: str = ""
    alias_revision: int = 0
    rollback: bool = False
    copied: bool = False


class FlipInput(PromotionStep):
    alias_revision: int
    rollback: bool


class FlipResult(BaseModel):
    version: str
    replaced: str | None
    alias_revision: int


class RecordPromotionOutcomeInput(PromotionStep):
    error: StageError
