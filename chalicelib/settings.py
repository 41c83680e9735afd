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
    from chalicelib.domain.rollout.policy import RolloutOverrides
    from chalicelib.domain.validation.triton_release import TritonVersion

# The rollout policy's defaults for this deployment (the template's Rollout* parameters): each
# setting, by the policy field it sets. Empty: the built-in default.
ROLLOUT_SETTINGS = {
    "rollout_steps": "steps",
    "rollout_bake_seconds": "bake_seconds",
    "rollout_max_error_rate_margin": "max_error_rate_margin",
    "rollout_max_p99_latency_ratio": "max_p99_latency_ratio",
    "rollout_min_requests": "min_requests",
    "rollout_evaluation_interval_seconds": "evaluation_interval_seconds",
    "rollout_start_on_approval": "start_on_approval",
}


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

    # the rollout policy's defaults (ROLLOUT_SETTINGS): read where a rollout's policy is resolved
    rollout_steps: str = Field(default="", description="canary weights in percent, comma-separated, ending at 100")
    rollout_bake_seconds: str = Field(default="", description="seconds each canary step runs before the next")
    rollout_max_error_rate_margin: str = Field(
        default="", description="how much the candidate's error rate may exceed production's (a fraction)"
    )
    rollout_max_p99_latency_ratio: str = Field(
        default="", description="the candidate's p99 latency at most this many times production's"
    )
    rollout_min_requests: str = Field(
        default="", description="requests each version serves in a step before the gates judge it"
    )
    rollout_evaluation_interval_seconds: str = Field(
        default="", description="seconds between two readings of the gates"
    )
    rollout_start_on_approval: str = Field(
        default="", description="true: an approval starts a rollout instead of promoting at once"
    )

    @property
    def rollout_defaults(self) -> RolloutOverrides:
        """The deployment's layer of every rollout's policy. RolloutPolicyInvalid naming the
        environment variable whose value is refused; read where a policy is resolved, not on
        construction (a bad value must not stop the inference API)."""
        from chalicelib.domain.errors import RolloutPolicyInvalid
        from chalicelib.domain.rollout.policy import overrides_from

        given: dict[str, object] = {}
        for setting, field in ROLLOUT_SETTINGS.items():
            text = str(getattr(self, setting)).strip()
            if not text:
                continue
            if field == "steps":
                given[field] = [part.strip() for part in text.split(",")]
            elif field == "start_on_approval":
                if text.lower() not in {"true", "false"}:
                    raise RolloutPolicyInvalid(f"{setting.upper()} is {text!r}; give true or false")
                given[field] = text.lower() == "true"
            else:
                given[field] = text
        try:
            return overrides_from(given)
        except RolloutPolicyInvalid as exc:
            raise RolloutPolicyInvalid(f"the deployment's Rollout* settings (ROLLOUT_* variables): {exc}") from None

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
