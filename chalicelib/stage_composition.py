"""Builds the stage Lambdas' services (DeployModel and PromoteModel), once per Lambda container,
from the pieces :mod:`chalicelib.composition` makes (settings, clients, registry, tracker, artifact store).

Apart from :mod:`chalicelib.composition` so that the Chalice app never imports the validator, the
warm-up or their dependencies: only ``functions/`` imports this module. Each builder imports its own
stage, so a stage Lambda's cold start loads that stage's dependencies only (the validator, Slack's
client and the warm-up are each ~25-45 ms of import that most stages never use).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from botocore.config import Config

from chalicelib.adapters.endpoint_invoker import EndpointInvoker
from chalicelib.composition import artifact_store, client, notifier, settings, tracker

if TYPE_CHECKING:
    from chalicelib.deploy_model.record_approval import RecordApproval
    from chalicelib.deploy_model.record_outcome import RecordOutcome
    from chalicelib.deploy_model.request_approval import RequestApproval
    from chalicelib.deploy_model.validate import Validate
    from chalicelib.deploy_model.warm_staging import WarmStaging
    from chalicelib.promote_model.flip_alias import FlipAlias
    from chalicelib.promote_model.prepare_promotion import PreparePromotion
    from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome
    from chalicelib.promote_model.rollout import RolloutStep
    from chalicelib.promote_model.warm_production import WarmProduction

# InvokeEndpoint may take 60 s; ModelNotReady is retried by EndpointInvoker, not botocore.
RUNTIME_CONFIG = Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 3})


def endpoint_invoker(endpoint: str) -> EndpointInvoker:
    return EndpointInvoker(
        client("sagemaker-runtime", RUNTIME_CONFIG), endpoint, load_timeout_s=settings().warm_load_timeout_s
    )


# -- DeployModel ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def validate() -> Validate:
    from chalicelib.deploy_model.validate import Validate

    return Validate(tracker(), artifact_store(), triton_version=settings().deployed_triton)


@lru_cache(maxsize=1)
def warm_staging() -> WarmStaging:
    from chalicelib.deploy_model.warm_staging import WarmStaging

    return WarmStaging(tracker(), endpoint_invoker(settings().staging_endpoint), settings().warm_requests)


@lru_cache(maxsize=1)
def request_approval() -> RequestApproval:
    from chalicelib.deploy_model.request_approval import RequestApproval

    return RequestApproval(tracker(), notifier())


@lru_cache(maxsize=1)
def record_outcome() -> RecordOutcome:
    from chalicelib.deploy_model.record_outcome import RecordOutcome

    return RecordOutcome(tracker())


@lru_cache(maxsize=1)
def record_approval() -> RecordApproval:
    from chalicelib.deploy_model.record_approval import RecordApproval

    return RecordApproval(tracker())


# -- PromoteModel ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def prepare_promotion() -> PreparePromotion:
    from chalicelib.promote_model.prepare_promotion import PreparePromotion

    # the policy's deployment layer is read here, so a bad Rollout* setting fails this stage with
    # the reason (the version FAILED, promotable again), never the inference API
    return PreparePromotion(
        tracker(), artifact_store(), settings().production_bucket, lambda: settings().rollout_defaults
    )


@lru_cache(maxsize=1)
def warm_production() -> WarmProduction:
    from chalicelib.promote_model.warm_production import WarmProduction

    return WarmProduction(
        tracker(),
        artifact_store(),
        endpoint_invoker(settings().production_endpoint),
        settings().production_bucket,
        settings().warm_requests,
    )


@lru_cache(maxsize=1)
def rollout_step() -> RolloutStep:
    from chalicelib.adapters.version_metrics import VersionMetrics
    from chalicelib.promote_model.rollout import RolloutStep

    return RolloutStep(tracker(), VersionMetrics(client("cloudwatch")))


@lru_cache(maxsize=1)
def flip_alias() -> FlipAlias:
    from chalicelib.promote_model.flip_alias import FlipAlias

    return FlipAlias(tracker())


@lru_cache(maxsize=1)
def record_promotion_outcome() -> RecordPromotionOutcome:
    from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome

    return RecordPromotionOutcome(tracker())
