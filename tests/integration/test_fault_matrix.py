"""The fault matrix on the local stack (issue 17, item 6), the scenarios test_reconciliation.py and
test_local_mme.py leave out: a restart with versions at each status that can be held, StopExecution
at each stage that can be held, and the production MME's Triton killed while it serves.

A stage is held, not slept through: a held model answers no request while a file named in its code
exists, so the test says which warm-up waits and for how long (a version WARMING on staging, a
promotion at WarmProduction on production) and nothing depends on timing. It is the answer that
waits, not the load: locally a load Triton has not finished blocks its HTTP worker thread, and
with it every request on the connections that thread serves (other models' smoke tests, the MME's
health checks), which a load held for long turns into 60 s timeouts and a Triton restart.

Not held, and so not in the matrix: RECEIVED and VALIDATING (the upload trigger and Validate move
on within a second, and nothing the test can hold stands between them), VALIDATED, STAGED and
APPROVED (each is left by the next state as soon as it is entered), EXPIRED (it takes the approval
timeout); Validate, PreparePromotion and FlipAlias for StopExecution (no request to hold them
by). DeployModel stopped at RequestApproval, and PromoteModel stopped at whichever state it has
reached when PROMOTING is seen, are in test_reconciliation.py.

StopExecution of an execution whose task is running (a Lambda waiting for the model's answer)
ends it ABORTED at once, as on AWS (the stack's Step Functions seam announces the stop when it is
made; moto alone would wait for the task to return): the StopExecution tests keep the answer held
until the version has ended.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.approvals import Decision
from chalicelib.domain.lifecycle import IN_PROGRESS, SETTLED, Status
from chalicelib.domain.records import ModelVersion
from chalicelib.sweep import GONE
from mmedeploy.local.stack import StackInfo
from testkit.http import call_api
from testkit.mme import triton_pids
from testkit.slack import click
from testkit.stack_process import aws_client, free_port_base, mmedeploy, start_stack, stop_stack
from testkit.tarballs import ECHO_MODEL, echo_repo, pack
from tests.integration.conftest import wait_for
from tests.integration.test_reconciliation import _in, _registry, _s3
from tests.integration.test_rollout import rollout_step_started

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A held answer comes after this even if the test never lets it go: before the MME's 60 s
# invocation timeout, so a forgotten hold fails an assertion rather than the version.
HOLD_LIMIT_S = 45


class Holds:
    """Files that hold answers: while ``<folder>/<name>`` exists, a model built by :meth:`model`
    for that name answers no request (wherever it is loaded: the load itself is not held)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def model(self, name: str) -> bytes:
        """The echo model (OUT = IN), whose answers wait while the hold ``name`` is on."""
        hold = str(self.folder / name)
        return ECHO_MODEL.replace(
            b"    def execute(self, requests):\n",
            (
                "    def execute(self, requests):\n"
                "        import os, time\n\n"
                f"        deadline = time.monotonic() + {HOLD_LIMIT_S}\n"
                f"        while os.path.exists({hold!r}) and time.monotonic() < deadline:\n"
                "            time.sleep(0.05)\n"
            ).encode(),
        )

    def hold(self, name: str) -> None:
        (self.folder / name).touch()

    def release(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def release_all(self) -> None:
        for hold in self.folder.iterdir():
            hold.unlink()


@pytest.fixture
def holds(tmp_path: Path) -> Iterator[Holds]:
    held = Holds(tmp_path / "holds")
    try:
        yield held
    finally:
        held.release_all()  # no load of a failed test waits on


BROKEN = ECHO_MODEL.replace(
    b"class TritonPythonModel:\n",
    b"class TritonPythonModel:\n    def initialize(self, args):\n        raise RuntimeError('broken on purpose')\n\n",
)


def _push(s3: Any, bucket: str, name: str, version: str, model: bytes = ECHO_MODEL) -> None:
    s3.put_object(Bucket=bucket, Key=f"{name}_{version}.tar.gz", Body=pack(echo_repo(name, version, model)))


def _reach(
    registry: ModelRegistry, name: str, wanted: Status | frozenset[Status], version: str = "1", timeout: float = 90
) -> ModelVersion:
    """``name`` ``version`` once its status is ``wanted`` (one of them)."""
    statuses = frozenset({wanted}) if isinstance(wanted, Status) else wanted
    found: ModelVersion = wait_for(
        lambda: _in(registry, name, statuses, version), timeout, f"{name} {version} to be {sorted(statuses)}"
    )
    return found


def _settled(registry: ModelRegistry, name: str, version: str = "1") -> ModelVersion:
    return _reach(registry, name, SETTLED, version)


def _decide(info: StackInfo, record: ModelVersion, decision: Decision = Decision.APPROVE) -> None:
    """The approver's click, signed as Slack signs it."""
    assert record.approval_id, record
    status, answer = click(info, record.approval_id, decision)
    assert status == 200 and answer["ok"], answer


def _entered(sfn: Any, execution_arn: str, state: str) -> bool:
    """Whether the execution has entered ``state`` (its history says so)."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events)


def _warming_production(info: StackInfo, registry: ModelRegistry, name: str, version: str = "1") -> ModelVersion:
    """``name`` ``version`` PROMOTING, its PromoteModel execution at WarmProduction."""
    promoting = _reach(registry, name, Status.PROMOTING, version, timeout=60)
    assert promoting.promotion is not None
    sfn = aws_client(info, "stepfunctions")
    arn = promoting.promotion.execution_arn
    wait_for(lambda: _entered(sfn, arn, "WarmProduction"), 30, f"{name} {version} to be at WarmProduction")
    return promoting


def _infer(info: StackInfo, name: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) of one request for ``name`` through the inference API (the route it picks)."""
    request = {"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}
    headers = {"Authorization": f"Bearer {info.api_token}", "Content-Type": "application/json"}
    status, _, body = call_api(info.api_url, "POST", f"/v2/models/{name}/infer", headers, json.dumps(request).encode())
    return status, json.loads(body or b"{}")


def _serves(info: StackInfo, name: str, version: str) -> None:
    status, answer = _infer(info, name)
    assert status == 200, answer
    assert answer["model_version"] == version and answer["outputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0], answer


def _history(registry: ModelRegistry, name: str, version: str = "1") -> list[dict[str, Any]]:
    return [entry.model_dump() for entry in registry.history(name, version)]


def _cli(state_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return mmedeploy(*args, "--state-dir", str(state_dir), timeout=timeout)


def _in_progress(registry: ModelRegistry, names: list[str]) -> list[str]:
    """``name version: STATUS`` of each version of ``names`` still in progress."""
    return [f"{r.name} {r.version}: {r.status}" for n in names for r in registry.versions(n) if r.status in IN_PROGRESS]


# -- 1. a restart, with a version at each status that can be held ---------------------------------
WARMING, AWAITING, PROMOTING = "r-warming", "r-awaiting", "r-promoting"
SERVING, DECLINED, REJECTED, BROKEN_NAME = "r-serving", "r-declined", "r-rejected", "r-broken"
ROLLING = "r-rolling"  # 1 in production, 2 rolled out: at its first canary step


def test_a_restart_leaves_every_version_ended_with_a_reason_or_resting_with_its_next_action_working(
    tmp_path: Path, holds: Holds
) -> None:
    state_dir, base = tmp_path / ".mmedeploy", free_port_base()
    info = start_stack(state_dir, base)
    try:
        registry, s3, bucket = _registry(info), _s3(info), info.staging_bucket
        # GIVEN, as the stack stops: r-warming WARMING (its staging smoke test held), r-awaiting
        # AWAITING_APPROVAL, r-promoting PROMOTING (approved, its production smoke test held at
        # WarmProduction), r-serving 2 PRODUCTION over 1 RETIRED, r-declined DECLINED, r-rejected
        # REJECTED (the validator's), r-broken FAILED (Triton would not load it) and r-rolling 2
        # rolled out, at its first canary step (waiting for traffic) over 1 in production
        for name in (AWAITING, DECLINED):
            _push(s3, bucket, name, "1")
        for version in ("1", "2"):
            _push(s3, bucket, SERVING, version)
            _push(s3, bucket, ROLLING, version)
        _push(s3, bucket, PROMOTING, "1", holds.model(PROMOTING))
        _push(s3, bucket, BROKEN_NAME, "1", BROKEN)
        s3.put_object(Bucket=bucket, Key=f"{REJECTED}_1.tar.gz", Body=b"not a tarball")
        assert _settled(registry, REJECTED).status is Status.REJECTED
        broken = _settled(registry, BROKEN_NAME)
        assert broken.status is Status.FAILED and broken.reason.startswith("ModelLoadFailed"), broken.reason
        awaiting = {
            (name, version): _settled(registry, name, version)
            for name, version in [
                *((AWAITING, "1"), (PROMOTING, "1"), (DECLINED, "1")),
                *((SERVING, "1"), (SERVING, "2"), (ROLLING, "1"), (ROLLING, "2")),
            ]
        }
        assert {r.status for r in awaiting.values()} == {Status.AWAITING_APPROVAL}, awaiting
        _decide(info, awaiting[DECLINED, "1"], Decision.DECLINE)
        _decide(info, awaiting[SERVING, "1"])
        _reach(registry, SERVING, Status.PRODUCTION)
        _decide(info, awaiting[SERVING, "2"])
        _reach(registry, SERVING, Status.PRODUCTION, "2")
        _reach(registry, DECLINED, Status.DECLINED)
        _decide(info, awaiting[ROLLING, "1"])
        _reach(registry, ROLLING, Status.PRODUCTION)
        policy = ("--steps", "50,100", "--bake", "10m", "--interval", "5", "--min-requests", "100000")
        rolled = _cli(state_dir, "rollout", ROLLING, "2", *policy, "--no-wait")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        wait_for(lambda: rollout_step_started(registry, ROLLING), 90, f"{ROLLING} 2's first canary step")
        # (held last, and briefly: a held answer times out after 60 s)
        holds.hold(PROMOTING)  # staging answered it already: only production's answers wait
        holds.hold(WARMING)
        _decide(info, awaiting[PROMOTING, "1"])
        _push(s3, bucket, WARMING, "1", holds.model(WARMING))
        _warming_production(info, registry, PROMOTING)
        _reach(registry, WARMING, Status.WARMING, timeout=30)
        keys = [(name, "1") for name in (WARMING, AWAITING, PROMOTING, DECLINED, REJECTED, BROKEN_NAME, SERVING)]
        keys += [(SERVING, "2"), (ROLLING, "2")]
        before = {key: registry.get(*key) for key in keys}
        histories = {key: _history(registry, *key) for key in keys}
        assert [before[key].status for key in keys] == [
            *(Status.WARMING, Status.AWAITING_APPROVAL, Status.PROMOTING, Status.DECLINED, Status.REJECTED),
            *(Status.FAILED, Status.RETIRED, Status.PRODUCTION, Status.PROMOTING),
        ]
    finally:
        stop_stack(state_dir)
        holds.release_all()  # (the next start's loads must not wait)

    # WHEN the stack starts again with its kept state: its executions are gone, the registry is kept
    info = start_stack(state_dir, base, fresh=False)
    try:
        registry = _registry(info)
        # THEN the versions whose executions were lost end FAILED, saying so (the sweep on start)
        for name in (WARMING, AWAITING, PROMOTING):
            ended = _reach(registry, name, Status.FAILED, timeout=30)
            lost = f"the {'PromoteModel' if name == PROMOTING else 'DeployModel'} execution"
            prefix = "promotion failed, production unchanged: " if name == PROMOTING else ""
            assert ended.reason.startswith(f"{prefix}ExecutionAborted: {lost}"), ended.reason
            assert ended.reason.endswith(f"was stopped: {GONE}"), ended.reason
        # AND no version is left in progress, and the resting ones are as they were
        assert _in_progress(registry, [name for name, _ in keys]) == []
        for key in [(DECLINED, "1"), (REJECTED, "1"), (BROKEN_NAME, "1"), (SERVING, "1"), (SERVING, "2")]:
            after = registry.get(*key)
            assert (after.status, after.reason, after.revision) == (
                before[key].status,
                before[key].reason,
                before[key].revision,
            ), key
        # AND no history entry was lost: each history before the restart goes on unchanged
        for key, entries in histories.items():
            assert _history(registry, *key)[: len(entries)] == entries, key
        assert registry.find_alias(PROMOTING) is None
        _serves(info, SERVING, "2")  # production serves through the API, the version it did
        # AND the rollout lost with its execution ends FAILED with its canary removed; production
        # (1) untouched, answering all the model's traffic
        rollout = _reach(registry, ROLLING, Status.FAILED, "2", timeout=30)
        assert rollout.reason.startswith(
            "rollout failed (step 1 of 2 (50%)), production unchanged, canary removed: ExecutionAborted: "
            "the PromoteModel execution"
        ), rollout.reason
        assert registry.routes(ROLLING).canary is None
        assert registry.find_alias(ROLLING).version == "1"  # type: ignore[union-attr]
        _serves(info, ROLLING, "1")

        # WHEN each takes its documented next action, all at once
        actions: dict[str, list[str]] = {
            WARMING: ["redeploy", WARMING, "1", "--watch"],
            AWAITING: ["redeploy", AWAITING, "1", "--watch"],
            PROMOTING: ["promote", PROMOTING, "1"],
            SERVING: ["rollback", SERVING],
            ROLLING: ["promote", ROLLING, "2"],
            DECLINED: ["redeploy", DECLINED, "1"],
            REJECTED: ["redeploy", REJECTED, "1"],
            BROKEN_NAME: ["redeploy", BROKEN_NAME, "1"],
        }
        with concurrent.futures.ThreadPoolExecutor(len(actions)) as pool:
            done = dict(zip(actions, pool.map(lambda args: _cli(state_dir, *args), actions.values()), strict=True))
        said = {name: (result.returncode, result.stdout + result.stderr) for name, result in done.items()}
        # THEN the lost deployments go through again, to approval; the lost promotion reaches production
        for name in (WARMING, AWAITING):
            assert said[name][0] == 0, said[name]
            again = registry.get(name, "1")
            assert again.status is Status.AWAITING_APPROVAL and again.execution_arn != before[name, "1"].execution_arn
        assert said[PROMOTING][0] == 0, said[PROMOTING]
        assert "accepted (it was FAILED: promotion requested again)" in said[PROMOTING][1], said[PROMOTING]
        assert f"{PROMOTING} 1 is PRODUCTION" in said[PROMOTING][1], said[PROMOTING]
        assert registry.get(PROMOTING, "1").status is Status.PRODUCTION
        assert said[ROLLING][0] == 0, said[ROLLING]  # the lost rollout's version, promoted at once
        assert registry.get(ROLLING, "2").status is Status.PRODUCTION
        # AND the rollback makes 1 production again, 2 retired
        assert said[SERVING][0] == 0 and f"{SERVING} 1 is PRODUCTION again" in said[SERVING][1], said[SERVING]
        assert (registry.get(SERVING, "1").status, registry.get(SERVING, "2").status) == (
            Status.PRODUCTION,
            Status.RETIRED,
        )
        # AND a redeploy of what ended on its own account is refused with the reason, changing nothing
        refusals = {
            DECLINED: "an approver declined it",
            REJECTED: "it was rejected by the validator",
            BROKEN_NAME: "failed on its own account (ModelLoadFailed",
        }
        for name, why in refusals.items():
            assert said[name][0] == 1 and "refused (HTTP 409)" in said[name][1] and why in said[name][1], said[name]
            assert registry.get(name, "1").revision == before[name, "1"].revision
        for key, entries in histories.items():
            assert _history(registry, *key)[: len(entries)] == entries, key
    finally:
        stop_stack(state_dir)


# -- 2. StopExecution at each stage that can be held -----------------------------------------------
@pytest.fixture(scope="module")
def registry(local_stack: StackInfo, aws: Callable[[str], Any]) -> ModelRegistry:
    return ModelRegistry(local_stack.registry_table, aws("dynamodb"))


LIVE = "f-live"


@pytest.fixture(scope="module")
def live(local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry) -> str:
    """Model f-live with version 1 in production (a later test may promote another over it)."""
    _push(aws("s3"), local_stack.staging_bucket, LIVE, "1")
    awaiting = _settled(registry, LIVE)
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    _decide(local_stack, awaiting)
    _reach(registry, LIVE, Status.PRODUCTION)
    return LIVE


def test_a_deployment_stopped_at_warmstaging_ends_failed_saying_so_and_a_redeploy_takes_it_to_approval(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any], registry: ModelRegistry, holds: Holds
) -> None:
    name = "f-stopwarm"
    # GIVEN a version WARMING: its DeployModel execution at WarmStaging, the staging load held
    holds.hold(name)
    _push(aws("s3"), local_stack.staging_bucket, name, "1", holds.model(name))
    warming = _reach(registry, name, Status.WARMING, timeout=60)
    assert warming.execution_arn
    # WHEN an operator stops the execution
    aws("stepfunctions").stop_execution(executionArn=warming.execution_arn, cause="stopped by an operator")
    # THEN the version ends FAILED while the task still waits, naming the stop, the state and the
    # cause; production has none of it
    ended = _reach(registry, name, Status.FAILED, timeout=30)
    holds.release(name)
    execution = warming.execution_arn.rsplit(":", 1)[-1]
    assert ended.reason == (
        f"ExecutionAborted: the DeployModel execution {execution} was stopped at WarmStaging: stopped by an operator"
    )
    assert registry.find_alias(name) is None
    # WHEN an admin redeploys it THEN it goes through again, to approval
    redeployed = _cli(local_stack_dir, "redeploy", name, "1", "--watch")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    again = registry.get(name, "1", with_history=True)
    assert again.status is Status.AWAITING_APPROVAL and again.execution_arn != warming.execution_arn
    assert [h.status for h in again.history].count(Status.FAILED) == 1
    assert _in_progress(registry, [name]) == []


def test_a_promotion_stopped_at_warmproduction_ends_failed_saying_so_production_unchanged_and_promote_works_again(
    local_stack: StackInfo,
    local_stack_dir: Path,
    aws: Callable[[str], Any],
    registry: ModelRegistry,
    holds: Holds,
    live: str,
) -> None:
    # GIVEN version 2 approved, its PromoteModel execution at WarmProduction (the production load held)
    # while version 1 serves in production
    hold = f"{live}-2"
    _push(aws("s3"), local_stack.staging_bucket, live, "2", holds.model(hold))
    awaiting = _settled(registry, live, "2")
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    production = registry.find_alias(live)
    assert production is not None
    holds.hold(hold)
    _decide(local_stack, awaiting)
    promoting = _warming_production(local_stack, registry, live, "2")
    assert promoting.promotion is not None
    # WHEN an operator stops the PromoteModel execution
    arn = promoting.promotion.execution_arn
    aws("stepfunctions").stop_execution(executionArn=arn, cause="stopped by an operator")
    # THEN version 2 ends FAILED while the task still waits, naming the stop, the state and the cause
    ended = _reach(registry, live, Status.FAILED, "2", timeout=30)
    holds.release(hold)
    assert ended.reason == (
        "promotion failed, production unchanged: ExecutionAborted: the PromoteModel execution "
        f"{arn.rsplit(':', 1)[-1]} was stopped at WarmProduction: stopped by an operator"
    )
    # AND production is as it was: the alias, version 1, and what the API serves
    assert registry.find_alias(live) == production
    assert registry.get(live, production.version).status is Status.PRODUCTION
    _serves(local_stack, live, production.version)
    # WHEN an admin promotes version 2 again
    promoted = _cli(local_stack_dir, "promote", live, "2")
    # THEN it reaches production, and version 1 is retired
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "(it was FAILED: promotion requested again)" in promoted.stdout
    assert f"{live} 2 is PRODUCTION" in promoted.stdout
    assert registry.get(live, "2").status is Status.PRODUCTION
    assert registry.get(live, production.version).status is Status.RETIRED


# -- 3. the production MME's Triton killed while it serves ---------------------------------------
def test_a_production_version_answers_again_through_the_api_after_its_triton_is_killed(
    local_stack: StackInfo, registry: ModelRegistry, live: str
) -> None:
    alias = registry.find_alias(live)
    assert alias is not None
    # GIVEN the production version serving through the API (loaded on the production MME)
    wait_for(lambda: _infer(local_stack, live)[1].get("model_version") == alias.version, 30, "the production answer")
    before = registry.get(live, alias.version, with_history=True)
    # WHEN the production endpoint's Triton is killed
    endpoint = local_stack.production_endpoint
    pid = triton_pids(local_stack)[endpoint]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: triton_pids(local_stack).get(endpoint, pid) != pid, 20, "a new tritonserver")
    # THEN the API answers again, from the same version (the model loads again on the new Triton);
    # meanwhile it says to retry, never that the model failed
    seen: list[int] = []

    def answered() -> bool:
        status, answer = _infer(local_stack, live)
        seen.append(status)
        return status == 200 and answer["model_version"] == alias.version

    wait_for(answered, 60, "the production version to answer again")
    assert set(seen) <= {200, 503}, seen
    # AND the registry did not notice: the version, its history and the alias are as they were
    assert registry.get(live, alias.version, with_history=True) == before
    assert registry.find_alias(live) == alias
