"""On the local stack: an execution stopped from outside still ends its version, through Step
Functions' "Execution Status Change" event (the stack announces it as AWS does), the rule and
the reconciling function, from the artifact, under its own role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import SETTLED, Status
from chalicelib.domain.records import ModelVersion
from mmedeploy.local.stack import StackInfo
from testkit.tarballs import echo_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_deployment_stopped_while_awaiting_approval_ends_failed_saying_where(
    local_stack: StackInfo, aws: Callable[[str], Any]
) -> None:
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))
    # GIVEN a version waiting for approval
    aws("s3").put_object(
        Bucket=local_stack.staging_bucket, Key="stopped_1.tar.gz", Body=pack(echo_repo("stopped", "1"))
    )

    def status(wanted: frozenset[Status]) -> ModelVersion | None:
        record = registry.find("stopped", "1")
        return record if record and record.status in wanted else None

    awaiting = wait_for(lambda: status(SETTLED), 90, "stopped 1 to settle")
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    assert awaiting.execution_arn
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
