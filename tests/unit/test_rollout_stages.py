"""The rollout, stage by stage, over the registry in memory and figures the tests set: PreparePromotion
deciding a rollout, RolloutStep's steps and gates, the admin's pause/resume/abort, the endings (gates,
abort, a failed execution) and what a rollout refuses. The state machine's loop and the metrics read
from CloudWatch are the local stack's tests (tests/integration/test_rollout.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.approvals import Decision
from chalicelib.domain.errors import Conflict, MetricsUnavailable, NotFound, RolloutInProgress, RolloutPolicyInvalid
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.rollout.figures import VersionFigures
from chalicelib.domain.rollout.gates import Outcome
from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.inference.canary import CanaryRequest, CanaryRequests
from chalicelib.promote_model.prepare_promotion import RolloutRefused
from chalicelib.promote_model.rollout import RolloutStep
from chalicelib.promote_model.rollout_requests import RolloutRequests
from chalicelib.promote_model.stage_io import PrepareInput, PromotionStep, RolloutStepResult
from tests.unit.test_promotion_stages import FIRST, SECOND, THIRD, Promotion

S = Status
START = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
FAST = RolloutOverrides(
    steps=(10, 50, 100), bake_seconds=60, evaluation_interval_seconds=20, min_requests=10, max_error_rate_margin=0.05
)


@dataclass
class Served:
    invocations: int
    errors: int = 0
    p99_latency_ms: float | None = 10.0


class FakeFigures:
    """Each version's figures, as the tests set them; ``unavailable`` makes CloudWatch fail."""

    def __init__(self) -> None:
        self.served: dict[str, Served] = {}
        self.unavailable = False
        self.windows: list[tuple[str, datetime, datetime]] = []

    def figures(self, name: str, version: str, start: datetime, end: datetime) -> VersionFigures:
        if self.unavailable:
            raise MetricsUnavailable("CloudWatch", "Throttling", "rate exceeded")
        self.windows.append((version, start, end))
        served = self.served.get(version, Served(0, 0, None))
        return VersionFigures(
            name=name,
            version=version,
            start=start,
            end=end,
            invocations=served.invocations,
            errors=served.errors,
            p99_latency_ms=served.p99_latency_ms,
        )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeExecutions:
    def __init__(self) -> None:
        self.stopped: list[tuple[str, str]] = []

    def stop(self, execution_arn: str, cause: str) -> bool:
        self.stopped.append((execution_arn, cause))
        return True


class Rollout(Promotion):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.metrics = FakeFigures()
        self.stepper = RolloutStep(self.tracker, self.metrics, self.clock)
        self.executions = FakeExecutions()
        self.admin = RolloutRequests(
            self.tracker,
            self.gate,  # type: ignore[arg-type]
            self.publisher,  # type: ignore[arg-type]
            self.executions,  # type: ignore[arg-type]
            lambda: self.rollout_defaults,
        )

    def start(
        self, version: str = "2", execution: str = SECOND, options: RolloutOverrides | None = FAST
    ) -> RolloutStepResult:
        """Version 1 in production, ``version`` approved and rolled out: prepared, warmed, first step."""
        if self.registry.find_alias("fraud") is None:
            self.in_production("1", FIRST)
        self.approved(version)
        prepared = self.preparer.run(
            PrepareInput(name="fraud", version=version, execution=execution, requested_by="api:ops", rollout=options)
        )
        assert prepared.started and prepared.rollout, prepared.reason
        self.warm(version, execution)
        return self.step(version, execution)

    def step(self, version: str = "2", execution: str = SECOND) -> RolloutStepResult:
        return self.stepper.run(PromotionStep(name="fraud", version=version, execution=execution))

    def healthy(self, requests: int = 50) -> None:
        self.metrics.served = {"1": Served(requests), "2": Served(requests)}

    def rollout_of(self, version: str = "2") -> Any:
        run = self.registry.get("fraud", version).promotion
        assert run is not None and run.rollout is not None
        return run.rollout


@pytest.fixture
def world() -> Rollout:
    return Rollout()


