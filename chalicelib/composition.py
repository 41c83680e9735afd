"""Builds the services from the settings, once per Lambda container (lazily, so importing a
handler needs no AWS and tests can build their own). The only place clients are made.

What the Chalice app serves (the API, its authorizer, the Slack webhook, the upload trigger) and
the pieces every Lambda shares; the stage Lambdas' services are in
:mod:`chalicelib.stage_composition`, so the app never imports the validator or the warm-up.
The three Chalice functions share this module, so what only some of them use (slack_sdk, the
idempotency layer) is imported by the builder that needs it, when it first runs: a cold start
pays for its own handler's imports, not its neighbours'."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, overload

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.artifact_store import ArtifactStore
from chalicelib.adapters.lifecycle_events import LifecyclePublisher
from chalicelib.adapters.model_runtime import ModelRuntime
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.adapters.step_functions import DeploymentStarter, TaskCallback
from chalicelib.api_tokens import ApiTokens
from chalicelib.approval.gate import ApprovalGate
from chalicelib.deploy_model.redeploy import Redeploy
from chalicelib.deploy_model.stage_io import UploadedObject
from chalicelib.deploy_model.upload_trigger import ACTOR as UPLOAD_ACTOR
from chalicelib.deploy_model.upload_trigger import UploadResult, UploadTrigger
from chalicelib.inference.canary import CanaryRequests
from chalicelib.inference.catalog import ModelCatalog
from chalicelib.inference.model_metrics import ModelMetrics
from chalicelib.inference.proxy import InferenceProxy
from chalicelib.inference.routing import Router
from chalicelib.promote_model.requests import PromotionRequests
from chalicelib.settings import Settings, get_settings
from chalicelib.stages.tracker import LifecycleTracker

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient
    from slack_sdk import WebClient

    from chalicelib.adapters.slack_notifier import SlackNotifier
    from chalicelib.approval.slack_interactions import SlackInteractions
    from chalicelib.deploy_model.unheard_uploads import UnheardUploads
    from chalicelib.execution_ended import ExecutionEnded
    from chalicelib.promote_model.rollout_requests import RolloutRequests
    from chalicelib.sweep import Sweep

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


# One overload per service the Lambdas use (boto3-stubs' client types; a new service adds one).
@overload
def client(service: Literal["cloudwatch"], config: Config | None = None) -> CloudWatchClient: ...
@overload
def client(service: Literal["dynamodb"], config: Config | None = None) -> DynamoDBClient: ...
@overload
def client(service: Literal["events"], config: Config | None = None) -> EventBridgeClient: ...
@overload
def client(service: Literal["s3"], config: Config | None = None) -> S3Client: ...
@overload
def client(service: Literal["sagemaker-runtime"], config: Config | None = None) -> SageMakerRuntimeClient: ...
@overload
def client(service: Literal["secretsmanager"], config: Config | None = None) -> SecretsManagerClient: ...
@overload
def client(service: Literal["stepfunctions"], config: Config | None = None) -> SFNClient: ...
def client(service: str, config: Config | None = None) -> object:
    return session().client(service, config=config)  # type: ignore[call-overload]


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def registry() -> VersionStore:
    return VersionStore(settings().registry_table, client("dynamodb"))


@lru_cache(maxsize=1)
def approvals() -> ApprovalStore:
    return ApprovalStore(settings().registry_table, client("dynamodb"))


@lru_cache(maxsize=1)
def secrets() -> SecretsProvider:
    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret(name: str) -> str:
    return str(secrets().get(name, max_age=SECRET_MAX_AGE_S))


@lru_cache(maxsize=1)
def slack_client() -> WebClient:
    from slack_sdk import WebClient

    return WebClient(token=secret(settings().slack_bot_token_secret), base_url=settings().slack_api_url)


@lru_cache(maxsize=1)
def notifier() -> SlackNotifier:
    from chalicelib.adapters.slack_notifier import SlackNotifier

    return SlackNotifier(slack_client(), settings().slack_channel)


@lru_cache(maxsize=1)
def publisher() -> LifecyclePublisher:
    return LifecyclePublisher(settings().lifecycle_bus, client("events"))


@lru_cache(maxsize=1)
def tracker() -> LifecycleTracker:
    return LifecycleTracker(registry(), approvals(), publisher(), notifier())


@lru_cache(maxsize=1)
def upload_trigger() -> UploadTrigger:
    return UploadTrigger(
        tracker(),
        DeploymentStarter(client("stepfunctions"), settings().deploy_state_machine_arn),
        settings().staging_bucket,
    )


@lru_cache(maxsize=1)
def upload_handler() -> Callable[..., UploadResult]:
    """``UploadTrigger.handle`` behind Powertools idempotency, keyed on the uploaded object (the
    upload event's handler, and the sweep's for uploads whose event never came)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

    trigger = upload_trigger()
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, etag, version_id]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_S,
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=client("dynamodb"))

    def handle(upload: UploadedObject, actor: str = UPLOAD_ACTOR) -> UploadResult:
        return trigger.handle(upload, actor)

    wrapped: Callable[..., UploadResult] = idempotent_function(
        data_keyword_argument="upload",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(model=UploadResult),
    )(handle)
    return wrapped


