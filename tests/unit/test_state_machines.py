"""The state machine definitions (DeployModel, PromoteModel), checked against the rules that keep
versions from being left in progress, and against the template that deploys them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.deploy_model.record_outcome import TIMEOUTS
from chalicelib.domain.lifecycle import Status
from mmedeploy.local.provision import load_template

ROOT = Path(__file__).resolve().parents[2]
# machine -> (its tasks, the Catch target every other task ends in)
MACHINES = {
    "DeployModelStateMachine": (
        {"Validate", "WarmStaging", "RequestApproval", "RecordApproval", "RecordOutcome"},
        "RecordOutcome",
    ),
    "PromoteModelStateMachine": (
        {"PreparePromotion", "WarmProduction", "RolloutStep", "FlipAlias", "RecordPromotionOutcome"},
        "RecordPromotionOutcome",
    ),
}


def definition(machine: dict[str, Any]) -> dict[str, Any]:
    text = (ROOT / machine["DefinitionUri"]).read_text()
    for key in machine.get("DefinitionSubstitutions", {}):
        text = text.replace("${" + key + "}", "60" if key.endswith("Seconds") else f"arn:{key}")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = load_template()["Resources"][name]["Properties"]
    return props


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return definition(properties("DeployModelStateMachine"))


@pytest.fixture(scope="module")
def promote() -> dict[str, Any]:
    return definition(properties("PromoteModelStateMachine"))


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_placeholder_has_a_substitution_in_the_template(name: str) -> None:
    machine = properties(name)
    text = (ROOT / machine["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text)) - {"..."}
    assert placeholders == set(machine["DefinitionSubstitutions"])


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_task_but_the_outcome_recorder_catches_everything_into_it(name: str) -> None:
    asl = definition(properties(name))
    expected, recorder = MACHINES[name]
    tasks = {state_name: state for state_name, state in asl["States"].items() if state["Type"] == "Task"}
    assert set(tasks) == expected
    for state_name, state in tasks.items():
        if state_name == recorder:
            assert state["Retry"][0]["ErrorEquals"] == ["States.ALL"]  # it must not give up quickly
            continue
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": recorder}]


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_task_retries_a_registry_that_sheds_load_before_it_gives_up(name: str) -> None:
    # RegistryBusy: DynamoDB throttled past the SDK's own retries (chalicelib/adapters/dynamodb.py)
    for state_name, state in definition(properties(name))["States"].items():
        if state["Type"] == "Task":
            retried = {error for rule in state["Retry"] for error in rule["ErrorEquals"]}
            assert retried & {"RegistryBusy", "States.ALL"}, state_name


def test_the_approval_wait_has_a_timeout_and_its_expiry_is_recognised(deploy: dict[str, Any]) -> None:
    approval = deploy["States"]["RequestApproval"]
    assert approval["Resource"].endswith(".waitForTaskToken")
    assert approval["TimeoutSeconds"] > 0
    assert approval["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    # States.ALL in the Catch covers States.Timeout; the outcome recorder maps it to EXPIRED
    assert {"States.Timeout", "States.HeartbeatTimeout"} <= TIMEOUTS


def test_an_approval_is_recorded_with_the_decision_the_gate_sent(deploy: dict[str, Any]) -> None:
    assert deploy["States"]["RequestApproval"]["Next"] == "RecordApproval"
    assert (
        deploy["States"]["RecordApproval"]["Parameters"]["decision.$"]
        == deploy["States"]["RequestApproval"]["ResultPath"]
    )


def test_only_a_failed_version_fails_the_deployment(deploy: dict[str, Any]) -> None:
    choice = deploy["States"]["Failed?"]
    assert choice["Choices"] == [
        {"Variable": "$.outcome.status", "StringEquals": Status.FAILED.value, "Next": "DeploymentFailed"}
    ]
    assert deploy["States"]["DeploymentFailed"]["Type"] == "Fail"


def test_the_alias_is_flipped_only_after_production_warmed(promote: dict[str, Any]) -> None:
    states = promote["States"]
    assert promote["StartAt"] == "PreparePromotion"
    assert states["WarmProduction"]["Next"] == "Rollout?"
    # a promotion flips after warming; a rollout only once its RolloutStep answers "promote"
    rollout = states["Rollout?"]
    assert rollout["Default"] == "FlipAlias"
    assert rollout["Choices"] == [{"Variable": "$.promotion.rollout", "BooleanEquals": True, "Next": "RolloutStep"}]
    into_flip = [
        (name, choice.get("StringEquals"))
        for name, state in states.items()
        for choice in state.get("Choices", [])
        if choice["Next"] == "FlipAlias"
    ]
    assert into_flip == [("Step?", "promote")]
    assert [name for name, s in states.items() if s.get("Next") == "FlipAlias"] == []
    assert states["FlipAlias"]["Parameters"]["alias_revision.$"] == "$.promotion.alias_revision"


def test_a_rollout_loops_through_its_steps_with_a_wait_between_readings(promote: dict[str, Any]) -> None:
    states = promote["States"]
    assert states["RolloutStep"]["Next"] == "Step?"
    assert states["RolloutStep"]["Parameters"]["execution.$"] == "$$.Execution.Id"
    actions = {choice["StringEquals"]: choice["Next"] for choice in states["Step?"]["Choices"]}
    assert actions == {"wait": "Bake", "promote": "FlipAlias", "rolled_back": "RolledBack"}
    assert "Default" not in states["Step?"]  # every action is named: an unknown one fails the execution
    assert states["Bake"] == {
        "Type": "Wait",
        "Comment": states["Bake"]["Comment"],
        "SecondsPath": "$.step.wait_seconds",
        "Next": "RolloutStep",
    }
    assert states["RolledBack"]["Type"] == "Succeed"  # the gates working is not a failed execution
    assert states["PreparePromotion"]["Parameters"]["rollout.$"] == "$.rollout"


def test_a_duplicate_promotion_touches_nothing(promote: dict[str, Any]) -> None:
    choice = promote["States"]["Started?"]
    assert choice["Choices"][0]["Variable"] == "$.promotion.started"
    assert promote["States"][choice["Default"]]["Type"] == "Succeed"


def test_approvals_and_promotion_requests_start_promote_model_with_the_event_detail() -> None:
    resources = load_template()["Resources"]
    rule = resources["PromotionRule"]["Properties"]
    assert set(rule["EventPattern"]["detail-type"]) == {"ModelApproved", "PromotionRequested", "RolloutRequested"}
    (target,) = rule["Targets"]
    name = properties("PromoteModelStateMachine")["Name"]["Fn::Sub"]
    assert target["Arn"]["Fn::Sub"].endswith(f":stateMachine:{name}")
    assert target["InputPath"] == "$.detail"
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["PromotionDeadLetterQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
