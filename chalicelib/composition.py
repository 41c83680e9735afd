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

from chalicelib.artifact_store import ArtifactStore
from chalicelib.deployment_starter import DeploymentStarter
from chalicelib.endpoint_invoker import EndpointInvoker
from chalicelib.lifecycle_events import LifecyclePublisher
from chalicelib.pipeline.approval_stage import ApprovalStage
from chalicelib.pipeline.outcome_stage import OutcomeStage
from chalicelib.pipeline.stage_io import UploadedObject
from chalicelib.pipeline.tracker import LifecycleTracker
from chalicelib.pipeline.upload_trigger import UploadResult, UploadTrigger
from chalicelib.pipeline.validate_stage import ValidateStage
from chalicelib.pipeline.warm_stage import WarmStage
from chalicelib.registry import ModelRegistry
from chalicelib.settings import Settings, get_settings
from chalicelib.slack_notifier import SlackNotifier

# InvokeEndpoint may take 60 s; ModelNotReady is retried by EndpointInvoker, not botocore.
RUNTIME_CONFIG = Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 3})
SLACK_TOKEN_MAX_AGE_S = 300
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
def slack_client() -> WebClient:
    token = SecretsProvider(boto3_client=client("secretsmanager")).get(
        settings().slack_bot_token_secret, max_age=SLACK_TOKEN_MAX_AGE_S
    )
    return WebClient(token=str(token), base_url=settings().slack_api_url)


@lru_cache(maxsize=1)
def notifier() -> SlackNotifier:
    return SlackNotifier(slack_client(), settings().slack_channel)


@lru_cache(maxsize=1)
def tracker() -> LifecycleTracker:
    return LifecycleTracker(registry(), LifecyclePublisher(settings().lifecycle_bus, client("events")), notifier())


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


@lru_cache(maxsize=1)
def validate_stage() -> ValidateStage:
    return ValidateStage(tracker(), ArtifactStore(client("s3")))


@lru_cache(maxsize=1)
def warm_stage() -> WarmStage:
    invoker = EndpointInvoker(
        client("sagemaker-runtime", RUNTIME_CONFIG),
        settings().staging_endpoint,
        load_timeout_s=settings().warm_load_timeout_s,
    )
    return WarmStage(tracker(), invoker, settings().warm_requests)


@lru_cache(maxsize=1)
def approval_stage() -> ApprovalStage:
    return ApprovalStage(tracker(), notifier())


@lru_cache(maxsize=1)
def outcome_stage() -> OutcomeStage:
    return OutcomeStage(tracker())
