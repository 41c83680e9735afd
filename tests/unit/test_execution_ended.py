"""ExecutionEnded: an execution that ended outside its recording state (stopped, timed out as a
whole, failed outside a Catch) ends its version through the recording stage its Catch would have
reached, with a reason that says what happened and where; nothing else is touched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.executions import ExecutionState
from chalicelib.deploy_model.record_outcome import RecordOutcome
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import PromotionRun
from chalicelib.execution_ended import ExecutionEnded
from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome
from tests.unit.builders import a_version
from tests.unit.fakes import Tracked

ACCOUNT = "arn:aws:states:us-east-1:123456789012"
DEPLOY = f"{ACCOUNT}:stateMachine:mmedeploy-dev-deploy-model"
PROMOTE = f"{ACCOUNT}:stateMachine:mmedeploy-dev-promote-model"
OWNER = f"{ACCOUNT}:execution:mmedeploy-dev-deploy-model:fraud_1-e1"
PROMOTER = f"{ACCOUNT}:execution:mmedeploy-dev-promote-model:p-1"


class World(Tracked):
    def __init__(self) -> None:
        super().__init__()
        self.last_states: dict[str, str] = {OWNER: "RequestApproval", PROMOTER: "WarmProduction"}
        self.ended = ExecutionEnded(
            DEPLOY,
            PROMOTE,
            RecordOutcome(self.tracker),
            RecordPromotionOutcome(self.tracker),
            self.last_states.get,
        )

    def at(self, status: Status) -> None:
        """fraud 1, owned by OWNER, moved up to ``status`` along the deployment's path."""
        self.tracker.register(
            a_version(
                name="fraud",
                version="1",
                status=Status.RECEIVED,
                bucket="staging",
                key="fraud_1.tar.gz",
                etag="e1",
                uploaded_at="2025-01-02T02:00:00.000Z",
                updated_at="2025-01-02T02:00:00.000Z",
                execution_arn=OWNER,
            ),
            "s3-upload",
        )
        path = [Status.RECEIVED, Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED]
        path += [Status.AWAITING_APPROVAL, Status.APPROVED, Status.PROMOTING]
        for step in path[1 : path.index(status) + 1]:
            changes = None
            if step is Status.PROMOTING:
                run = PromotionRun(
                    execution_arn=PROMOTER, alias_revision=0, rollback=False, requested_by="bob", started_at="t"
                )
                changes = lambda _record, run=run: {"promotion": run}  # noqa: E731
            self.tracker.move("fraud", "1", step, "pipeline/test", changes=changes)

    def end(self, execution: str, machine: str, status: str, **extra: Any) -> str | None:
        change = ExecutionState(
            executionArn=execution,
            stateMachineArn=machine,
            name=execution.rsplit(":", 1)[-1],
            status=status,
            input=json.dumps({"name": "fraud", "version": "1", "bucket": "staging"}),
            **extra,
        )
        result = self.ended.run(change)
        return result.status if result else None


@pytest.fixture
def world() -> World:
    return World()


def test_a_deployment_stopped_while_awaiting_approval_fails_the_version_saying_where(world: World) -> None:
    # GIVEN a version waiting for approval; WHEN its DeployModel execution is stopped from outside
    world.at(Status.AWAITING_APPROVAL)
    status = world.end(OWNER, DEPLOY, "ABORTED")
    # THEN it is FAILED with a reason naming the stop and the state; announced and told to Slack
    record = world.registry.get("fraud", "1")
    assert status == record.status == Status.FAILED
    assert record.reason == (
        "ExecutionAborted: the DeployModel execution fraud_1-e1 was stopped at RequestApproval (StopExecution)"
    )
    assert world.publisher.kinds[-1] == "DeploymentFailed"
    assert [r.status for r in world.notifier.outcomes] == [Status.FAILED]


def test_a_deployment_that_timed_out_or_failed_outside_a_catch_fails_with_its_own_error(world: World) -> None:
    world.at(Status.WARMING)
    world.last_states[OWNER] = "WarmStaging"
    assert world.end(OWNER, DEPLOY, "TIMED_OUT") == Status.FAILED
    assert world.registry.get("fraud", "1").reason == (
        "ExecutionTimedOut: the DeployModel execution fraud_1-e1 ran past its timeout at WarmStaging"
    )


def test_an_uncaught_failure_keeps_its_error_and_cause(world: World) -> None:
    world.at(Status.VALIDATING)
    assert world.end(OWNER, DEPLOY, "FAILED", error="States.Runtime", cause="bad JSONPath") == Status.FAILED
    assert world.registry.get("fraud", "1").reason == "States.Runtime: bad JSONPath"


def test_a_promotion_stopped_midway_fails_it_and_leaves_production_as_it_was(world: World) -> None:
    world.at(Status.PROMOTING)
    assert world.end(PROMOTER, PROMOTE, "ABORTED", cause="stopped by an operator") == Status.FAILED
    assert world.registry.get("fraud", "1").reason == (
        "promotion failed, production unchanged: ExecutionAborted: the PromoteModel execution p-1 was "
        "stopped at WarmProduction: stopped by an operator"
    )


def test_an_execution_that_does_not_own_the_version_changes_nothing(world: World) -> None:
    world.at(Status.AWAITING_APPROVAL)
    stranger = OWNER.replace("fraud_1-e1", "fraud_1-e2")
    assert world.end(stranger, DEPLOY, "ABORTED") == Status.AWAITING_APPROVAL
    assert world.registry.get("fraud", "1").status is Status.AWAITING_APPROVAL


def test_an_already_ended_version_stays_as_it_is(world: World) -> None:
    # GIVEN a version its Catch already ended (RecordOutcome ran, then the Failed state failed the execution)
    world.at(Status.AWAITING_APPROVAL)
    world.tracker.move("fraud", "1", Status.DECLINED, "bob", "declined by bob")
    events = len(world.publisher.kinds)
    assert world.end(OWNER, DEPLOY, "FAILED", error="ApprovalDeclined", cause="declined by bob") == Status.DECLINED
    assert world.registry.get("fraud", "1").reason == "declined by bob"
    assert len(world.publisher.kinds) == events  # nothing announced again


@pytest.mark.parametrize(
    ("machine", "status"),
    [(DEPLOY, "SUCCEEDED"), (DEPLOY, "RUNNING"), (f"{ACCOUNT}:stateMachine:someone-elses", "ABORTED")],
)
def test_other_executions_and_statuses_are_not_ours(world: World, machine: str, status: str) -> None:
    world.at(Status.AWAITING_APPROVAL)
    assert world.end(OWNER, machine, status) is None
    assert world.registry.get("fraud", "1").status is Status.AWAITING_APPROVAL


def test_an_execution_whose_input_names_no_version_is_logged_and_left(world: World) -> None:
    change = ExecutionState(executionArn=OWNER, stateMachineArn=DEPLOY, name="x", status="ABORTED", input="{}")
    assert world.ended.run(change) is None
