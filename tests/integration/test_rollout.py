"""Progressive delivery on the local stack, with time compressed (bakes of seconds): a rollout
through the admin API, PromoteModel's RolloutStep loop with its Wait state in the emulator's Step
Functions, the API's per-version EMF metrics read back from the emulator's CloudWatch by the gates,
and synthetic traffic through the API Gateway the whole time.

- a healthy candidate walks every step and becomes PRODUCTION;
- a candidate that fails on a share of its inputs is rolled back at its first step, production
  answering every request of its share throughout;
- a slower candidate fails the latency gate;
- too little traffic waits rather than judging; pause, resume and abort; one rollout per model,
  nothing promoted or rolled back meanwhile;
- the rollout's execution stopped from outside ends the version FAILED with the canary removed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.rollout.progress import RolloutRun
from chalicelib.inference.api_contract import VERSION_HEADER
from mmedeploy.local.stack import StackInfo
from testkit.http import call_api
from testkit.slack import click, slack_messages
from testkit.stack_process import mmedeploy
from tests.integration.conftest import wait_for
from tests.integration.test_promotion import reach, staged

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# every step bakes 4 s, the gates read every 2 s, on at least 15 requests of each version
FAST = {"steps": [30, 60, 100], "bake_seconds": 4, "evaluation_interval_seconds": 2, "min_requests": 15}
ENDED = {Status.PRODUCTION, Status.ROLLED_BACK, Status.FAILED}


def model(body: str = "out = data", setup: str = "") -> bytes:
    """A Python model answering OUT = IN (``body`` may change ``out``, raise or sleep)."""
    return f"""import time
import numpy as np
import triton_python_backend_utils as pb_utils
{setup}

class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            {body}
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", out.astype(np.float32))]))
        return responses
