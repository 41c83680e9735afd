"""Starts DeployModel executions; a name already used means the event was a duplicate."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DeploymentStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
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
        return True
