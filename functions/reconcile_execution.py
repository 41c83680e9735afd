"""An ended DeployModel or PromoteModel execution (EventBridge: Step Functions "Execution Status
Change", FAILED, TIMED_OUT or ABORTED) ends its version if nothing else did."""

from __future__ import annotations

from typing import Any

from chalicelib import stage_composition
from chalicelib.execution_ended import ExecutionStatusChange
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event["detail"])
    logger.append_keys(execution=change.executionArn, execution_status=change.status)
    result = stage_composition.execution_ended().run(change)
    return {"status": result.status if result else None}
