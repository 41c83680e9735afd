"""The DeployModel state machine definition, checked against the rules that keep versions from
being left in progress, and against the template that deploys it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.lifecycle import Status
from chalicelib.pipeline.outcome_stage import TIMEOUTS
from mmedeploy.local.provision import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def machine() -> dict[str, Any]:
    return load_template()["Resources"]["DeployModelStateMachine"]["Properties"]


@pytest.fixture(scope="module")
def asl(machine: dict[str, Any]) -> dict[str, Any]:
    text = (ROOT / machine["DefinitionUri"]).read_text()
    for key in machine["DefinitionSubstitutions"]:
        text = text.replace("${" + key + "}", "60" if key.endswith("Seconds") else f"arn:{key}")
    definition: dict[str, Any] = json.loads(text)
    return definition


def test_every_placeholder_has_a_substitution_in_the_template(machine: dict[str, Any]) -> None:
    text = (ROOT / machine["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text)) - {"..."}
    assert placeholders == set(machine["DefinitionSubstitutions"])


def test_every_task_but_the_outcome_recorder_catches_everything_into_it(asl: dict[str, Any]) -> None:
    tasks = {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}
    assert set(tasks) == {"Validate", "WarmStaging", "RequestApproval", "RecordOutcome"}
    for name, state in tasks.items():
        if name == "RecordOutcome":
            assert state["Retry"][0]["ErrorEquals"] == ["States.ALL"]  # it must not give up quickly
            continue
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordOutcome"}]


def test_the_approval_wait_has_a_timeout_and_its_expiry_is_recognised(asl: dict[str, Any]) -> None:
    approval = asl["States"]["RequestApproval"]
    assert approval["Resource"].endswith(".waitForTaskToken")
    assert approval["TimeoutSeconds"] > 0
    assert approval["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    # States.ALL in the Catch covers States.Timeout; the outcome recorder maps it to EXPIRED
    assert {"States.Timeout", "States.HeartbeatTimeout"} <= TIMEOUTS


def test_only_a_failed_version_fails_the_execution(asl: dict[str, Any]) -> None:
    choice = asl["States"]["Failed?"]
    assert choice["Choices"] == [
        {"Variable": "$.outcome.status", "StringEquals": Status.FAILED.value, "Next": "DeploymentFailed"}
    ]
    assert asl["States"]["DeploymentFailed"]["Type"] == "Fail"
