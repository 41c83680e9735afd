"""DeployModel stage RequestApproval (a ``.waitForTaskToken`` task): token stored, Slack asked."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.deploy_model.stage_io import ApprovalRequest
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(event)
    logger.append_keys(model=request.name, version=request.version)
    approval_id = stage_composition.request_approval().run(request)
    metrics.add_metric(name="ApprovalsRequested", unit=MetricUnit.Count, value=1)
    return {"approval_id": approval_id}
