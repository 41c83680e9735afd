"""What Step Functions knows of an execution: how it stands, and the last state it entered."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# An execution that ended outside a Catch entered its last state among the newest few events.
_NEWEST_EVENTS = 50


class ExecutionState(BaseModel):
    """An execution as Step Functions describes it: DescribeExecution's answer and the ``detail``
    of its "Execution Status Change" event share these fields."""

    executionArn: str
    stateMachineArn: str
    name: str
    status: str
    input: str | None = None
    error: str | None = None
    cause: str | None = None


class Executions:
    def __init__(self, sfn: SFNClient) -> None:
        self._sfn = sfn

    def describe(self, execution_arn: str) -> ExecutionState | None:
        """None when Step Functions has no such execution (never started, or gone)."""
        try:
            found = self._sfn.describe_execution(executionArn=execution_arn)
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return None
        return ExecutionState.model_validate(json.loads(json.dumps(found, default=str)))

    def last_state(self, execution_arn: str) -> str | None:
        """The state the execution last entered; None when its history cannot be read (the
        reason recorded then just says less)."""
        try:
            events = self._sfn.get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=_NEWEST_EVENTS
            )["events"]
        except ClientError:
            return None
        # the newest by id: the emulator ignores reverseOrder
        entered = [e for e in events if e.get("stateEnteredEventDetails")]
        if not entered:
            return None
        return max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"]["name"]

    def stop(self, execution_arn: str, cause: str) -> bool:
        """Stop the execution (StopExecution, with ``cause``); False when Step Functions refuses
        (gone, already ended, not allowed): what the stop was for is then done by the execution's
        own next step, which finds its version ended."""
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error="RolloutAborted", cause=cause[:32768])
        except ClientError:
            return False
        return True
