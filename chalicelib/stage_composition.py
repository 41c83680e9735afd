"""Builds the stage Lambdas' services (DeployModel and PromoteModel), once per Lambda container,
from the pieces :mod:`chalicelib.composition` makes (settings, clients, registry, tracker).

Apart from :mod:`chalicelib.composition` so that the Chalice app never imports the validator, the
warm-up or their dependencies: only ``functions/`` imports this module. Each builder imports its own
stage, so a stage Lambda's cold start loads that stage's dependencies only (the validator, Slack's
client and the warm-up are each ~25-45 ms of import that most stages never use).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from botocore.config import Config

from chalicelib.artifact_store import ArtifactStore
from chalicelib.composition import client, notifier, settings, tracker
from chalicelib.endpoint_invoker import EndpointInvoker

if TYPE_CHECKING:
    from chalicelib.pipeline.approval_stage import ApprovalStage
    from chalicelib.pipeline.outcome_stage import OutcomeStage
    from chalicelib.pipeline.record_approval_stage import RecordApprovalStage
    from chalicelib.pipeline.validate_stage import ValidateStage
    from chalicelib.pipeline.warm_stage import WarmStage
    from chalicelib.promotion.flip_stage import FlipAlias
    from chalicelib.promotion.outcome_stage import PromotionOutcome
    from chalicelib.promotion.prepare_stage import PreparePromotion
    from chalicelib.promotion.warm_production_stage import WarmProduction

# InvokeEndpoint may take 60 s; ModelNotReady is retried by EndpointInvoker, not botocore.
RUNTIME_CONFIG = Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 3})


def endpoint_invoker(endpoint: str) -> EndpointInvoker:
    return EndpointInvoker(
        client("sagemaker-runtime", RUNTIME_CONFIG), endpoint, load_timeout_s=settings().warm_load_timeout_s
    )


@lru_cache(maxsize=1)
def artifact_store() -> ArtifactStore:
    return ArtifactStore(client("s3"))


# -- DeployModel ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def validate_stage() -> ValidateStage:
    from chalicelib.pipeline.validate_stage import ValidateStage

    return ValidateStage(tracker(), artifact_store())


@lru_cache(maxsize=1)
def warm_stage() -> WarmStage:
    from chalicelib.pipeline.warm_stage import WarmStage

    return WarmStage(tracker(), endpoint_invoker(settings().staging_endpoint), settings().warm_requests)


@lru_cache(maxsize=1)
def approval_stage() -> ApprovalStage:
    from chalicelib.pipeline.approval_stage import ApprovalStage

    return ApprovalStage(tracker(), notifier())


@lru_cache(maxsize=1)
def outcome_stage() -> OutcomeStage:
    from chalicelib.pipeline.outcome_stage import OutcomeStage

    return OutcomeStage(tracker())


@lru_cache(maxsize=1)
def record_approval_stage() -> RecordApprovalStage:
    from chalicelib.pipeline.record_approval_stage import RecordApprovalStage

    return RecordApprovalStage(tracker())


# -- PromoteModel ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def prepare_promotion() -> PreparePromotion:
    from chalicelib.promotion.prepare_stage import PreparePromotion

    return PreparePromotion(tracker(), artifact_store(), settings().production_bucket)


@lru_cache(maxsize=1)
def warm_production() -> WarmProduction:
    from chalicelib.promotion.warm_production_stage import WarmProduction

    return WarmProduction(
        tracker(),
        artifact_store(),
        endpoint_invoker(settings().production_endpoint),
        settings().production_bucket,
        settings().warm_requests,
    )


@lru_cache(maxsize=1)
def flip_alias() -> FlipAlias:
    from chalicelib.promotion.flip_stage import FlipAlias

    return FlipAlias(tracker())


@lru_cache(maxsize=1)
def promotion_outcome() -> PromotionOutcome:
    from chalicelib.promotion.outcome_stage import PromotionOutcome

    return PromotionOutcome(tracker())
