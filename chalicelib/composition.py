"""Builds the services from the settings, once per Lambda container (lazily, so importing a
handler needs no AWS and tests can build their own). The only place clients are made."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config
from slack_sdk import WebClient

from chalicelib.api_tokens import ApiTokens
from chalicelib.approval.gate import ApprovalGate
from chalicelib.approval.slack_interactions import SlackInteractions
from chalicelib.approval.task_callback import TaskCallback
from chalicelib.artifact_store import ArtifactStore
from chalicelib.deployment_starter import DeploymentStarter
from chalicelib.endpoint_invoker import EndpointInvoker
from chalicelib.inference.canary import CanaryRequests
from chalicelib.inference.catalog import ModelCatalog
from chalicelib.inference.model_metrics import ModelMetrics
from chalicelib.inference.proxy import InferenceProxy
from chalicelib.inference.routing import Router
from chalicelib.inference.runtime import ModelRuntime
from chalicelib.lifecycle_events import LifecyclePublisher
from chalicelib.pipeline.approval_stage import ApprovalStage
from chalicelib.pipeline.outcome_stage import OutcomeStage
from chalicelib.pipeline.record_approval_stage import RecordApprovalStage
from chalicelib.pipeline.stage_io import UploadedObject
from chalicelib.pipeline.tracker import LifecycleTracker
from chalicelib.pipeline.upload_trigger import UploadResult, UploadTrigger
from chalicelib.pipeline.validate_stage import ValidateStage
from chalicelib.pipeline.warm_stage import WarmStage
from chalicelib.promotion.flip_stage import FlipAlias
from chalicelib.promotion.outcome_stage import PromotionOutcome
from chalicelib.promotion.prepare_stage import PreparePromotion
from chalicelib.promotion.requests import PromotionRequests
from chalicelib.promotion.warm_production_stage import WarmProduction
from chalicelib.registry import ModelRegistry
from chalicelib.settings import Settings, get_settings
from chalicelib.slack_notifier import SlackNotifier, reply_ephemeral

# InvokeEndpoint may take 60 s; ModelNotReady is retried by EndpointInvoker, not botocore.
RUNTIME_CONFIG = Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 3})
# The inference path: one attempt (503 + Retry-After beats a retry API Gateway cuts at 29 s).
API_RUNTIME_CONFIG = Config(
    read_timeout=25, connect_timeout=2, retries={"mode": "standard", "total_max_attempts": 1}, tcp_keepalive=True
)
# Secrets are cached per container this long, so a rotation is picked up without a redeploy.
SECRET_MAX_AGE_S = 300
# Event de-duplication window: EventBridge redelivers within hours; the execution name
# de-duplicates beyond it.
IDEMPOTENCY_TTL_S = 24 * 3600


@lru_cache(maxsize=1)
def session() -> boto3.session.Session:
    return boto3.session.Session()


def client(service: str, config: Config | None = None) -> Any:
    return session().client(service, config=config)  # type: ignore[call-overload]


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def registry() -> ModelRegistry:
    return ModelRegistry(settings().registry_table, client("dynamodb"))


@lru_cache(maxsize=1)
def secrets() -> SecretsProvider:
    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret(name: str) -> str:
    return str(secrets().get(name, max_age=SECRET_MAX_AGE_S))


@lru_cache(maxsize=1)
def slack_client() -> WebClient:
    return WebClient(token=secret(settings().slack_bot_token_secret), base_url=settings().slack_api_url)


@lru_cache(maxsize=1)
def notifier() -> SlackNotifier:
    return SlackNotifier(slack_client(), settings().slack_channel)


@lru_cache(maxsize=1)
def publisher() -> LifecyclePublisher:
    return LifecyclePublisher(settings().lifecycle_bus, client("events"))


@lru_cache(maxsize=1)
def tracker() -> LifecycleTracker:
    return LifecycleTracker(registry(), publisher(), notifier())


@lru_cache(maxsize=1)
def upload_handler() -> Callable[..., UploadResult]:
    """``UploadTrigger.handle`` behind Powertools idempotency, keyed on the uploaded object."""
    trigger = UploadTrigger(
        tracker(),
        DeploymentStarter(client("stepfunctions"), settings().deploy_state_machine_arn),
        settings().staging_bucket,
    )
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, etag, version_id]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_S,
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=client("dynamodb"))

    def handle(upload: UploadedObject) -> UploadResult:
        return trigger.handle(upload)

    wrapped: Callable[..., UploadResult] = idempotent_function(
        data_keyword_argument="upload",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(model=UploadResult),
    )(handle)
    return wrapped


def endpoint_invoker(endpoint: str) -> EndpointInvoker:
    return EndpointInvoker(
        client("sagemaker-runtime", RUNTIME_CONFIG), endpoint, load_timeout_s=settings().warm_load_timeout_s
    )


@lru_cache(maxsize=1)
def artifact_store() -> ArtifactStore:
    return ArtifactStore(client("s3"))


@lru_cache(maxsize=1)
def validate_stage() -> ValidateStage:
    return ValidateStage(tracker(), artifact_store())


@lru_cache(maxsize=1)
def warm_stage() -> WarmStage:
    return WarmStage(tracker(), endpoint_invoker(settings().staging_endpoint), settings().warm_requests)


@lru_cache(maxsize=1)
def approval_stage() -> ApprovalStage:
    return ApprovalStage(tracker(), notifier())


@lru_cache(maxsize=1)
def outcome_stage() -> OutcomeStage:
    return OutcomeStage(tracker())


@lru_cache(maxsize=1)
def record_approval_stage() -> RecordApprovalStage:
    return RecordApprovalStage(tracker())


# -- the approval gate and the admin API ----------------------------------------------------
@lru_cache(maxsize=1)
def approval_gate() -> ApprovalGate:
    return ApprovalGate(registry(), TaskCallback(client("stepfunctions")))


@lru_cache(maxsize=1)
def slack_interactions() -> SlackInteractions:
    return SlackInteractions(
        approval_gate(),
        signing_secret=lambda: secret(settings().slack_signing_secret),
        approvers=settings().approvers,
        reply=reply_ephemeral,
    )


@lru_cache(maxsize=1)
def promotion_requests() -> PromotionRequests:
    return PromotionRequests(registry(), approval_gate(), publisher())


@lru_cache(maxsize=1)
def api_tokens() -> ApiTokens:
    return ApiTokens(lambda: secret(settings().api_tokens_secret))


# -- PromoteModel ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def prepare_promotion() -> PreparePromotion:
    return PreparePromotion(tracker(), artifact_store(), settings().production_bucket)


@lru_cache(maxsize=1)
def warm_production() -> WarmProduction:
    return WarmProduction(
        tracker(),
        artifact_store(),
        endpoint_invoker(settings().production_endpoint),
        settings().production_bucket,
        settings().warm_requests,
    )


@lru_cache(maxsize=1)
def flip_alias() -> FlipAlias:
    return FlipAlias(tracker())


@lru_cache(maxsize=1)
def promotion_outcome() -> PromotionOutcome:
    return PromotionOutcome(tracker())


# -- the inference API ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def router() -> Router:
    return Router(
        registry(), settings().staging_endpoint, settings().production_endpoint, ttl_s=settings().route_cache_ttl_s
    )


@lru_cache(maxsize=1)
def inference_proxy() -> InferenceProxy:
    return InferenceProxy(router(), ModelRuntime(client("sagemaker-runtime", API_RUNTIME_CONFIG)), ModelMetrics())


@lru_cache(maxsize=1)
def model_catalog() -> ModelCatalog:
    return ModelCatalog(registry(), router())


@lru_cache(maxsize=1)
def canary_requests() -> CanaryRequests:
    return CanaryRequests(registry())
