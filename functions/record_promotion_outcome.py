"""PromoteModel's Catch target: the alias is untouched; the version ends FAILED (or, for a
rollback, RETIRED again) with the reason."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import stage_composition
from chalicelib.promote_model.stage_io import RecordPromotionOutcomeInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = RecordPromotionOutcomeInput.model_validate(event)
    logger.append_keys(model=outcome.name, version=outcome.version)
    result = stage_composition.record_promotion_outcome().run(outcome)
    metrics.add_metric(name="PromotionFailures", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