""".encode()


@pytest.fixture(scope="module")
def registry(local_stack: StackInfo, aws: Callable[[str], Any]) -> ModelRegistry:
    return ModelRegistry(local_stack.registry_table, aws("dynamodb"))


def in_production(local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry, name: str) -> None:
    """Version 1 of ``name`` (OUT = IN) approved in Slack and serving in production."""
    record = staged(local_stack, aws, registry, name, "1", code=model())
    assert click(local_stack, str(record.approval_id))[1]["outcome"] == "approved"
    assert reach(registry, name, "1", {Status.PRODUCTION, Status.FAILED}).status is Status.PRODUCTION


def admin(local_stack: StackInfo, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {local_stack.admin_token}", "Content-Type": "application/json"}
    status, _, answer = call_api(local_stack.api_url, "POST", path, headers, json.dumps(body or {}).encode())
    return status, json.loads(answer or b"{}")


def rollout_step_started(registry: ModelRegistry, name: str) -> bool:
    """Whether a rollout of ``name`` takes a share of its traffic (its canary is there from the
    rollout's claim, at 0% while the candidate warms)."""
    canary = registry.routes(name).canary
    return canary is not None and canary.weight > 0


def rollout_of(registry: ModelRegistry, name: str, version: str) -> RolloutRun | None:
    record = registry.get(name, version)
    return record.promotion.rollout if record.promotion else None


@dataclass
class Traffic:
    """Requests through the API for one model: (version that answered, HTTP status, when)."""

    answers: list[tuple[str, int, float]] = field(default_factory=list)

    def of(self, version: str, since: float = 0.0) -> list[int]:
        return [status for served, status, at in self.answers if served == version and at >= since]


@contextmanager
def traffic(local_stack: StackInfo, name: str, workers: int = 3) -> Iterator[Traffic]:
    """Synthetic traffic: ``workers`` clients sending requests with random inputs in [0, 1)."""
    seen = Traffic()
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {local_stack.api_token}", "Content-Type": "application/json"}

    def client() -> None:
        while not stop.is_set():
            value = random.random()
            request = {"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [value] * 4}]}
            status, answered, _ = call_api(
                local_stack.api_url, "POST", f"/v2/models/{name}/infer", headers, json.dumps(request).encode()
            )
            seen.answers.append((answered.get(VERSION_HEADER, "?"), status, time.monotonic()))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=35)


def test_a_healthy_candidate_walks_every_step_and_becomes_production(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    in_production(local_stack, aws, registry, "walk")
    staged(local_stack, aws, registry, "walk", "2", code=model("out = data * 1.0"))
    with traffic(local_stack, "walk") as seen:
        # WHEN an admin rolls version 2 out with the CLI, following it (awaiting approval: the
        # request approves it); a lenient latency gate: p99s of a few dozen requests on a busy
        # 2-core machine are noisy
        rolled = mmedeploy(
            *("rollout", "walk", "2", "--steps", "30,60,100", "--bake", "4s", "--interval", "2"),
            *("--min-requests", "15", "--max-latency-ratio", "5", "--poll", "0.5", "--json"),
            *("--state-dir", str(local_stack_dir)),
            timeout=240,
        )
    # THEN it walks every step and becomes production: the command follows it there (exit 0)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert '"status": "PRODUCTION"' in rolled.stdout, rolled.stdout
    record = registry.get("walk", "2", with_history=True)
    assert record.status is Status.PRODUCTION, record.reason
    assert [h.actor for h in record.history if h.status is Status.APPROVED] == ["api:local-admin"]
    assert registry.get("walk", "1").status is Status.RETIRED
    assert registry.routes("walk").canary is None
    notes = [h.reason.split(":")[0] for h in record.history if h.reason.startswith("rollout step")]
    assert notes == [
        "rollout step 1 of 3 (30%) started",
        "rollout step 1 of 3 (30%) passed",
        "rollout step 2 of 3 (60%) started",
        "rollout step 2 of 3 (60%) passed",
    ]
    assert "passed every gate of 2 canary step(s)" in record.reason
    # AND both versions served the traffic, without an error
    assert seen.of("2") and seen.of("1") and set(seen.of("1") + seen.of("2")) == {200}
    # AND the approval message in Slack followed each step
    updates = [m for m in slack_messages(local_stack) if m["method"] == "chat.update"]
    mine = json.dumps([m["payload"] for m in updates if str(record.approval_id) in json.dumps(m["payload"])])
    assert "step 2 of 3" in mine and "PRODUCTION" in mine


def test_a_candidate_failing_a_share_of_inputs_is_rolled_back_at_its_first_step(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    in_production(local_stack, aws, registry, "flaky")
    # version 2's post-processing raises for one "class" of inputs, about a third of them (not the
    # zeros the warm-up sends)
    raises = 'raise ValueError("class 2 is not handled")'
    flaky = model(f"if float(data.flat[0]) > 0.67:\n                {raises}\n            out = data")
    staged(local_stack, aws, registry, "flaky", "2", code=flaky)
    with traffic(local_stack, "flaky") as seen:
        status, _ = admin(local_stack, "/models/flaky/versions/2/rollout", FAST)
        assert status == 202
        record = reach(registry, "flaky", "2", ENDED, timeout=120)
        ended = time.monotonic()
        time.sleep(7)  # the API's route cache (5 s) has seen the end
    # THEN it is rolled back at its first step, naming the error gate and both versions' figures
    assert record.status is Status.ROLLED_BACK, record.reason
    assert record.reason.startswith("rolled back at step 1 of 3 (30%), production 1 unchanged: error_rate gate failed")
    assert registry.routes("flaky").canary is None and registry.find_alias("flaky").version == "1"  # type: ignore[union-attr]
    # AND production answered every request of its share, during and after
    assert seen.of("1") and set(seen.of("1")) == {200}
    assert 502 in seen.of("2") and "?" not in {served for served, _, _ in seen.answers}
    # AND after the route cache's TTL nothing reaches the candidate any more
    assert seen.of("2", since=ended + 5.5) == []
    assert seen.of("1", since=ended + 5.5)


def test_a_slower_candidate_fails_the_latency_gate(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    in_production(local_stack, aws, registry, "slow")
    staged(local_stack, aws, registry, "slow", "2", code=model("time.sleep(0.08)\n            out = data"))
    with traffic(local_stack, "slow"):
        assert admin(local_stack, "/models/slow/versions/2/rollout", FAST)[0] == 202
        record = reach(registry, "slow", "2", ENDED, timeout=120)
    assert record.status is Status.ROLLED_BACK, record.reason
    assert "p99_latency gate failed" in record.reason
    assert registry.find_alias("slow").version == "1"  # type: ignore[union-attr]


def test_too_little_traffic_waits_and_a_rollout_is_paused_resumed_and_aborted(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    in_production(local_stack, aws, registry, "quiet")
    staged(local_stack, aws, registry, "quiet", "2", code=model())
    staged(local_stack, aws, registry, "quiet", "3", code=model())
    assert admin(local_stack, "/models/quiet/versions/2/rollout", {**FAST, "min_requests": 1000})[0] == 202

    # WHEN no traffic comes: the gates wait rather than judge
    def waiting() -> RolloutRun | None:
        run = rollout_of(registry, "quiet", "2")
        return run if run and run.last and run.last.outcome == "WAIT" else None

    run = wait_for(waiting, 90, "a reading that waits for traffic")
    assert run.step == 0 and "too little traffic to judge" in run.last.reason  # type: ignore[union-attr]
    time.sleep(5)  # past its bake: still at its first step
    assert registry.get("quiet", "2").status is Status.PROMOTING and rollout_of(registry, "quiet", "2").step == 0  # type: ignore[union-attr]

    # AND meanwhile one rollout per model, nothing promoted or rolled back
    status, answer = admin(local_stack, "/models/quiet/versions/3/rollout", FAST)
    assert status == 409 and "one rollout per model" in answer["error"]
    status, answer = admin(local_stack, "/models/quiet/versions/3/promote")
    assert status == 409 and "a rollout of quiet 2 is in progress" in answer["error"]
    assert admin(local_stack, "/models/quiet/rollback")[0] == 409
    assert registry.get("quiet", "3").status is Status.AWAITING_APPROVAL

    # WHEN paused, then resumed, with the CLI
    def control(action: str) -> dict[str, Any]:
        done = mmedeploy("rollout", action, "quiet", "--json", "--state-dir", str(local_stack_dir))
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    paused = control("pause")
    assert (paused["action"], paused["rollout"]["paused_by"]) == ("rollout paused", "api:local-admin")
    assert rollout_of(registry, "quiet", "2").paused_by == "api:local-admin"  # type: ignore[union-attr]
    # AND `mmedeploy status` shows the live panel
    shown = mmedeploy("status", "quiet", "--state-dir", str(local_stack_dir))
    assert shown.returncode == 0 and "step 1 of 3" in shown.stdout and "paused" in shown.stdout, shown.stdout
    resumed = control("resume")
    assert (resumed["action"], resumed["rollout"]["paused_by"]) == ("rollout resumed", None)

    # WHEN aborted: ROLLED_BACK at once, the canary removed, the execution stopped
    aborted = control("abort")
    assert (aborted["action"], aborted["status"]) == ("rollout aborted", "ROLLED_BACK")
    record = registry.get("quiet", "2")
    assert record.reason.startswith("aborted by api:local-admin at step 1 of 3 (30%)")
    assert registry.routes("quiet").canary is None and registry.find_alias("quiet").version == "1"  # type: ignore[union-attr]
    execution = record.promotion.execution_arn  # type: ignore[union-attr]
    wait_for(
        lambda: aws("stepfunctions").describe_execution(executionArn=execution)["status"] == "ABORTED",
        20,
        "the rollout's execution to stop",
    )
    assert admin(local_stack, "/models/quiet/rollout/abort")[0] == 404


def test_a_rollout_execution_stopped_from_outside_ends_failed_with_the_canary_removed(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    in_production(local_stack, aws, registry, "halt")
    staged(local_stack, aws, registry, "halt", "2", code=model())
    assert admin(local_stack, "/models/halt/versions/2/rollout", {**FAST, "min_requests": 1000})[0] == 202
    wait_for(lambda: rollout_step_started(registry, "halt"), 90, "the rollout's first step")
    execution = registry.get("halt", "2").promotion.execution_arn  # type: ignore[union-attr]
    # WHEN an operator stops the execution (the console, the CLI)
    aws("stepfunctions").stop_execution(executionArn=execution, cause="stopped by an operator")
    # THEN the version ends FAILED with the reason, the canary removed, production untouched
    record = reach(registry, "halt", "2", {Status.FAILED, Status.ROLLED_BACK}, timeout=30)
    assert record.status is Status.FAILED
    assert "rollout failed (step 1 of 3 (30%)), production unchanged, canary removed" in record.reason
    assert "stopped by an operator" in record.reason
    wait_for(lambda: registry.routes("halt").canary is None, 10, "the canary's removal (after the status)")
    assert registry.find_alias("halt").version == "1"  # type: ignore[union-attr]
    # AND it may be rolled out again
    assert admin(local_stack, "/models/halt/versions/2/rollout", {**FAST, "min_requests": 1000})[0] == 202
    wait_for(lambda: rollout_step_started(registry, "halt"), 90, "the second rollout's first step")
    assert admin(local_stack, "/models/halt/rollout/abort")[0] == 200
