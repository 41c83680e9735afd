"""Sweep: every version in progress checked against its execution; one whose execution ended
without a word (or that Step Functions no longer knows) is ended through ExecutionEnded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.executions import ExecutionState
from chalicelib.domain.lifecycle import Status
from chalicelib.sweep import GONE, GONE_AFTER_S, Sweep
from mmedeploy.local.schedules import rate_seconds, scheduled_event
from tests.unit.test_execution_ended import DEPLOY, OWNER, World


class FakeExecutions:
    def __init__(self) -> None:
        self.states: dict[str, ExecutionState] = {}
        self.described: list[str] = []

    def describe(self, execution_arn: str) -> ExecutionState | None:
        self.described.append(execution_arn)
        return self.states.get(execution_arn)

    def set(self, arn: str, status: str, **extra: Any) -> None:
        self.states[arn] = ExecutionState(
            executionArn=arn,
            stateMachineArn=DEPLOY,
            name=arn.rsplit(":", 1)[-1],
            status=status,
            input=json.dumps({"name": "fraud", "version": "1"}),
            **extra,
        )


class SweepWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.executions = FakeExecutions()
        self.clock = datetime(2030, 1, 1, tzinfo=UTC)
        self.sweep = Sweep(
            self.registry,  # type: ignore[arg-type]
            self.executions,  # type: ignore[arg-type]
            self.ended,
            self.tracker.deliver,
            now=lambda: self.clock,
        )


@pytest.fixture
def sweeper() -> SweepWorld:
    return SweepWorld()


def test_a_version_whose_execution_was_stopped_unnoticed_is_ended(sweeper: SweepWorld) -> None:
    # GIVEN a version awaiting approval whose execution ended ABORTED, and no event said so
    sweeper.at(Status.AWAITING_APPROVAL)
    sweeper.executions.set(OWNER, "ABORTED", cause="stopped by an operator")
    # WHEN the sweep runs THEN it is FAILED, saying where and why
    report = sweeper.sweep.run()
    assert (report.checked, report.ended) == (1, ["fraud 1: FAILED"])
    assert sweeper.registry.get("fraud", "1").reason == (
        "ExecutionAborted: the DeployModel execution fraud_1-e1 was stopped at RequestApproval: stopped by an operator"
    )
    # AND a second sweep finds nothing in progress
    assert sweeper.sweep.run().checked == 0


def test_a_version_whose_execution_step_functions_no_longer_knows_is_ended(sweeper: SweepWorld) -> None:
    sweeper.at(Status.WARMING)
    report = sweeper.sweep.run()
    assert report.ended == ["fraud 1: FAILED"]
    assert sweeper.registry.get("fraud", "1").reason.endswith(GONE)


def test_running_executions_and_resting_versions_are_left_alone(sweeper: SweepWorld) -> None:
    sweeper.at(Status.STAGED)
    sweeper.executions.set(OWNER, "RUNNING")
    assert sweeper.sweep.run().ended == []
    assert sweeper.registry.get("fraud", "1").status is Status.STAGED
    sweeper.tracker.move("fraud", "1", Status.AWAITING_APPROVAL, "t")
    sweeper.tracker.move("fraud", "1", Status.APPROVED, "t")  # resting: promote is its next action
    sweeper.executions.set(OWNER, "SUCCEEDED")
    assert sweeper.sweep.run().checked == 0


def test_a_just_received_version_gets_time_for_its_execution_to_start(sweeper: SweepWorld) -> None:
    # GIVEN a version registered a moment ago whose execution has not started yet
    sweeper.at(Status.RECEIVED)
    registered = datetime.fromisoformat(sweeper.registry.get("fraud", "1").updated_at.replace("Z", "+00:00"))
    sweeper.clock = registered + timedelta(seconds=5)
    assert sweeper.sweep.run().ended == []
    # WHEN it stays so past the grace period THEN it is ended
    sweeper.clock = registered + timedelta(seconds=GONE_AFTER_S + 1)
    assert sweeper.sweep.run().ended == ["fraud 1: FAILED"]


def test_rate_expressions_and_the_scheduled_event() -> None:
    assert [rate_seconds(e) for e in ("rate(5 minutes)", "rate(1 hour)", "rate(2 days)", "cron(0 * * * ? *)")] == [
        300,
        3600,
        172800,
        None,
    ]
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", "us-east-1", "123456789012")
    assert (event["detail-type"], event["source"], event["detail"]) == ("Scheduled Event", "aws.events", {})
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
