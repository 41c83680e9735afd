"""ExecutionEnded: a DeployModel or PromoteModel execution that ended without reaching its
recording state — stopped from outside (StopExecution: an operator, a redeploy), timed out as a
whole, or failed where no Catch applies — still ends its version, through the recording stage
its Catch would have reached (RecordOutcome, RecordPromotionOutcome), so the same ownership and
lifecycle rules apply: only the execution that owns a version may end it, an ended version stays
as it is, and the Slack message and lifecycle event follow.

Fed by the EventBridge rule on Step Functions' "Execution Status Change" events (FAILED,
TIMED_OUT, ABORTED) for both state machines. An execution that did reach its recording state and
then failed (DeployModel's Failed state after RecordOutcome) finds its version already ended.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from chalicelib.adapters.executions import ExecutionState
from chalicelib.deploy_model.record_outcome import RecordOutcome
from chalicelib.deploy_model.stage_io import RecordOutcomeInput
from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome
from chalicelib.promote_model.stage_io import RecordPromotionOutcomeInput
from chalicelib.stages.stage_io import StageError, StageResult

logger = Logger(service="mmedeploy", child=True)
ENDINGS = ("FAILED", "TIMED_OUT", "ABORTED")
# the error each ending is recorded with (an uncaught failure keeps its own)
ABORTED, TIMED_OUT = "ExecutionAborted", "ExecutionTimedOut"


class _Subject(BaseModel):
    name: str
    version: str


class ExecutionEnded:
    def __init__(
        self,
        deploy_state_machine_arn: str,
        promote_state_machine_arn: str,
        record_outcome: RecordOutcome,
        record_promotion_outcome: RecordPromotionOutcome,
        last_state: Callable[[str], str | None],
    ) -> None:
        self._machines = {deploy_state_machine_arn: "DeployModel", promote_state_machine_arn: "PromoteModel"}
        self._record_outcome = record_outcome
        self._record_promotion_outcome = record_promotion_outcome
        self._last_state = last_state

    def run(self, change: ExecutionState) -> StageResult | None:
        """The version's status after reconciling it; None when the event concerns no version."""
        machine = self._machines.get(_unqualified(change.stateMachineArn))
        if machine is None or change.status not in ENDINGS:
            return None
        try:
            subject = _Subject.model_validate(json.loads(change.input or "{}"))
        except (ValueError, ValidationError):
            logger.error("an ended execution names no model version", extra={"execution": change.executionArn})
            return None
        error = self._error(machine, change)
        logger.info(
            "execution ended outside its recording state",
            extra={"model": subject.name, "version": subject.version, "execution": change.executionArn},
        )
        if machine == "DeployModel":
            return self._record_outcome.run(
                RecordOutcomeInput(
                    name=subject.name, version=subject.version, execution=change.executionArn, error=error
                )
            )
        return self._record_promotion_outcome.run(
            RecordPromotionOutcomeInput(
                name=subject.name, version=subject.version, execution=change.executionArn, error=error
            )
        )

    def _error(self, machine: str, change: ExecutionState) -> StageError:
        state = self._last_state(change.executionArn)
        where = f" at {state}" if state else ""
        if change.status == "ABORTED":
            how = f": {change.cause}" if change.cause else " (StopExecution)"
            return StageError(Error=ABORTED, Cause=f"the {machine} execution {change.name} was stopped{where}{how}")
        if change.status == "TIMED_OUT":
            return StageError(
                Error=TIMED_OUT, Cause=f"the {machine} execution {change.name} ran past its timeout{where}"
            )
        cause = change.cause or f"the {machine} execution {change.name} failed{where}"
        return StageError(Error=change.error or "States.Runtime", Cause=cause)


def _unqualified(state_machine_arn: str) -> str:
    """A version or alias ARN (``...:stateMachine:name:1``) names its state machine's ARN."""
    parts = state_machine_arn.split(":")
    return ":".join(parts[:7])
