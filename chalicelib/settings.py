"""The deployed stack's settings: one pydantic-settings model, read once per container.

Every value arrives as an environment variable set by the template (``Globals`` in
infra/template.yaml, the same list the local stack applies), so handlers never read
``os.environ`` themselves and a missing value fails fast with its name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from chalicelib.domain.validation.triton_release import TritonVersion


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    stage: str = Field(default="dev", validation_alias="MMEDEPLOY_STAGE")
    staging_bucket: str
    production_bucket: str
    registry_table: str
    idempotency_table: str
    lifecycle_bus: str = "mmedeploy-lifecycle"
    staging_endpoint: str
    production_endpoint: str
    deploy_state_machine_arn: str
    promote_state_machine_arn: str
    slack_bot_token_secret: str = Field(description="Secrets Manager name of the Slack bot token")
    slack_signing_secret: str = Field(description="Secrets Manager name of the Slack app's signing secret")
    slack_approver_ids: str = Field(default="", description="comma-separated Slack user ids allowed to decide")
    api_tokens_secret: str = Field(description="Secrets Manager name of the API tokens' hashes and scopes")
    slack_api_url: str = Field(default="https://slack.com/api/", description="the Slack Web API base URL")
    slack_channel: str = "#mmedeploy"
    # WarmStaging: SageMaker keeps loading a model for up to 360 s while answering
    # ModelNotReadyException; after that the load is given up.
    warm_load_timeout_s: float = Field(default=360.0, gt=0)
    warm_requests: int = Field(default=5, ge=1, le=50, description="warm calls timed for the p50")
    # The inference API caches each model's routes this long: the longest a promotion, rollback
    # or canary change takes to reach every container.
    route_cache_ttl_s: float = Field(default=5.0, ge=0)
    # The Triton version the endpoints run: the validator refuses config fields newer than it.
    triton_image: str = Field(default="", description="the endpoints' Triton image URI (TritonImage)")
    triton_version: str = Field(
        default="auto",
        description="the Triton version the endpoints run (2.N, or a container release YY.MM); auto: read from "
        "TRITON_IMAGE's tag; with no image either, the template's default (24.09: Triton 2.50)",
    )

    @property
    def deployed_triton(self) -> TritonVersion:
        """ValueError saying what to set where neither can be read. Read only by the Validate stage,
        not on construction: an image tag it cannot read must not stop the inference API."""
        from chalicelib.domain.validation.triton_release import resolve

        return resolve(self.triton_version, self.triton_image)

    @property
    def approvers(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.slack_approver_ids.split(",") if part.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # values come from the environment


class TriggerSettings(BaseSettings):
    """What app.py needs at import time to build the upload rule's event pattern (``chalice
    package`` imports the app with only the stage's ``.chalice/config.json`` variables set)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    staging_bucket: str