# -- the approval gate and the admin API ----------------------------------------------------
@lru_cache(maxsize=1)
def approval_gate() -> ApprovalGate:
    # a decision that finds its task gone reconciles the version there and then
    return ApprovalGate(
        registry(), approvals(), TaskCallback(client("stepfunctions")), lambda record: sweep().check(record)
    )


# -- reconciling versions with their executions (the reconcile Lambda, and the gate) ----------
# Built on first use with their imports: the API's requests never need them.
@lru_cache(maxsize=1)
def execution_ended() -> ExecutionEnded:
    from chalicelib.adapters.executions import Executions
    from chalicelib.deploy_model.record_outcome import RecordOutcome
    from chalicelib.execution_ended import ExecutionEnded
    from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome

    return ExecutionEnded(
        settings().deploy_state_machine_arn,
        settings().promote_state_machine_arn,
        RecordOutcome(tracker()),
        RecordPromotionOutcome(tracker()),
        Executions(client("stepfunctions")).last_state,
    )


@lru_cache(maxsize=1)
def sweep() -> Sweep:
    from chalicelib.adapters.executions import Executions
    from chalicelib.sweep import Sweep

    return Sweep(registry(), Executions(client("stepfunctions")), execution_ended(), tracker().deliver)


@lru_cache(maxsize=1)
def unheard_uploads() -> UnheardUploads:
    from chalicelib.adapters.staging_uploads import StagingUploads
    from chalicelib.deploy_model.unheard_uploads import UnheardUploads

    handle = upload_handler()
    return UnheardUploads(
        StagingUploads(client("s3"), settings().staging_bucket),
        upload_trigger(),
        lambda upload, actor: handle(upload=upload, actor=actor),
    )


@lru_cache(maxsize=1)
def slack_interactions() -> SlackInteractions:
    from chalicelib.adapters.slack_notifier import reply_ephemeral
    from chalicelib.approval.slack_interactions import SlackInteractions

    return SlackInteractions(
        approval_gate(),
        signing_secret=lambda: secret(settings().slack_signing_secret),
        approvers=settings().approvers,
        reply=reply_ephemeral,
    )


@lru_cache(maxsize=1)
def artifact_store() -> ArtifactStore:
    return ArtifactStore(client("s3"))


@lru_cache(maxsize=1)
def redeploy() -> Redeploy:
    # the pinned object version is checked to be there before the version moves
    return Redeploy(
        tracker(), DeploymentStarter(client("stepfunctions"), settings().deploy_state_machine_arn), artifact_store()
    )


@lru_cache(maxsize=1)
def promotion_requests() -> PromotionRequests:
    return PromotionRequests(registry(), approval_gate(), publisher())


@lru_cache(maxsize=1)
def api_tokens() -> ApiTokens:
    return ApiTokens(lambda: secret(settings().api_tokens_secret))


# -- the inference API ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def router() -> Router:
    return Router(
        registry(), settings().staging_endpoint, settings().production_endpoint, ttl_s=settings().route_cache_ttl_s
    )


@lru_cache(maxsize=1)
def inference_proxy(status_of: Callable[[BaseException], int]) -> InferenceProxy:
    """``status_of``: the API's status for an error (app.http_status), which the metrics record."""
    return InferenceProxy(
        router(), ModelRuntime(client("sagemaker-runtime", API_RUNTIME_CONFIG)), ModelMetrics(), status_of
    )


@lru_cache(maxsize=1)
def model_catalog() -> ModelCatalog:
    return ModelCatalog(registry(), router(), approvals())


@lru_cache(maxsize=1)
def rollout_requests() -> RolloutRequests:
    from chalicelib.adapters.executions import Executions
    from chalicelib.promote_model.rollout_requests import RolloutRequests

    return RolloutRequests(
        tracker(),
        approval_gate(),
        publisher(),
        Executions(client("stepfunctions")),
        lambda: settings().rollout_defaults,
    )


@lru_cache(maxsize=1)
def canary_requests() -> CanaryRequests:
    return CanaryRequests(registry())
