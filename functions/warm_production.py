"""PromoteModel stage WarmProduction: load, smoke-test and time the model on the production MME."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.promote_model.stage_io import PromotionStep
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = PromotionStep.model_validate(event)
    logger.append_keys(model=step.name, version=step.version)
    result = stage_composition.warm_production().run(step)
    metrics.add_metric(name="ProductionColdLoadTime", unit=MetricUnit.Milliseconds, value=result.cold_load_ms)
    metrics.add_metric(name="ProductionWarmLatencyP50", unit=MetricUnit.Milliseconds, value=result.warm_p50_ms)
    return result.model_dump(mode="json")
