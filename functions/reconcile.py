"""Versions whose execution ended without reaching its recording state: one execution at a time
from Step Functions' "Execution Status Change" events (FAILED, TIMED_OUT, ABORTED), and every
version in progress on a schedule ("Scheduled Event"), for whatever an event missed — and, on
the same schedule, uploads to the staging bucket the registry never heard of."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import composition
from chalicelib.adapters.executions import ExecutionState
from functions.observability import logger, metrics

SCHEDULED = "Scheduled Event"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("detail-type") == SCHEDULED:
        report = composition.sweep().run()
        metrics.add_metric(name="VersionsSwept", unit=MetricUnit.Count, value=len(report.ended))
        heard = composition.unheard_uploads().run()
        metrics.add_metric(name="UnheardUploadsRegistered", unit=MetricUnit.Count, value=len(heard.registered))
        return {
            **report.model_dump(),
            **heard.model_dump(include={"registered"}),
            "failed": report.failed + heard.failed,
        }
    change = ExecutionState.model_validate(event["detail"])
    logger.append_keys(execution=change.executionArn, execution_status=change.status)
    result = composition.execution_ended().run(change)
    return {"status": result.status if result else None}
