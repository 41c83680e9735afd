"""DeployModel's Catch target: the version ends REJECTED, FAILED, EXPIRED or DECLINED with a reason."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.deploy_model.stage_io import RecordOutcomeInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = RecordOutcomeInput.model_validate(event)
    logger.append_keys(model=outcome.name, version=outcome.version)
    result = stage_composition.record_outcome().run(outcome)
    metrics.add_metric(name=f"Deployments{result.status.title()}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
