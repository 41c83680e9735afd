"""The local stack's host process: the AWS emulator (moto server with the seams, IAM enforced),
the local Lambda service (every function from its packaged artifact, under awslambdaric, in
processes of its own), the local API Gateway, the Slack sink and the local MME, provisioned from
the packaged template (``build/dev/sam.yaml``, built or reused by ``up``). ``mmedeploy up`` runs it
in the foreground, or in a detached child with ``--detach``; ``mmedeploy down`` stops it.

The stack is found through ``<state dir>/stack.json`` (default ``.mmedeploy/``), its contract
(docs/local-stack.md): every shell, test and tool reads its endpoints, names and tokens from there;
the user's state directory records where each running stack's is (:mod:`.running`), so commands
find it from any folder. The emulator's CloudFormation answers the template's outputs for the
stack (:func:`~mmedeploy.local.provision.publish_outputs`): the CLI resolves it as a deployed stack.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from pydantic import BaseModel, Field

from mmedeploy.local import (
    DEFAULT_APPROVAL_TIMEOUT_S,
    DEFAULT_LAMBDA_CONCURRENCY,
    DEFAULT_MME_LOAD_WAIT_S,
    DEFAULT_MME_MEMORY_MB,
    DEFAULT_PORT_BASE,
    STACK_NAME,
    running,
)
from mmedeploy.local.iam import Credentials, assume, create_administrator, enforce_iam
from mmedeploy.local.kept_state import MotoEmulator, restore_bucket, save_bucket
from mmedeploy.local.lambdas.emf import EmbeddedMetrics
from mmedeploy.local.lambdas.function import FunctionConfig, Invocation
from mmedeploy.local.lambdas.logs import FunctionLogs
from mmedeploy.local.lambdas.sandbox import Launch
from mmedeploy.local.lambdas.service import LOCAL_RUNTIME, LambdaService, ensure_runtime_client
from mmedeploy.project_files import project

SLACK_APPROVERS = ["U0LOCALAPPROVER"]
log = logging.getLogger("mmedeploy.local")


class StackInfo(BaseModel):
    """``stack.json``: where everything of a running local stack is."""

    api_url: str
    aws_endpoint_url: str
    mme_url: str = Field(description="the local MME (SageMaker Runtime InvokeEndpoint)")
    slack_url: str
    region: str
    staging_bucket: str
    production_bucket: str
    staging_endpoint: str
    production_endpoint: str
    slack_signing_secret: str
    slack_approver_ids: list[str]
    api_token: str
    admin_token: str
    # the local administrator: the emulator refuses credentials it never issued
    aws_access_key_id: str
    aws_secret_access_key: str
    registry_table: str
    idempotency_table: str
    deploy_state_machine: str = ""
    promote_state_machine: str = ""
    lifecycle_bus: str = "mmedeploy-lifecycle"
    # the CloudFormation stack in the emulator whose outputs name the buckets, table and API
    stack_name: str = STACK_NAME
    pid: int
    started_at: float
    ready_seconds: float
    created_another_way: list[tuple[str, str]] = []


class PortInUse(RuntimeError):
    def __init__(self, port: int, role: str) -> None:
        super().__init__(
            f"port {port} (the local {role}) is already in use. Stop whatever listens there "
            f"(see: ss -ltnp | grep :{port}) or choose another range with --port-base "
            f"(the stack uses 4 consecutive ports, default {DEFAULT_PORT_BASE})."
        )
        self.port = port


class StackConfig(BaseModel):
    host: str = "127.0.0.1"
    port_base: int = DEFAULT_PORT_BASE
    state_dir: Path = Path(".mmedeploy")
    region: str = "us-east-1"
    fresh: bool = False
    mme_memory_mb: int = Field(default=DEFAULT_MME_MEMORY_MB, gt=0)
    mme_load_wait_s: float = Field(default=DEFAULT_MME_LOAD_WAIT_S, ge=0)
    approval_timeout_s: int = Field(default=DEFAULT_APPROVAL_TIMEOUT_S, gt=0)
    # execution environments per function at once (Lambda's concurrency, bounded for a laptop)
    lambda_concurrency: int = Field(default=DEFAULT_LAMBDA_CONCURRENCY, gt=0, le=64)
    # run this package (a folder with sam.yaml and its artifacts) instead of building build/dev
    package_dir: Path | None = None

    def as_arguments(self) -> list[str]:
        """The ``mmedeploy up`` options that recreate this config (for the detached child)."""
        arguments = [
            "--port-base",
            str(self.port_base),
            "--state-dir",
            str(self.state_dir),
            "--mme-memory-mb",
            str(self.mme_memory_mb),
            "--mme-load-wait",
            str(self.mme_load_wait_s),
            "--approval-timeout",
            str(self.approval_timeout_s),
            "--lambda-concurrency",
            str(self.lambda_concurrency),
        ]
        if self.package_dir is not None:
            arguments += ["--package-dir", str(self.package_dir)]
        return arguments + (["--fresh"] if self.fresh else [])

    @property
    def ports(self) -> dict[str, int]:
        base = self.port_base
        return {"AWS emulator": base, "API": base + 1, "Slack sink": base + 2, "MME": base + 3}

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def snapshot_dir(self) -> Path:
        return self.state_dir / "state"

    def url(self, role: str) -> str:
        return f"http://{self.host}:{self.ports[role]}"


def read_stack(state_dir: Path = Path(".mmedeploy")) -> StackInfo | None:
    """The running stack's info, or None if none runs (a stale file from a dead process is removed)."""
    path = state_dir / "stack.json"
    try:
        info = StackInfo.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    if not process_alive(info.pid):
        path.unlink(missing_ok=True)
        return None
    return info


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_ports_free(config: StackConfig) -> None:
    for role, port in config.ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((config.host, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise PortInUse(port, role) from None
                raise


def local_endpoints(config: StackConfig) -> dict[str, str]:
    """The only difference between the local stack and AWS: endpoints (and credentials)."""
    return {
        "AWS_ENDPOINT_URL": config.url("AWS emulator"),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": config.url("MME"),
    }


class LocalStack:
    """Starts and stops the parts in this process. Use ``run_foreground`` from the CLI."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self._stoppers: list[Callable[[], None]] = []
        self.info: StackInfo | None = None
        self._session: Any = None
        # what is kept between runs, known once provisioned
        self._buckets: list[str] = []
        self._tables: list[str] = []

    # -- start -------------------------------------------------------------------------------
    def start(self) -> StackInfo:
        started = time.monotonic()
        config = self.config
        check_ports_free(config)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        if config.fresh and config.snapshot_dir.exists():
            _remove_tree(config.snapshot_dir)
        package = self._package()
        runtime_dir = ensure_runtime_client(project().build / ".runtime" / LOCAL_RUNTIME)
        # The host's own calls (the MME's S3 reads, moto's Step Functions) go to the emulator.
        os.environ.update({**local_endpoints(config), "AWS_DEFAULT_REGION": config.region, "AWS_REGION": config.region})
        administrator = self._start_moto()
        os.environ.update(administrator.environment())
        self._session = boto3.session.Session(
            aws_access_key_id=administrator.access_key_id,
            aws_secret_access_key=administrator.secret_access_key,
            region_name=config.region,
        )
        self._start_lambda(runtime_dir, administrator)
        from mmedeploy.local.provision import provision

        provisioned = provision(
            self._session,
            package,
            {
                "ApprovalTimeoutSeconds": str(config.approval_timeout_s),
                "SlackApiUrl": config.url("Slack sink") + "/api/",
                "SlackApproverIds": ",".join(SLACK_APPROVERS),
            },
        )
        # the API's output is its local URL: commands resolve the stack from these outputs
        outputs = provisioned.outputs = {**provisioned.outputs, "EndpointURL": config.url("API")}
        from mmedeploy.local.provision import publish_outputs

        publish_outputs(config.region, outputs)
        self._buckets = [outputs["StagingBucket"], outputs["ProductionBucket"]]
        self._tables = [outputs["RegistryTable"], outputs["IdempotencyTable"]]
        tokens = self._restore_or_create_tokens(provisioned.secrets)
        restored = self._restore_snapshot(provisioned.notifications)
        self._start_slack_sink()
        self._start_api(provisioned)
        self._prepare_functions(list(provisioned.functions.values()))
        self._start_mme([outputs["StagingEndpoint"], outputs["ProductionEndpoint"]])
        self._start_schedules(sweep_now=restored > 0)
        self.info = StackInfo(
            api_url=config.url("API"),
            aws_endpoint_url=config.url("AWS emulator"),
            mme_url=config.url("MME"),
            slack_url=config.url("Slack sink"),
            region=config.region,
            staging_bucket=outputs["StagingBucket"],
            production_bucket=outputs["ProductionBucket"],
            staging_endpoint=outputs["StagingEndpoint"],
            production_endpoint=outputs["ProductionEndpoint"],
            registry_table=outputs["RegistryTable"],
            idempotency_table=outputs["IdempotencyTable"],
            deploy_state_machine=outputs["DeployModelStateMachine"],
            promote_state_machine=outputs["PromoteModelStateMachine"],
            slack_signing_secret=tokens["slack_signing_secret"],
            slack_approver_ids=SLACK_APPROVERS,
            api_token=tokens["api_token"],
            admin_token=tokens["admin_token"],
            aws_access_key_id=administrator.access_key_id,
            aws_secret_access_key=administrator.secret_access_key,
            pid=os.getpid(),
            started_at=time.time(),
            ready_seconds=round(time.monotonic() - started, 2),
            created_another_way=provisioned.adapted,
        )
        _write_atomically(config.stack_file, self.info.model_dump_json(indent=2), mode=0o600)
        running.record(config.state_dir, self.info.pid)
        if restored:
            self.say(f"restored {restored} object(s) and item(s) from {config.snapshot_dir} (use --fresh to wipe)")
        return self.info

    def _start_schedules(self, sweep_now: bool) -> None:
        """The template's schedules (moto never fires them); with kept state, each runs once now,
        so versions whose executions the restart lost are reconciled, not forgotten."""
        from mmedeploy.local.provision import PSEUDO_PARAMETERS
        from mmedeploy.local.schedules import Schedules

        schedules = Schedules(self._client_factory, self.config.region, PSEUDO_PARAMETERS["AWS::AccountId"])
        if sweep_now:
            schedules.run_all()
        schedules.start()
        self._stoppers.append(schedules.stop)

    def _package(self) -> Path:
        """The artifacts the stack runs: ``build/dev``, rebuilt where its inputs changed."""
        from mmedeploy.deploy.package import TEMPLATE_NAME, ensure_built
        from mmedeploy.local.provision import PACKAGE_STAGE

        if self.config.package_dir is not None:
            given = self.config.package_dir.resolve()
            if not (given / TEMPLATE_NAME).is_file():
                raise FileNotFoundError(f"--package-dir {given} has no {TEMPLATE_NAME}: build it with make package")
            return given
        result = ensure_built(PACKAGE_STAGE, project().build / PACKAGE_STAGE)
        if result.rebuilt:
            self.say(f"packaged {', '.join(result.rebuilt)} in {result.seconds:.1f} s ({result.out})")
        return result.out

    def _start_lambda(self, runtime_dir: Path, administrator: Credentials) -> None:
        config = self.config
        region = config.region
        admin_client = functools.partial(administrator.client, region=region, endpoint_url=config.url("AWS emulator"))
        logs = FunctionLogs(
            config.state_dir / "logs",
            functools.cache(lambda: admin_client("logs")),
            EmbeddedMetrics(functools.cache(lambda: admin_client("cloudwatch"))),
        )
        launch = Launch(
            python=getattr(sys, "_base_executable", sys.executable),
            runtime_dir=runtime_dir,
            platform_environment=local_endpoints(config),
            region=region,
        )
        sts = admin_client("sts")
        assumed: dict[str, dict[str, str]] = {}
        lock = threading.Lock()

        def credentials(function: FunctionConfig) -> dict[str, str]:
            # what Lambda hands each environment: its execution role's credentials
            with lock:
                if function.role_arn not in assumed:
                    assumed[function.role_arn] = assume(sts, function.role_arn, function.name).environment()
                return assumed[function.role_arn]

        # unzipped packages are kept by their SHA-256 beside the build, shared by every stack
        service = LambdaService(
            project().build / ".lambda-tasks", launch, credentials, logs, max_environments=config.lambda_concurrency
        )
        self.lambda_service = service
        self._stoppers.append(service.stop)
        from mmedeploy.local import moto_seams

        self._client_factory = lambda service_name, region_name: admin_client(service_name, region=region_name)
        moto_seams.install(service.invoke, self._client_factory)

    def _start_moto(self) -> Credentials:
        """The emulator, IAM enforced from the first call after the administrator exists."""
        from mmedeploy.local.faults import moto_server

        url = self.config.url("AWS emulator")
        server = moto_server(self.config.host, self.config.ports["AWS emulator"])
        server.start()
        self._stoppers.append(server.stop)
        # Step Functions executes ASL only with this switched on.
        request = urllib.request.Request(
            f"{url}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        bootstrap = boto3.client(
            "iam",
            endpoint_url=url,
            region_name=self.config.region,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        administrator = create_administrator(bootstrap)
        self._stoppers.append(enforce_iam(url, administrator).restore)
        return administrator

    def _start_slack_sink(self) -> None:
        from mmedeploy.local.slack_sink import SlackSink

        sink = SlackSink(self.config.host, self.config.ports["Slack sink"])
        sink.start()
        self._stoppers.append(sink.stop)

    def _prepare_functions(self, names: list[str]) -> None:
        """Unzip every function's package in the background: the stack is ready meanwhile."""
        from moto.awslambda.models import lambda_backends

        from mmedeploy.local.provision import PSEUDO_PARAMETERS

        backend = lambda_backends[PSEUDO_PARAMETERS["AWS::AccountId"]][self.config.region]

        def prepare() -> None:
            for name in names:
                function = backend.get_function(name)
                try:
                    self.lambda_service.prepare(
                        FunctionConfig.from_moto(function), functools.partial(getattr, function, "code_bytes")
                    )
                except (OSError, zipfile.BadZipFile) as exc:  # its invocations will say so, in Lambda's shape
                    log.warning("could not unzip %s's package: %s", name, exc)

        threading.Thread(target=prepare, daemon=True, name="lambda-unzip").start()

    def _start_api(self, provisioned: Any) -> None:
        from moto.awslambda.models import lambda_backends

        from mmedeploy.local.moto_seams import invoke_function
        from mmedeploy.local.provision import PSEUDO_PARAMETERS
        from mmedeploy.local.rest_api import LocalRestApi, RestApi

        region = self.config.region
        backend = lambda_backends[PSEUDO_PARAMETERS["AWS::AccountId"]][region]
        service = self.lambda_service

        def invoke(function_name: str, event: bytes) -> Invocation:
            # API Gateway invokes the function Lambda holds now (an update takes effect at once)
            return invoke_function(backend.get_function(function_name), service.invoke, event)

        api = RestApi.from_template(provisioned.template, lambda logical: provisioned.functions[logical], region)
        server = LocalRestApi(api, invoke, self.config.host, self.config.ports["API"])
        server.start()
        self._stoppers.append(server.stop)

    def _start_mme(self, endpoints: list[str]) -> None:
        from mmedeploy.local.mme.server import MmeSettings, start_mme

        config = self.config
        settings = MmeSettings(
            host=config.host,
            port=config.ports["MME"],
            state_dir=config.state_dir,
            region=config.region,
            memory_budget_mb=config.mme_memory_mb,
            load_wait_s=config.mme_load_wait_s,
        )
        mme, server = start_mme(settings, self._session)
        self._stoppers.append(mme.stop)  # runs after the front door below has stopped taking calls

        def stop_front_door() -> None:
            server.shutdown()
            server.server_close()

        self._stoppers.append(stop_front_door)
        # The template's endpoints get their Triton now, so a broken install shows at `up`.
        for name in endpoints:
            mme.endpoint(name)

    def _restore_or_create_tokens(self, secret_names: dict[str, str]) -> dict[str, str]:
        path = self.config.snapshot_dir / "tokens.json"
        try:
            tokens: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            tokens = {
                "slack_signing_secret": secrets.token_hex(16),
                "api_token": "mmd_" + secrets.token_urlsafe(24),
                "admin_token": "mmd_" + secrets.token_urlsafe(24),
            }
        client = self._session.client("secretsmanager")
        client.put_secret_value(
            SecretId=secret_names["SlackSigningSecret"], SecretString=tokens["slack_signing_secret"]
        )
        hashed = {
            "tokens": [
                {
                    "name": "local-invoke",
                    "sha256": hashlib.sha256(tokens["api_token"].encode()).hexdigest(),
                    "scopes": ["invoke"],
                },
                {
                    "name": "local-admin",
                    "sha256": hashlib.sha256(tokens["admin_token"].encode()).hexdigest(),
                    "scopes": ["invoke", "admin"],
                },
            ]
        }
        client.put_secret_value(SecretId=secret_names["ApiTokens"], SecretString=json.dumps(hashed))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, json.dumps(tokens), mode=0o600)
        return tokens

    # -- state between runs --------------------------------------------------------------------
    def snapshot(self) -> int:
        """Save every object version (ids, metadata, delete markers) and table item so the next
        ``up`` starts where this one ended."""
        target = self.config.snapshot_dir
        count = 0
        s3 = self._session.client("s3")
        for bucket in self._buckets:
            folder = target / "s3" / bucket
            if folder.exists():
                _remove_tree(folder)
            folder.mkdir(parents=True)
            count += save_bucket(s3, bucket, folder)
        dynamodb = self._session.client("dynamodb")
        for table in self._tables:
            items: list[dict[str, Any]] = []
            for page in dynamodb.get_paginator("scan").paginate(TableName=table):
                items.extend(page["Items"])
            (target / "dynamodb").mkdir(parents=True, exist_ok=True)
            _write_atomically(target / "dynamodb" / f"{table}.json", json.dumps(items))
            count += len(items)
        return count

    def _restore_snapshot(self, notifications: dict[str, dict[str, Any]]) -> int:
        from mmedeploy.local.provision import PSEUDO_PARAMETERS

        target = self.config.snapshot_dir
        if not target.exists():
            return 0
        s3 = self._session.client("s3")
        count = 0
        for bucket in self._buckets:
            folder = target / "s3" / bucket
            if not folder.is_dir():
                continue
            # Restoring must not look like new uploads (the pipeline would run again): notifications
            # are off meanwhile, then the template's are applied again.
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
            count += restore_bucket(s3, bucket, folder, MotoEmulator(PSEUDO_PARAMETERS["AWS::AccountId"]))
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=notifications.get(bucket, {})
            )
        dynamodb = self._session.client("dynamodb")
        for table in self._tables:
            path = target / "dynamodb" / f"{table}.json"
            if not path.is_file():
                continue
            for item in json.loads(path.read_text()):
                dynamodb.put_item(TableName=table, Item=item)
                count += 1
        return count

    # -- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            saved = self.snapshot()
            if saved:
                self.say(f"saved {saved} object(s) and item(s) to {self.config.snapshot_dir}")
        except Exception as exc:  # noqa: BLE001 - a failed snapshot must not keep ports bound
            self.say(f"could not save the stack's state: {exc}")
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - stop everything else regardless
                log.warning("stopping a part failed: %s", exc)
        self._stoppers.clear()
        self.config.stack_file.unlink(missing_ok=True)
        running.forget(self.config.state_dir)


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.chmod(mode)
    os.replace(partial, path)


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()


