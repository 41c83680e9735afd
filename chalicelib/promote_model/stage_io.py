"""The PromoteModel state machine's data (pydantic at the boundary; the ASL places it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.stages.stage_io import StageError


class PromotionStep(BaseModel):
    name: str
    version: str
    execution: str  # $$.Execution.Id: only the execution that began the promotion may go on with it


class PrepareInput(PromotionStep):
    requested_by: str = "unknown"  # the lifecycle event's actor (the approver, or the admin)
    # RolloutRequested's: the rollout's own options ({} for none); absent or null for the others
    rollout: RolloutOverrides | None = None


class PrepareResult(BaseModel):
    started: bool  # False: nothing to do (a duplicate event, or another execution owns it)
    reason: str = ""
    alias_revision: int = 0
    rollback: bool = False
    copied: bool = False
    rollout: bool = False  # canary steps judged by gates come before the flip


class RolloutStepResult(BaseModel):
    """What the state machine does after a RolloutStep: wait ``wait_seconds`` and call it again,
    flip the alias (every canary step passed), or end (the rollout was rolled back)."""

    action: Literal["wait", "promote", "rolled_back"]
    wait_seconds: int = 0
    step: int = -1
    weight: float = 0.0
    reason: str = ""


class FlipInput(PromotionStep):
    alias_revision: int
    rollback: bool


class FlipResult(BaseModel):
    version: str
    replaced: str | None
    alias_revision: int


class RecordPromotionOutcomeInput(PromotionStep):
    error: StageError
