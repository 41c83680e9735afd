"""DeployModel stage WarmStaging: load, smoke-test and time the model on the staging MME."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.deploy_model.stage_io import WarmInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    warm = WarmInput.model_validate(event)
    logger.append_keys(model=warm.name, version=warm.version)
    result = stage_composition.warm_staging().run(warm)
    metrics.add_metric(name="ColdLoadTime", unit=MetricUnit.Milliseconds, value=result.cold_load_ms)
    metrics.add_metric(name="WarmLatencyP50", unit=MetricUnit.Milliseconds, value=result.warm_p50_ms)
    return result.model_dump(mode="json")
