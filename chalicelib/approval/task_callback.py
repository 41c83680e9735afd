"""Resumes a ``.waitForTaskToken`` task: the Step Functions side of a decision."""

from __future__ import annotations

import json
from typing import Any


class TaskGone(Exception):
    """The task no longer waits: it timed out, or its execution ended or was stopped."""


# What Step Functions answers for a token whose task is over.
GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


class TaskCallback:
    def __init__(self, client: Any) -> None:
        self._sfn = client  # boto3 stepfunctions

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._call(self._sfn.send_task_success, taskToken=token, output=json.dumps(output))

    def fail(self, token: str, error: str, cause: dict[str, Any]) -> None:
        self._call(self._sfn.send_task_failure, taskToken=token, error=error, cause=json.dumps(cause))

    def _call(self, method: Any, **request: Any) -> None:
        try:
            method(**request)
        except self._sfn.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in GONE:
                raise TaskGone(f"{code}: {exc.response.get('Error', {}).get('Message', '')}") from exc
            raise
