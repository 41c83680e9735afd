"""DeployModel stage RecordApproval: the decision came back approved; the version is APPROVED."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.deploy_model.record_approval import RecordApprovalInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    approved = RecordApprovalInput.model_validate(event)
    logger.append_keys(model=approved.name, version=approved.version, decided_by=approved.decision.decided_by)
    result = stage_composition.record_approval().run(approved)
    metrics.add_metric(name="Approvals", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