def run_foreground(config: StackConfig, say: Callable[[str], None] = print) -> int:
    """``mmedeploy up``: start, report, serve until SIGINT/SIGTERM, then stop cleanly."""
    _log_to_stderr()
    stack = LocalStack(config, say)
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        info = stack.start()
    except Exception:
        stack.stop()
        raise
    describe(info, config, say)
    stopping.wait()
    say("stopping the local stack ...")
    stack.stop()
    say("stopped")
    return 0


def _log_to_stderr() -> None:
    """The stack's own log lines (MME loads, evictions, Triton restarts) on stderr, which is
    ``stack.log`` when detached."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Not the "mmedeploy" logger: that is the Chalice app's (named after the app), which Chalice
    # sets to ERROR with its own handler.
    # One line per request from the emulator's and Chalice's HTTP servers would drown the rest.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logger = logging.getLogger("mmedeploy.local")
    if not logger.handlers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def describe(info: StackInfo, config: StackConfig, say: Callable[[str], None]) -> None:
    say(f"local stack ready in {info.ready_seconds:.1f} s (pid {info.pid})")
    say(f"  API            {info.api_url}   (GET /health)")
    say(f"  AWS emulator   {info.aws_endpoint_url}   (export AWS_ENDPOINT_URL={info.aws_endpoint_url})")
    say(f"  Slack sink     {info.slack_url}   (GET /_messages)")
    say(f"  MME            {info.mme_url}   (export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={info.mme_url})")
    say(f"  buckets        {info.staging_bucket} (staging), {info.production_bucket} (production)")
    say(f"  endpoints      {info.staging_endpoint}, {info.production_endpoint}")
    say(f"  stack file     {config.stack_file}")
    if info.created_another_way:
        # One line per reason (dicts keep the first-seen order): the list stays short to read.
        by_reason: dict[str, list[str]] = {}
        for logical, why in info.created_another_way:
            by_reason.setdefault(why, []).append(logical)
        say(f"  not created by moto's CloudFormation ({len(info.created_another_way)} entries of infra/template.yaml):")
        for why, logicals in by_reason.items():
            say(f"    - {', '.join(logicals)}: {why}")
