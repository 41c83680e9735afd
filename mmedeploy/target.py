"""Where the commands act: boto3 clients plus the staging bucket and registry table, and the API
(URL, invoke and admin tokens) and Slack signing details that the HTTP commands (``invoke``,
``models``, ``canary``, ``approve``/``decline``, ``promote``/``rollback``) use.

A :class:`DeploymentTarget` is a plain value; the commands never ask where it came from. Every
target is resolved the same way, from a CloudFormation stack's outputs (:data:`REQUIRED_OUTPUTS`
and the rest, :func:`stack_outputs`):

- a **deployed stack** added with ``mmedeploy target add NAME --stack STACK`` (:mod:`.target_config`):
  boto3's standard credential chain (the target's profile, SSO, the environment, ``AWS_ENDPOINT_URL``,
  instance roles); the CLI adds no endpoint or credential of its own. Its tokens come from
  :mod:`.tokens`.
- the **running local stack** (``local``): the emulator's CloudFormation answers the template's
  outputs for it, read with the local administrator's credentials at the emulator's endpoint;
  its tokens and Slack details from its ``stack.json``.

:func:`resolve_target` is the one place that chooses: ``--target NAME``, else an explicit
``--state-dir``, else ``MMEDEPLOY_TARGET``, else the target ``target use`` chose, else the running
local stack, found from any folder (:mod:`mmedeploy.local.running`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.adapters.registry import ModelRegistry
from mmedeploy.local import DEFAULT_STATE_DIR
from mmedeploy.local.stack import StackInfo, read_stack
from mmedeploy.target_config import LOCAL, TargetConfig, TargetConfigError, TargetEntry

TARGET_VARIABLE = "MMEDEPLOY_TARGET"
# A stopped emulator must fail fast, not after botocore's default 60 s read timeout and retries.
LOCAL_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
# What every command needs from a stack's outputs (the rest are read where present).
REQUIRED_OUTPUTS = ("StagingBucket", "RegistryTable", "EndpointURL")


class TargetUnavailable(Exception):
    """No target to talk to (e.g. no local stack runs); the message says what to do."""


class SeveralLocalStacks(TargetUnavailable):
    """Several local stacks run and none was named (``--state-dir``)."""


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
    name: str = LOCAL  # the target's name: "local", or the name given to `target add`
    outputs: Mapping[str, str] = field(default_factory=dict, repr=False)  # the stack's, all of them

    def client(self, service: str) -> Any:
        return self.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=self.client_config,
        )

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.registry_table, self.client("dynamodb"))


# -- the CloudFormation path -----------------------------------------------------------------------
def stack_outputs(
    session: boto3.session.Session,
    stack: str,
    endpoint_url: str | None = None,
    client_config: Config | None = None,
) -> dict[str, str]:
    """``stack``'s outputs, read with ``session`` (TargetUnavailable, saying why, if they cannot be)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    where = f"stack {stack} in {session.region_name or 'no region'}"
    try:
        client = session.client("cloudformation", endpoint_url=endpoint_url, config=client_config)
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except NoRegionError:
        raise TargetUnavailable(
            f"no AWS region for {where}: give the target one (mmedeploy target add NAME --stack {stack} "
            "--region REGION --replace), or set it in the profile or AWS_REGION"
        ) from None
    except NoCredentialsError:
        raise TargetUnavailable(
            f"no AWS credentials to read {where}: log in (aws sso login --profile P, aws configure) "
            "or give the target a profile (--profile P)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in str(error.get("Message", "")):
            raise TargetUnavailable(f"no CloudFormation {where}: check its name and region") from None
        raise TargetUnavailable(f"cannot read {where}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise TargetUnavailable(f"cannot read {where}: {exc}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def target_from_outputs(
    name: str,
    description: str,
    session: boto3.session.Session,
    outputs: Mapping[str, str],
    required: tuple[str, ...] = REQUIRED_OUTPUTS,
    **details: Any,
) -> DeploymentTarget:
    """A target from a stack's outputs; ``details`` are the rest of its fields (endpoint, tokens, Slack).
    An output of ``required`` missing is TargetUnavailable (``mmedeploy doctor`` requires none: it
    reports them)."""
    missing = [key for key in required if not outputs.get(key)]
    if missing:
        raise TargetUnavailable(
            f"{description} lacks the output(s) {', '.join(missing)}: update the stack with the current "
            "template (make package, then deploy it: docs/aws.md)"
        )
    return DeploymentTarget(
        description=description,
        region=str(session.region_name),
        staging_bucket=outputs.get("StagingBucket", ""),
        registry_table=outputs.get("RegistryTable", ""),
        session=session,
        api_url=outputs.get("EndpointURL"),
        name=name,
        outputs=dict(outputs),
        **details,
    )


def session_for(entry: TargetEntry) -> boto3.session.Session:
    """boto3's standard chain for ``entry``: its profile (SSO included) or the default chain."""
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.session.Session(profile_name=entry.profile, region_name=entry.region)
    except ProfileNotFound:
        raise TargetUnavailable(
            f"target {entry.name}: no AWS profile {entry.profile} (in ~/.aws/config or AWS_CONFIG_FILE)"
        ) from None


def deployed_target(
    entry: TargetEntry, environ: Mapping[str, str] | None = None, required: tuple[str, ...] = REQUIRED_OUTPUTS
) -> DeploymentTarget:
    """The stack ``entry`` names, resolved from its outputs; tokens from :mod:`mmedeploy.tokens`."""
    from mmedeploy.tokens import TokenStore

    session = session_for(entry)
    if not session.region_name:
        raise TargetUnavailable(
            f"target {entry.name} has no AWS region: add it again with --region REGION --replace, "
            "or set one in its profile or AWS_REGION"
        )
    outputs = stack_outputs(session, entry.stack)
    tokens = TokenStore(environ=dict(os.environ if environ is None else environ))
    try:
        api_token, admin_token = (tokens.get(entry.name, kind).value for kind in ("api", "admin"))
    except OSError as exc:  # an unreadable token file, a keyring that refuses
        raise TargetUnavailable(f"target {entry.name}: {exc}") from None
    return target_from_outputs(
        entry.name,
        f"target {entry.name} (stack {entry.stack} in {session.region_name})",
        session,
        outputs,
        required,
        api_token=api_token,
        admin_token=admin_token,
    )


# -- the local stack -------------------------------------------------------------------------------
def local_stack_target(
    state_dir: Path = DEFAULT_STATE_DIR, required: tuple[str, ...] = REQUIRED_OUTPUTS
) -> DeploymentTarget:
    """The local stack started with ``mmedeploy up`` on ``state_dir``, resolved from its
    emulator's stack outputs; TargetUnavailable if none runs."""
    info = read_stack(state_dir)
    if info is None:
        option = "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"
        raise TargetUnavailable(
            f"no local stack is running (no live {state_dir / 'stack.json'}); start one with: "
            f"mmedeploy up --detach{option}"
        )
    return local_target_from(info, state_dir, required)


def local_target_from(
    info: StackInfo, state_dir: Path, required: tuple[str, ...] = REQUIRED_OUTPUTS
) -> DeploymentTarget:
    # the local administrator the stack created: the emulator enforces IAM
    session = boto3.session.Session(
        aws_access_key_id=info.aws_access_key_id,
        aws_secret_access_key=info.aws_secret_access_key,
        region_name=info.region,
    )
    outputs = stack_outputs(session, info.stack_name, info.aws_endpoint_url, LOCAL_CLIENT_CONFIG)
    return target_from_outputs(
        LOCAL,
        f"the local stack ({state_dir})",
        session,
        outputs,
        required,
        endpoint_url=info.aws_endpoint_url,
        client_config=LOCAL_CLIENT_CONFIG,
        slack_url=info.slack_url,
        slack_signing_secret=info.slack_signing_secret,
        slack_approver_ids=tuple(info.slack_approver_ids),
        admin_token=info.admin_token,
        api_token=info.api_token,
    )


def find_local_stack(state_dir: Path = DEFAULT_STATE_DIR) -> Path:
    """The state directory of the local stack to act on: ``state_dir`` where given (not the
    default), else ``./.mmedeploy`` where one runs there, else the one running stack recorded in
    the user's state directory (TargetUnavailable if none runs, or several do)."""
    if state_dir != DEFAULT_STATE_DIR or read_stack(state_dir) is not None:
        return state_dir
    from mmedeploy.local.running import running_state_dirs

    running = running_state_dirs()
    if len(running) == 1:
        return running[0]
    if running:
        listed = ", ".join(str(path) for path in running)
        raise SeveralLocalStacks(f"{len(running)} local stacks are running ({listed}): name one with --state-dir DIR")
    raise TargetUnavailable(
        "no local stack is running; start one with: mmedeploy up --detach (or act on a deployed stack: "
        "mmedeploy target add NAME --stack STACK_NAME, then --target NAME)"
    )


# -- which one -------------------------------------------------------------------------------------
def chosen_target(
    state_dir: Path = DEFAULT_STATE_DIR, name: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The name of the target a command acts on (see the module's docstring for the order)."""
    environ = os.environ if environ is None else environ
    if name:
        return name
    if state_dir != DEFAULT_STATE_DIR:
        return LOCAL
    if environ.get(TARGET_VARIABLE):
        return environ[TARGET_VARIABLE]
    try:
        current = TargetConfig.load().current
    except TargetConfigError as exc:
        raise TargetUnavailable(str(exc)) from None
    return current or LOCAL


def resolve_target(
    state_dir: Path = DEFAULT_STATE_DIR,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
    required: tuple[str, ...] = REQUIRED_OUTPUTS,
) -> DeploymentTarget:
    """The target a command's options (``--target``, ``--state-dir``) and the environment name."""
    chosen = chosen_target(state_dir, name, environ)
    if chosen == LOCAL:
        return local_stack_target(find_local_stack(state_dir), required)
    try:
        entry = TargetConfig.load().get(chosen)
    except TargetConfigError as exc:
        raise TargetUnavailable(str(exc)) from None
    return deployed_target(entry, environ, required)
