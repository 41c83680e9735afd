"""PromoteModel stage PreparePromotion: claim the version (PROMOTING) and copy it to production."""

from __future__ import annotations

from typing import Any

from chalicelib import stage_composition
from chalicelib.promote_model.stage_io import PrepareInput
from functions.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = PrepareInput.model_validate(event)
    logger.append_keys(model=step.name, version=step.version)
    return stage_composition.prepare_promotion().run(step).model_dump(mode="json")
