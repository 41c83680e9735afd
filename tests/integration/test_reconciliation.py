"""On the local stack: an execution stopped from outside still ends its version, through Step
Functions' "Execution Status Change" event (the stack announces it as AWS does), the rule and
the reconciling function, from the artifact, under its own role."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.deploy_model.unheard_uploads import UNHEARD_AFTER_S
from chalicelib.domain.lifecycle import SETTLED, Status
from chalicelib.domain.records import ModelVersion
from mmedeploy.local.faults import CONTROL_PATH as THROTTLE_PATH
from mmedeploy.local.stack import StackInfo
from testkit.mme import triton_pids
from testkit.stack_process import aws_client, free_port_base, mmedeploy, start_stack, stop_stack
from testkit.tarballs import ECHO_MODEL, echo_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_deployment_stopped_while_awaiting_approval_ends_failed_saying_where_and_can_be_redeployed(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    # GIVEN a version waiting for approval
    awaiting = _awaiting_approval(local_stack, aws, registry, "stopped")
    assert awaiting.execution_arn

    def status(wanted: frozenset[Status]) -> ModelVersion | None:
        return _in(registry, "stopped", wanted)

    # WHEN an operator stops its DeployModel execution (the console's "Stop execution")
    aws("stepfunctions").stop_execution(executionArn=awaiting.execution_arn, cause="stopped by an operator")
    # THEN the version ends FAILED with a reason naming the stop, the state and the cause
    ended = wait_for(lambda: status(frozenset({Status.FAILED})), 30, "stopped 1 to end FAILED")
    assert ended.reason == (
        f"ExecutionAborted: the DeployModel execution {awaiting.execution_arn.rsplit(':', 1)[-1]} "
        "was stopped at RequestApproval: stopped by an operator"
    )
    history = registry.get("stopped", "1", with_history=True).history
    assert history[-1].actor == "pipeline/record-outcome"
    # AND the execution reads ABORTED, as StopExecution made it, not failed by an interrupted wait
    execution = aws("stepfunctions").describe_execution(executionArn=awaiting.execution_arn)
    assert (execution["status"], execution.get("cause")) == ("ABORTED", "stopped by an operator")

    # WHEN an admin redeploys it THEN the same artifact goes through the pipeline again, to approval
    redeployed = mmedeploy("redeploy", "stopped", "1", "--watch", "--state-dir", str(local_stack_dir), timeout=180)
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    again = registry.get("stopped", "1", with_history=True)
    assert again.status is Status.AWAITING_APPROVAL and again.execution_arn != awaiting.execution_arn
    assert [h.status for h in again.history].count(Status.RECEIVED) == 2
    assert again.sha256 == awaiting.sha256
    # AND a version that does not exist is "not found" (exit 3)
    refused = mmedeploy("redeploy", "stopped", "9", "--state-dir", str(local_stack_dir))
    assert refused.returncode == 3 and "no version 9 of model stopped" in refused.stderr


def test_a_version_awaiting_approval_across_a_restart_is_swept_not_left_waiting(tmp_path: Path) -> None:
    state_dir, base = tmp_path / ".mmedeploy", free_port_base()
    info = start_stack(state_dir, base)
    try:
        # GIVEN a version waiting for approval on a stack with kept state
        registry = _registry(info)
        _s3(info).put_object(Bucket=info.staging_bucket, Key="kept_1.tar.gz", Body=pack(echo_repo("kept", "1")))
        awaiting = wait_for(lambda: _in(registry, "kept", SETTLED), 90, "kept 1 to settle")
        assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    finally:
        stop_stack(state_dir)
    # WHEN the stack restarts: its executions and task tokens are gone, the registry is kept
    info = start_stack(state_dir, base, fresh=False)
    try:
        registry = _registry(info)
        # THEN the sweep it runs as it starts ends the version, saying why, instead of leaving it waiting
        ended = wait_for(lambda: _in(registry, "kept", frozenset({Status.FAILED})), 30, "kept 1 to be swept")
        assert "Step Functions no longer knows this execution" in ended.reason
        # AND an approval click says the truth: nothing waits for it any more
        click = mmedeploy("approve", "kept", "1", "--state-dir", str(state_dir))
        assert click.returncode == 1 and "no longer waits for this approval: it is FAILED" in click.stderr
    finally:
        stop_stack(state_dir)


def _s3(info: StackInfo) -> Any:
    return aws_client(info, "s3")


def _registry(info: StackInfo) -> ModelRegistry:
    return ModelRegistry(info.registry_table, aws_client(info, "dynamodb"))


def _awaiting_approval(info: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry, name: str) -> ModelVersion:
    """``name`` 1 (the echo model) pushed to the staging bucket and followed to AWAITING_APPROVAL."""
    aws("s3").put_object(Bucket=info.staging_bucket, Key=f"{name}_1.tar.gz", Body=pack(echo_repo(name, "1")))
    awaiting = wait_for(lambda: _in(registry, name, SETTLED), 90, f"{name} 1 to settle")
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    return awaiting


def _in(registry: ModelRegistry, name: str, wanted: frozenset[Status], version: str = "1") -> ModelVersion | None:
    record = registry.find(name, version)
    return record if record and record.status in wanted else None


def test_a_promotion_stopped_midway_ends_failed_and_leaves_production_as_it_was(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    _awaiting_approval(local_stack, aws, registry, "halted")
    # GIVEN its promotion under way (approved as a Slack click would)
    approved = mmedeploy("approve", "halted", "1", "--state-dir", str(local_stack_dir))
    assert approved.returncode == 0, approved.stderr
    promoting = wait_for(lambda: _in(registry, "halted", frozenset({Status.PROMOTING})), 30, "halted 1 to promote")
    assert promoting.promotion is not None
    # WHEN an operator stops the PromoteModel execution
    aws("stepfunctions").stop_execution(executionArn=promoting.promotion.execution_arn, cause="stopped by an operator")
    # THEN the version ends FAILED saying so, and production has no version of it
    ended = wait_for(lambda: _in(registry, "halted", frozenset({Status.FAILED})), 30, "halted 1 to end FAILED")
    assert ended.reason.startswith("promotion failed, production unchanged: ExecutionAborted: the PromoteModel")
    assert ended.reason.endswith(": stopped by an operator")
    assert registry.find_alias("halted") is None


def test_a_rollback_after_a_restart_finds_the_pinned_artifacts(tmp_path: Path) -> None:
    state_dir, base = tmp_path / ".mmedeploy", free_port_base()
    state = ("--state-dir", str(state_dir))
    info = start_stack(state_dir, base)
    try:
        # GIVEN version 1 in production, then version 2 promoted over it (1 is RETIRED)
        registry = _registry(info)
        for version in ("1", "2"):
            key = f"kept_{version}.tar.gz"
            _s3(info).put_object(Bucket=info.staging_bucket, Key=key, Body=pack(echo_repo("kept", version)))
            wait_for(lambda v=version: _in(registry, "kept", SETTLED, v), 90, f"kept {version} to settle")
            approved = mmedeploy("approve", "kept", version, *state)
            assert approved.returncode == 0, approved.stderr
            wait_for(lambda v=version: _in(registry, "kept", frozenset({Status.PRODUCTION}), v), 90, "production")
        assert registry.get("kept", "1").status is Status.RETIRED
    finally:
        stop_stack(state_dir)
    # WHEN the stack restarts with its kept state, and an admin rolls back
    info = start_stack(state_dir, base, fresh=False)
    try:
        rolled = mmedeploy("rollback", "kept", *state, timeout=180)
        # THEN version 1 serves production again: its pinned copy and its sha256 were kept
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        registry = _registry(info)
        assert registry.get("kept", "1").status is Status.PRODUCTION
        assert registry.get("kept", "2").status is Status.RETIRED
    finally:
        stop_stack(state_dir)


def test_a_tarball_deleted_before_validation_ends_failed_with_a_reason(
    local_stack: StackInfo, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    s3 = aws("s3")
    # GIVEN an upload whose object version is deleted right after (before validation reads it)
    put = s3.put_object(
        Bucket=local_stack.staging_bucket, Key="vanished_1.tar.gz", Body=pack(echo_repo("vanished", "1"))
    )
    s3.delete_object(Bucket=local_stack.staging_bucket, Key="vanished_1.tar.gz", VersionId=put["VersionId"])
    # THEN the version still ends, with a reason that names the missing object
    ended = wait_for(lambda: _in(registry, "vanished", SETTLED), 60, "vanished 1 to settle")
    assert ended.status in (Status.FAILED, Status.REJECTED), ended.reason
    assert "vanished_1.tar.gz" in ended.reason, ended.reason


def test_a_slack_outage_loses_no_notice(local_stack: StackInfo, aws: Callable[[str], Any]) -> None:
    def outage(down: bool) -> None:
        body = json.dumps({"down": down}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{local_stack.slack_url}/_outage", data=body), timeout=5)

    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    # GIVEN Slack is down when a version ends (a tarball the validator rejects)
    outage(True)
    try:
        aws("s3").put_object(Bucket=local_stack.staging_bucket, Key="outage_1.tar.gz", Body=b"not a tarball")
        ended = wait_for(lambda: _in(registry, "outage", SETTLED), 60, "outage 1 to settle")
        assert ended.status is Status.REJECTED and ended.execution_arn
        sfn = aws("stepfunctions")
        # (Slack stays down until its deployment is over: its notice was tried, and failed)
        wait_for(
            lambda: sfn.describe_execution(executionArn=ended.execution_arn)["status"] != "RUNNING",
            30,
            "the deployment to end",
        )
    finally:
        outage(False)
    # THEN the ending is recorded, and its Slack notice is owed, not lost
    owed = registry.get("outage", "1")
    assert owed.status is Status.REJECTED and owed.outbox and owed.outbox[-1].slack
    # WHEN Slack is back and the sweep runs (the schedule's event, sent straight to the function)
    time.sleep(max(0.0, 31 - (time.time() - _epoch(owed.updated_at))))
    swept = _sweep(aws)
    # THEN the notice goes out, once, and nothing is owed any more
    assert "outage 1" in swept["announced"], swept
    messages = json.loads(urllib.request.urlopen(f"{local_stack.slack_url}/_messages", timeout=5).read())
    posted = [m for m in messages if m["method"] == "chat.postMessage" and "outage" in json.dumps(m["payload"])]
    assert len(posted) == 1
    assert registry.get("outage", "1").outbox == []


def _epoch(at: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


SLOW_TO_LOAD = ECHO_MODEL.replace(
    b"class TritonPythonModel:\n",
    b"class TritonPythonModel:\n    def initialize(self, args):\n        import time\n\n        time.sleep(6)\n\n",
)


def test_a_model_server_killed_while_warming_fails_the_version_and_a_redeploy_retries_it(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    body = pack(echo_repo("loading", "1", model=SLOW_TO_LOAD))
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key="loading_1.tar.gz", Body=body)
    # GIVEN the version WARMING: the staging MME's Triton is loading it (6 s)
    wait_for(lambda: _in(registry, "loading", frozenset({Status.WARMING})), 60, "loading 1 to warm")
    time.sleep(1.0)
    # WHEN the model server dies mid-load
    os.kill(triton_pids(local_stack)[local_stack.staging_endpoint], signal.SIGKILL)
    # THEN the version ends FAILED, saying the server restarted (not the model's fault)
    ended = wait_for(lambda: _in(registry, "loading", SETTLED), 120, "loading 1 to settle")
    assert ended.status is Status.FAILED and "restarted" in ended.reason, ended.reason
    # AND a redeploy takes it through again, to approval
    redeployed = mmedeploy("redeploy", "loading", "1", "--watch", "--state-dir", str(local_stack_dir), timeout=240)
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    assert registry.get("loading", "1").status is Status.AWAITING_APPROVAL


def test_concurrent_approve_and_decline_clicks_decide_once(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    _awaiting_approval(local_stack, aws, registry, "torn")
    # WHEN two approvers click at the same moment, one Approve and one Decline
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        clicks = list(
            pool.map(
                lambda verb: mmedeploy(verb, "torn", "1", "--state-dir", str(local_stack_dir)), ["approve", "decline"]
            )
        )
    # THEN exactly one decides, the other is told it was already decided, and the version follows the one
    decided = [c for c in clicks if c.returncode == 0]
    assert len(decided) == 1, [(c.returncode, c.stdout, c.stderr) for c in clicks]
    (other,) = [c for c in clicks if c.returncode != 0]
    assert other.returncode == 1 and "already" in other.stderr, other.stderr
    wanted = frozenset({Status.PRODUCTION}) if decided[0] is clicks[0] else frozenset({Status.DECLINED})
    ended = wait_for(lambda: _in(registry, "torn", wanted), 90, f"torn 1 to be {sorted(wanted)}")
    assert ended.status in wanted


def test_an_upload_whose_registration_the_throttled_registry_refused_is_found_by_the_sweep(
    local_stack: StackInfo, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    # GIVEN the registry's table throttled for longer than the SDK retries (about 25 s), with room
    # for a slow cold start of the trigger (the sweep waits a minute anyway)
    throttle = json.dumps({"table": local_stack.registry_table, "seconds": 50}).encode()
    control = f"{local_stack.aws_endpoint_url}{THROTTLE_PATH}"
    urllib.request.urlopen(urllib.request.Request(control, data=throttle), timeout=5).close()
    # WHEN a tarball is uploaded: its trigger gives up (RegistryBusy), and the event is spent
    uploaded = time.time()
    put = aws("s3").put_object(
        Bucket=local_stack.staging_bucket, Key="throttled_1.tar.gz", Body=pack(echo_repo("throttled", "1"))
    )
    time.sleep(51)
    assert registry.find("throttled", "1") is None  # nothing half-written
    # THEN the sweep, once the upload is a minute old, registers it as its event would have
    time.sleep(max(0.0, UNHEARD_AFTER_S + 1 - (time.time() - uploaded)))
    swept = _sweep(aws)
    registered = registry.get("throttled", "1", with_history=True)
    assert registered.history[0].actor == "reconcile/sweep", (swept, registered.history)
    assert registered.object_version == put["VersionId"]
    # AND it goes through the pipeline to approval, every step in its history once
    awaiting = wait_for(lambda: _in(registry, "throttled", SETTLED), 90, "throttled 1 to settle")
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    steps = [h.status for h in registry.get("throttled", "1", with_history=True).history]
    assert steps == [
        Status(s) for s in ("RECEIVED", "VALIDATING", "VALIDATED", "WARMING", "STAGED", "AWAITING_APPROVAL")
    ]
    # AND the next sweep leaves it alone
    assert not any("throttled" in entry for entry in _sweep(aws)["registered"])


def _sweep(aws: Callable[[str], Any]) -> dict[str, Any]:
    """One run of the reconciler's schedule, its event sent straight to the function."""
    name = next(
        f["FunctionName"]
        for f in aws("lambda").list_functions()["Functions"]
        if f["FunctionName"].endswith("-reconcile")
    )
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    answer: dict[str, Any] = json.loads(
        aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())["Payload"].read()
    )
    return answer
