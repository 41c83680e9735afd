"""DeployModel stage Validate: the uploaded tarball through the validator, findings recorded."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.deploy_model.stage_io import DeploymentInput, ValidationVerdict
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deployment = DeploymentInput.model_validate(event)
    logger.append_keys(model=deployment.name, version=deployment.version)
    result = stage_composition.validate().run(deployment)
    if result.validation_ms is not None:
        metrics.add_metric(name="ValidationDuration", unit=MetricUnit.Milliseconds, value=result.validation_ms)
    if result.outcome in (ValidationVerdict.REJECTED, ValidationVerdict.REFUSED):
        metrics.add_metric(name="Rejections", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
