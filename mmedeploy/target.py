"""Where the commands act: boto3 clients plus the staging bucket and registry table, and the API
(URL, invoke and admin tokens) and Slack signing details that the HTTP commands (``invoke``,
``models``, ``canary``, ``approve``/``decline``, ``promote``/``rollback``) use.

A :class:`DeploymentTarget` is a plain value; the commands never ask where it came from. Today
one constructor exists, :func:`local_stack_target`, which reads the running local stack's
``stack.json``. A deployed stage (``--stage NAME``) is a second constructor beside it that fills the
same fields from the stage's CloudFormation outputs with the default credential chain (no
``endpoint_url``); :func:`resolve_target` is the one place that chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.adapters.registry import ModelRegistry
from mmedeploy.local import DEFAULT_STATE_DIR
from mmedeploy.local.stack import read_stack

# A stopped emulator must fail fast, not after botocore's default 60 s read timeout and retries.
LOCAL_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})


class TargetUnavailable(Exception):
    """No target to talk to (e.g. no local stack runs); the message says what to do."""


@dataclass(frozen=True)
class DeploymentTarget:
    description: str  # for messages: "the local stack (.mmedeploy)"
    region: str
    staging_bucket: str
    registry_table: str
    session: boto3.session.Session = field(repr=False)
    endpoint_url: str | None = None
    client_config: Config | None = field(default=None, repr=False)
    # The HTTP side: the API (inference and registry reads, admin routes, the Slack webhook) and
    # what Slack itself would know.
    api_url: str | None = None
    slack_url: str | None = None  # where response_url points (the local Slack sink)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_approver_ids: tuple[str, ...] = ()
    admin_token: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)  # the invoke scope: inference and reads

    def client(self, service: str) -> Any:
        return self.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=self.client_config,
        )

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.registry_table, self.client("dynamodb"))


def local_stack_target(state_dir: Path = DEFAULT_STATE_DIR) -> DeploymentTarget:
    """The local stack started with ``mmedeploy up`` on ``state_dir``; TargetUnavailable if none runs."""
    info = read_stack(state_dir)
    if info is None:
        option = "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"
        raise TargetUnavailable(
            f"no local stack is running (no live {state_dir / 'stack.json'}); start one with: "
            f"mmedeploy up --detach{option}"
        )
    # the local administrator the stack created: the emulator enforces IAM
    session = boto3.session.Session(
        aws_access_key_id=info.aws_access_key_id,
        aws_secret_access_key=info.aws_secret_access_key,
        region_name=info.region,
    )
    return DeploymentTarget(
        description=f"the local stack ({state_dir})",
        region=info.region,
        staging_bucket=info.staging_bucket,
        registry_table=info.registry_table,
        session=session,
        endpoint_url=info.aws_endpoint_url,
        client_config=LOCAL_CLIENT_CONFIG,
        api_url=info.api_url,
        slack_url=info.slack_url,
        slack_signing_secret=info.slack_signing_secret,
        slack_approver_ids=tuple(info.slack_approver_ids),
        admin_token=info.admin_token,
        api_token=info.api_token,
    )


def resolve_target(state_dir: Path = DEFAULT_STATE_DIR) -> DeploymentTarget:
    """The target a command's options name (a deployed stage's option adds its branch here)."""
    return local_stack_target(state_dir)
