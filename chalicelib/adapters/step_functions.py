"""Step Functions: starting DeployModel executions (a name already used means the event was a
duplicate) and resuming a ``.waitForTaskToken`` task with an approver's decision. A ClientError
is raised as the domain's ServiceError; a task that no longer waits as TaskGone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from chalicelib.domain.errors import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

SERVICE = "Step Functions"
# What Step Functions answers for a token whose task is over.
GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


class TaskGone(Exception):
    """The task no longer waits: it timed out, or its execution ended or was stopped."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code  # one of GONE

    @property
    def timed_out(self) -> bool:
        return self.code == "TaskTimedOut"


def _service_error(exc: ClientError) -> ServiceError:
    error = exc.response.get("Error", {})
    return ServiceError(SERVICE, str(error.get("Code", "")), str(error.get("Message", "")))


class DeploymentStarter:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def execution_arn(self, execution_name: str) -> str:
        # arn:aws:states:REGION:ACCOUNT:stateMachine:NAME -> ...:execution:NAME:EXECUTION
        return self._arn.replace(":stateMachine:", ":execution:", 1) + f":{execution_name}"

    def start(self, execution_name: str, payload: BaseModel) -> bool:
        """True if this call started the execution, False if it already existed (open or closed)."""
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=execution_name, input=payload.model_dump_json())
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return False
        except ClientError as exc:
            raise _service_error(exc) from exc
        return True


class TaskCallback:
    """Resumes a ``.waitForTaskToken`` task: the Step Functions side of a decision."""

    def __init__(self, client: SFNClient) -> None:
        self._sfn = client

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._call(lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: dict[str, Any]) -> None:
        self._call(lambda: self._sfn.send_task_failure(taskToken=token, error=error, cause=json.dumps(cause)))

    def _call(self, send: Callable[[], object]) -> None:
        try:
            send()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in GONE:
                raise TaskGone(code, exc.response.get("Error", {}).get("Message", "")) from exc
            raise _service_error(exc) from exc
