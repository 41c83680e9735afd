"""PromoteModel stage FlipAlias: the warm version becomes production, the one before RETIRED."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.promote_model.stage_io import FlipInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = FlipInput.model_validate(event)
    logger.append_keys(model=step.name, version=step.version)
    result = stage_composition.flip_alias().run(step)
    metrics.add_metric(name="Rollbacks" if step.rollback else "Promotions", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
