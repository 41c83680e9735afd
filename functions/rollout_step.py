"""PromoteModel stage RolloutStep: begin a rollout's next canary step, or read its gates (see
chalicelib/promote_model/rollout.py)."""

from __future__ import annotations

from typing import Any

from chalicelib import stage_composition
from chalicelib.promote_model.stage_io import PromotionStep
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = PromotionStep.model_validate(event)
    logger.append_keys(model=step.name, version=step.version)
    return stage_composition.rollout_step().run(step).model_dump(mode="json")