# -- PreparePromotion decides ----------------------------------------------------------------------
def test_a_rollout_request_claims_the_version_with_its_policy_resolved_once(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.rollout_defaults = RolloutOverrides(bake_seconds=300, min_requests=50)
    world.approved("2")
    prepared = world.preparer.run(
        PrepareInput(
            name="fraud",
            version="2",
            execution=SECOND,
            requested_by="api:ops",
            rollout=RolloutOverrides(bake_seconds=90),
        )
    )
    assert (prepared.started, prepared.rollout, prepared.rollback) == (True, True, False)
    record = world.registry.get("fraud", "2", with_history=True)
    run = world.rollout_of()
    # the deployment's layer, then the request's (the later wins field by field)
    assert (run.policy.bake_seconds, run.policy.min_requests, run.policy.steps) == (90, 50, (5, 25, 50, 100))
    assert (run.production_version, run.step, record.status) == ("1", -1, S.PROMOTING)
    assert record.history[-1].reason == "rollout to production requested by api:ops"


def test_an_approval_starts_a_rollout_when_the_policy_says_so_and_the_first_version_is_promoted(
    world: Rollout,
) -> None:
    world.rollout_defaults = RolloutOverrides(start_on_approval=True)
    # the first version has nothing to share traffic with: promoted at once
    world.in_production("1", FIRST)
    assert world.registry.get("fraud", "1").promotion.rollout is None  # type: ignore[union-attr]
    world.approved("2")
    prepared = world.prepare("2", SECOND)
    assert prepared.rollout and world.rollout_of().policy.start_on_approval


def test_an_approval_promotes_at_once_by_default(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.approved("2")
    assert world.prepare("2", SECOND).rollout is False


def test_a_rollout_without_a_production_version_is_refused(world: Rollout) -> None:
    world.approved("1")
    with pytest.raises(RolloutRefused, match="no production version to judge 1 against"):
        world.preparer.run(
            PrepareInput(name="fraud", version="1", execution=FIRST, requested_by="api:ops", rollout=RolloutOverrides())
        )


def test_a_policy_whose_layers_clash_fails_the_claimed_version_with_the_reason(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.rollout_defaults = RolloutOverrides(evaluation_interval_seconds=120)
    world.approved("2")
    with pytest.raises(RolloutPolicyInvalid, match="evaluation_interval_seconds from the deployment's settings"):
        world.preparer.run(
            PrepareInput(
                name="fraud",
                version="2",
                execution=SECOND,
                requested_by="api:ops",
                rollout=RolloutOverrides(bake_seconds=60),
            )
        )


# -- RolloutStep: a healthy candidate walks every step -----------------------------------------
def test_a_healthy_candidate_walks_every_step_and_becomes_production(world: Rollout) -> None:
    # WHEN the rollout begins: the first step's weight, on the production endpoint's canary
    first = world.start()
    assert (first.action, first.step, first.weight, first.wait_seconds) == ("wait", 0, 0.1, 20)
    canary = world.registry.routes("fraud").canary
    assert canary is not None and (canary.version, canary.weight, canary.rollout_execution) == ("2", 0.1, SECOND)
    assert world.publisher.kinds[-1] == "RolloutStepStarted"
    # AND while it bakes, passing gates only wait (the reading is kept, no history entry)
    world.healthy()
    history = world.registry.history("fraud", "2")
    world.clock.advance(20)
    baking = world.step()
    assert (baking.action, baking.step, baking.wait_seconds) == ("wait", 0, 20)
    assert world.registry.history("fraud", "2") == history
    reading = world.rollout_of().last
    assert reading.outcome is Outcome.PASS and reading.candidate.invocations == 50
    # AND once baked, the gates pass it to the next step
    world.clock.advance(40)
    second = world.step()
    assert (second.action, second.step, second.weight) == ("wait", 1, 0.5)
    assert world.registry.routes("fraud").canary.weight == 0.5  # type: ignore[union-attr]
    assert world.publisher.kinds[-2:] == ["RolloutGatePassed", "RolloutStepStarted"]
    # the gates read the figures since the step began
    assert world.metrics.windows[-1] == ("1", START, START + timedelta(seconds=60))
    # AND after the last canary step it is promoted through FlipAlias
    world.clock.advance(60)
    done = world.step()
    assert done.action == "promote"
    world.flip("2", SECOND)
    record = world.registry.get("fraud", "2", with_history=True)
    assert record.status is S.PRODUCTION and world.registry.find_alias("fraud").version == "2"  # type: ignore[union-attr]
    assert world.registry.routes("fraud").canary is None
    assert world.publisher.kinds[-2:] == ["RolloutCompleted", "ModelRetired"]
    assert "passed every gate of 2 canary step(s)" in record.reason
    notes = [h.reason for h in record.history if h.reason.startswith("rollout step")]
    assert [n.split(":")[0] for n in notes] == [
        "rollout step 1 of 3 (10%) started",
        "rollout step 1 of 3 (10%) passed",
        "rollout step 2 of 3 (50%) started",
        "rollout step 2 of 3 (50%) passed",
    ]
    # AND the approval message followed every step
    updated = {u[0].revision for u in world.notifier.updates if u[0].version == "2"}
    assert {h.revision for h in record.history if h.reason.startswith("rollout step")} <= updated


def test_the_last_wait_of_a_step_ends_with_its_bake(world: Rollout) -> None:
    world.start()
    world.healthy()
    world.clock.advance(50)
    assert world.step().wait_seconds == 10  # 10 s of the 60 s bake left, not the 20 s interval


# -- RolloutStep: gates ----------------------------------------------------------------------------
def test_a_failing_candidate_is_rolled_back_at_once_with_the_gate_figures_and_step(world: Rollout) -> None:
    world.start()
    world.metrics.served = {"1": Served(200, 0), "2": Served(20, 5)}
    world.clock.advance(20)  # before its bake ends: a breach does not wait for it
    ended = world.step()
    assert ended.action == "rolled_back"
    record = world.registry.get("fraud", "2")
    assert record.status is S.ROLLED_BACK
    assert record.reason.startswith("rolled back at step 1 of 3 (10%), production 1 unchanged: error_rate gate failed")
    assert "5 of 20 requests" in record.reason
    assert world.registry.routes("fraud").canary is None and world.registry.find_alias("fraud").version == "1"  # type: ignore[union-attr]
    assert world.publisher.kinds[-1] == "RolloutAborted"
    assert world.notifier.outcomes[-1].version == "2"
    # a retried call finds it ended
    assert world.step().action == "rolled_back"


def test_a_slower_candidate_fails_the_latency_gate(world: Rollout) -> None:
    world.start()
    world.metrics.served = {"1": Served(100, 0, 10.0), "2": Served(100, 0, 30.0)}
    world.clock.advance(20)
    assert world.step().action == "rolled_back"
    assert "p99_latency gate failed" in world.registry.get("fraud", "2").reason


def test_too_little_traffic_waits_rather_than_judging(world: Rollout) -> None:
    world.start()
    world.metrics.served = {"1": Served(100, 0), "2": Served(3, 3)}  # every request failed, but only 3
    world.clock.advance(120)
    waiting = world.step()
    assert (waiting.action, waiting.step) == ("wait", 0)
    assert "too little traffic to judge" in waiting.reason
    assert world.registry.get("fraud", "2").status is S.PROMOTING


def test_metrics_that_cannot_be_read_wait_and_are_read_again(world: Rollout) -> None:
    world.start()
    world.metrics.unavailable = True
    world.clock.advance(60)
    assert world.step().action == "wait"
    world.metrics.unavailable = False
    world.healthy()
    world.clock.advance(20)
    assert world.step().step == 1


# -- the admin's pause, resume and abort -----------------------------------------------------------
def test_a_paused_rollout_holds_its_step_but_its_gates_still_roll_it_back(world: Rollout) -> None:
    world.start()
    paused = world.admin.pause("fraud", "api:ops")
    assert (paused.action, paused.rollout.paused_by) == ("rollout paused", "api:ops")  # type: ignore[union-attr]
    assert world.admin.pause("fraud", "api:ops").action == "already paused by api:ops"
    world.healthy()
    world.clock.advance(120)
    held = world.step()
    assert (held.action, held.step) == ("wait", 0) and "paused by api:ops" in held.reason
    assert world.admin.resume("fraud", "api:ops").action == "rollout resumed"
    assert world.step().step == 1
    world.admin.pause("fraud", "api:ops")
    world.metrics.served = {"1": Served(100), "2": Served(100, 50)}
    world.clock.advance(20)
    assert world.step().action == "rolled_back"


def test_an_abort_ends_the_rollout_at_once_and_stops_its_execution(world: Rollout) -> None:
    world.start()
    aborted = world.admin.abort("fraud", "api:ops")
    assert (aborted.action, aborted.status) == ("rollout aborted", S.ROLLED_BACK)
    record = world.registry.get("fraud", "2")
    assert record.reason == "aborted by api:ops at step 1 of 3 (10%): production 1 unchanged, canary removed"
    assert world.registry.routes("fraud").canary is None
    assert [arn for arn, _ in world.executions.stopped] == [SECOND]
    # the execution's next call (had the stop not reached it) ends there too
    assert world.step().action == "rolled_back"
    with pytest.raises(NotFound, match="no rollout of fraud is in progress"):
        world.admin.abort("fraud", "api:ops")


def test_a_rollout_is_found_before_its_first_step(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.approved("2")
    world.preparer.run(PrepareInput(name="fraud", version="2", execution=SECOND, requested_by="api:ops", rollout=FAST))
    assert world.admin.pause("fraud", "api:ops").rollout.step == -1  # type: ignore[union-attr]


# -- endings and refusals --------------------------------------------------------------------------
def test_a_failed_rollout_execution_removes_the_canary_and_may_be_asked_for_again(world: Rollout) -> None:
    world.start()
    assert world.fail("2", SECOND, "States.Timeout") == "FAILED"
    record = world.registry.get("fraud", "2")
    assert record.reason.startswith("rollout failed (step 1 of 3 (10%)), production unchanged, canary removed")
    assert world.registry.routes("fraud").canary is None
    started = world.admin.start("fraud", "2", RolloutOverrides(), "api:ops")
    assert started.action == "rollout requested" and world.publisher.kinds[-1] == "RolloutRequested"


def test_while_a_rollout_runs_nothing_else_moves_production_or_the_canary(world: Rollout) -> None:
    world.start()
    world.approved("3")
    with pytest.raises(RolloutInProgress, match="a rollout of fraud 2 is in progress"):
        world.requests.promote("fraud", "3", "api:ops")
    with pytest.raises(RolloutInProgress):
        world.requests.rollback("fraud", "api:ops")
    with pytest.raises(RolloutInProgress, match="one rollout per model"):
        world.admin.start("fraud", "3", RolloutOverrides(), "api:ops")
    # an approval that would promote another version: it fails with the reason, after its claim
    with pytest.raises(RolloutInProgress, match="nothing else is promoted or rolled back until it ends"):
        world.prepare("3", THIRD)


def test_a_rollout_request_is_refused_where_it_cannot_run(world: Rollout) -> None:
    world.awaiting("1")
    with pytest.raises(Conflict, match="no production version to judge 1 against"):
        world.admin.start("fraud", "1", RolloutOverrides(), "api:ops")
    world.gate.decide(world.registry.get("fraud", "1").approval_id or "", Decision.APPROVE, "slack:U0ALICE")
    world.record_approval("1")
    world.promote_again("1", FIRST)
    with pytest.raises(Conflict, match="already serves in production"):
        world.admin.start("fraud", "1", RolloutOverrides(), "api:ops")
    with pytest.raises(NotFound):
        world.admin.start("fraud", "9", RolloutOverrides(), "api:ops")
    world.approved("4")
    with pytest.raises(RolloutPolicyInvalid, match="does not hold together"):
        world.admin.start("fraud", "4", RolloutOverrides(bake_seconds=10, evaluation_interval_seconds=20), "api:ops")
    world.registry.put_canary("fraud", "4", 0.1, "api:ops")
    world.approved("5")
    with pytest.raises(Conflict, match="has a canary of 4 \\(started by api:ops\\); end it first"):
        world.admin.start("fraud", "5", RolloutOverrides(), "api:ops")
    assert "RolloutRequested" not in world.publisher.kinds


def test_a_rollout_of_a_version_awaiting_approval_approves_it_and_its_promotion_rolls_it_out(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.awaiting("2")
    accepted = world.admin.start("fraud", "2", FAST, "api:ops")
    assert (accepted.action, accepted.policy.steps) == ("approved; rollout requested", (10, 50, 100))  # type: ignore[union-attr]
    world.record_approval("2")  # DeployModel records the approval; ModelApproved starts PromoteModel
    assert world.registry.get("fraud", "2").rollout_request == FAST
    prepared = world.prepare("2", SECOND)  # the approval's event carries no options
    assert prepared.rollout and world.rollout_of().policy.steps == (10, 50, 100)
    assert world.registry.get("fraud", "2").rollout_request is None  # taken by the claim


def test_a_rollout_of_a_version_with_an_admins_canary_of_another_fails_it_with_what_to_do(world: Rollout) -> None:
    world.rollout_defaults = RolloutOverrides(start_on_approval=True)
    world.in_production("1", FIRST)
    world.approved("3")
    world.registry.put_canary("fraud", "3", 0.1, "api:ops")
    world.approved("2")
    with pytest.raises(RolloutRefused, match="has a canary of 3 \\(started by api:ops\\): a rollout needs the canary"):
        world.prepare("2", SECOND)
    assert world.fail("2", SECOND, "RolloutRefused") == "FAILED"
    assert world.registry.routes("fraud").canary.version == "3"  # type: ignore[union-attr]  # not the rollout's to end


def test_a_policy_that_cannot_hold_at_approval_fails_the_version_with_the_reason(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.rollout_defaults = RolloutOverrides(bake_seconds=30, evaluation_interval_seconds=30)
    world.approved("2")
    written = RolloutOverrides(bake_seconds=10, start_on_approval=True)
    world.registry.annotate("fraud", "2", "test", "its rollout.json", lambda _: {"rollout_policy": written})
    with pytest.raises(RolloutPolicyInvalid):
        world.prepare("2", SECOND)
    assert world.registry.get("fraud", "2").status is S.PROMOTING  # claimed: its Catch ends it FAILED
    assert world.fail("2", SECOND, "RolloutPolicyInvalid") == "FAILED"


def a_canary_left_behind(world: Rollout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 2's rollout ended FAILED by its execution's ending, which could not remove the canary."""
    world.start()
    removal = world.registry.delete_canary

    def refused(name: str, rollout_execution: str | None = None) -> Any:
        raise RolloutInProgress("the registry refused")

    monkeypatch.setattr(world.registry, "delete_canary", refused)
    with pytest.raises(RolloutInProgress):
        world.fail("2", SECOND, "States.Timeout")
    monkeypatch.setattr(world.registry, "delete_canary", removal)
    assert world.registry.get("fraud", "2").status is S.FAILED
    assert world.registry.routes("fraud").canary is not None


def test_a_retried_ending_removes_the_canary_its_first_try_left(
    world: Rollout, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_canary_left_behind(world, monkeypatch)
    assert world.fail("2", SECOND, "States.Timeout") == "FAILED"
    assert world.registry.routes("fraud").canary is None


def test_a_canary_left_by_an_ended_rollout_blocks_nothing(world: Rollout, monkeypatch: pytest.MonkeyPatch) -> None:
    a_canary_left_behind(world, monkeypatch)
    assert world.admin.start("fraud", "2", FAST, "api:ops").action == "rollout requested"  # cleared where met
    assert world.registry.routes("fraud").canary is None


# -- races and holds (the review's) ----------------------------------------------------------------
def test_a_rollout_holds_the_model_from_its_claim_not_only_from_its_first_step(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.approved("2")
    world.preparer.run(PrepareInput(name="fraud", version="2", execution=SECOND, requested_by="api:ops", rollout=FAST))
    # while it warms (no step yet): its canary takes nothing, and holds the model
    canary = world.registry.routes("fraud").canary
    assert canary is not None and (canary.weight, canary.rollout_execution) == (0.0, SECOND)
    world.approved("3")
    with pytest.raises(RolloutInProgress):
        world.requests.promote("fraud", "3", "api:ops")
    with pytest.raises(RolloutInProgress, match="one rollout per model"):
        world.admin.start("fraud", "3", FAST, "api:ops")


def test_a_pause_written_while_the_gates_read_is_not_overtaken(world: Rollout, monkeypatch: pytest.MonkeyPatch) -> None:
    world.start()
    world.healthy()
    world.clock.advance(60)
    reading = world.metrics.figures

    def paused_meanwhile(name: str, version: str, start: datetime, end: datetime) -> VersionFigures:
        if version == "1" and world.rollout_of().paused_by is None:
            world.admin.pause("fraud", "api:ops")  # the API answers "paused" while this call reads
        return reading(name, version, start, end)

    monkeypatch.setattr(world.metrics, "figures", paused_meanwhile)
    held = world.step()
    assert (held.action, held.step) == ("wait", 0)
    assert world.registry.routes("fraud").canary.weight == 0.1  # type: ignore[union-attr]
    assert "RolloutGatePassed" not in world.publisher.kinds


def test_a_rollout_paused_while_it_warms_holds_before_its_first_step(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.approved("2")
    world.preparer.run(PrepareInput(name="fraud", version="2", execution=SECOND, requested_by="api:ops", rollout=FAST))
    world.admin.pause("fraud", "api:ops")
    held = world.step()
    assert (held.action, held.step, held.wait_seconds) == ("wait", -1, 20)
    assert world.registry.routes("fraud").canary.weight == 0.0  # type: ignore[union-attr]
    world.admin.resume("fraud", "api:ops")
    assert world.step().weight == 0.1


def test_an_abort_between_a_reading_and_the_next_step_does_not_bring_the_canary_back(
    world: Rollout, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.start()
    world.healthy()
    world.clock.advance(60)
    note = world.tracker.note

    def aborted_after(*args: Any, **kwargs: Any) -> Any:
        noted = note(*args, **kwargs)
        if kwargs.get("changes") is not None and args[4] == "RolloutGatePassed":
            world.admin.abort("fraud", "api:ops")
        return noted

    monkeypatch.setattr(world.tracker, "note", aborted_after)
    ended = world.step()
    assert ended.action == "rolled_back"
    assert world.registry.get("fraud", "2").status is S.ROLLED_BACK
    assert world.registry.routes("fraud").canary is None


def test_production_moved_under_a_rollout_ends_it(world: Rollout) -> None:
    world.start()
    alias = world.registry.find_alias("fraud")
    assert alias is not None
    world.registry._aliases["fraud"] = alias.model_copy(update={"version": "9"}).model_dump_json()  # an operator's hand
    ended = world.step()
    assert ended.action == "rolled_back"
    record = world.registry.get("fraud", "2")
    assert record.status is S.FAILED and "production moved from 1 to 9 during it" in record.reason
    assert world.registry.routes("fraud").canary is None


def test_a_plain_approval_never_resolves_a_rollout_policy(world: Rollout) -> None:
    # a deployment layer that cannot hold on its own (a 30 s bake, the default 60 s interval)
    world.rollout_defaults = RolloutOverrides(bake_seconds=30)
    world.in_production("1", FIRST)
    world.approved("2")
    assert world.prepare("2", SECOND).rollout is False
    world.warm("2", SECOND)
    world.flip("2", SECOND)
    assert world.registry.get("fraud", "2").status is S.PRODUCTION


def test_a_policy_planning_more_readings_than_an_execution_holds_is_refused(world: Rollout) -> None:
    world.in_production("1", FIRST)
    world.approved("2")
    week = RolloutOverrides(bake_seconds=7 * 24 * 3600, evaluation_interval_seconds=60)
    with pytest.raises(
        RolloutPolicyInvalid, match="30240 readings of the gates; a rollout's execution holds about 2000"
    ):
        world.admin.start("fraud", "2", week, "api:ops")


def test_an_admins_canary_is_refused_while_a_rollout_owns_it(world: Rollout) -> None:
    world.start()
    world.approved("3")
    admins = CanaryRequests(world.registry)  # type: ignore[arg-type]
    with pytest.raises(RolloutInProgress, match="a rollout of fraud 2 \\(at 10%"):
        admins.start("fraud", CanaryRequest(version="3", weight=0.2), "api:ops")
    with pytest.raises(RolloutInProgress):
        admins.stop("fraud", "api:ops")
    assert world.registry.routes("fraud").canary.version == "2"  # type: ignore[union-attr]
