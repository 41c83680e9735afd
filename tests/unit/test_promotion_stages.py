"""PromoteModel's stages (PreparePromotion, WarmProduction, FlipAlias, RecordPromotionOutcome), the admin's
PromotionRequests and the registry's production alias, on the real ModelRegistry (moto) with the
tracker over in-memory S3, endpoint, EventBridge and Slack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.endpoint_invoker import Invocation
from chalicelib.domain.approvals import Decision
from chalicelib.domain.errors import AliasMoved, DomainError, TransitionRefused
from chalicelib.domain.lifecycle import MODEL_ROLLED_BACK, PROMOTION_REQUESTED, Status
from chalicelib.domain.records import ModelVersion, PromotionRun
from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.promote_model.flip_alias import FlipAlias
from chalicelib.promote_model.ownership import NotOwned
from chalicelib.promote_model.prepare_promotion import PreparePromotion
from chalicelib.promote_model.record_promotion_outcome import RecordPromotionOutcome
from chalicelib.promote_model.requests import PromotionRequests
from chalicelib.promote_model.stage_io import (
    FlipInput,
    FlipResult,
    PrepareInput,
    PrepareResult,
    PromotionStep,
    RecordPromotionOutcomeInput,
)
from chalicelib.promote_model.warm_production import ArtifactChanged, WarmProduction
from chalicelib.stages.smoke_test import WarmResult
from chalicelib.stages.stage_io import StageError
from testkit.tarballs import pack, single_python_repo
from tests.unit.fakes import ApprovalWorld
from tests.unit.http_answers import http_status

S = Status
PRODUCTION_BUCKET = "production"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mmedeploy-dev-promote-model:"
FIRST, SECOND, THIRD = EXECUTION + "first", EXECUTION + "second", EXECUTION + "third"


class FakeInvoker:
    """The production MME: answers OUT = IN as the config says; the first call paid a 1.5 s load."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def invoke(self, target_model: str, request: dict[str, Any]) -> Invocation:
        self.targets.append(target_model)
        outputs = [
            {"name": "OUT", "datatype": "FP32", "shape": t["shape"], "data": t["data"]} for t in request["inputs"]
        ]
        cold = len(self.targets) == 1
        return Invocation(
            body={"outputs": outputs}, seconds=0.004, waited_seconds=1.5 if cold else 0.0, not_ready_answers=int(cold)
        )


class Promotion(ApprovalWorld):
    def __init__(self) -> None:
        super().__init__()
        self.invoker = FakeInvoker()
        self.rollout_defaults = RolloutOverrides()  # the deployment's layer of a rollout's policy
        self.preparer = PreparePromotion(
            self.tracker,
            self.store,  # type: ignore[arg-type]
            PRODUCTION_BUCKET,
            lambda: self.rollout_defaults,
        )
        self.warmer = WarmProduction(
            self.tracker,
            self.store,  # type: ignore[arg-type]
            self.invoker,  # type: ignore[arg-type]
            PRODUCTION_BUCKET,
            warm_requests=3,
        )
        self.flipper = FlipAlias(self.tracker)
        self.ending = RecordPromotionOutcome(self.tracker)
        self.requests = PromotionRequests(self.registry, self.gate, self.publisher)  # type: ignore[arg-type]

    def prepare(self, version: str = "1", execution: str = FIRST, by: str = "slack:U0ALICE") -> PrepareResult:
        return self.preparer.run(PrepareInput(name="fraud", version=version, execution=execution, requested_by=by))

    def warm(self, version: str = "1", execution: str = FIRST) -> WarmResult:
        return self.warmer.run(PromotionStep(name="fraud", version=version, execution=execution))

    def flip(self, version: str = "1", execution: str = FIRST, prepared: PrepareResult | None = None) -> FlipResult:
        prepared = prepared or self.prepared_run(version)
        step = FlipInput(
            name="fraud",
            version=version,
            execution=execution,
            alias_revision=prepared.alias_revision,
            rollback=prepared.rollback,
        )
        return self.flipper.run(step)

    def prepared_run(self, version: str) -> PrepareResult:
        """What PreparePromotion handed on, as the state machine keeps it."""
        run = self.registry.get("fraud", version).promotion
        assert run is not None
        return PrepareResult(started=True, alias_revision=run.alias_revision, rollback=run.rollback)

    def fail(self, version: str = "1", execution: str = FIRST, error: str = "SmokeTestFailed") -> str:
        cause = json.dumps({"errorMessage": "1 smoke-test problem(s): OUT differs", "errorType": error})
        failed = RecordPromotionOutcomeInput(
            name="fraud", version=version, execution=execution, error=StageError(Error=error, Cause=cause)
        )
        return self.ending.run(failed).status

    def in_production(self, version: str = "1", execution: str = FIRST) -> None:
        """The whole PromoteModel run for a new version: approved, prepared, warmed, flipped."""
        self.approved(version)
        self.promote_again(version, execution)

    def promote_again(self, version: str, execution: str) -> None:
        prepared = self.prepare(version, execution)
        assert prepared.started, prepared.reason
        self.warm(version, execution)
        self.flip(version, execution, prepared)

    def alias(self) -> Any:
        return self.registry.find_alias("fraud")

    def state(self, *versions: str) -> tuple[Any, ...]:
        """The alias and the versions with their histories, to show that something changed nothing."""
        records = [self.snapshot(version=v) for v in versions]
        return self.alias(), records, [r.history for r in records]


@pytest.fixture
def world() -> Promotion:
    return Promotion()


def run_of(record: ModelVersion) -> PromotionRun:
    assert record.promotion is not None
    return record.promotion


# -- PreparePromotion ------------------------------------------------------------------------------
def test_prepare_claims_an_approved_version_and_copies_it_to_production(world: Promotion) -> None:
    # GIVEN an approved version
    world.approved()
    # WHEN PromoteModel prepares it
    prepared = world.prepare()
    # THEN it is PROMOTING, owned by this execution, with the alias revision it read (none yet)
    assert prepared == PrepareResult(started=True, alias_revision=0, rollback=False, copied=True)
    record = world.registry.get("fraud", "1", with_history=True)
    run = run_of(record)
    assert record.status is S.PROMOTING
    assert (run.execution_arn, run.alias_revision, run.rollback, run.requested_by) == (
        FIRST,
        0,
        False,
        "slack:U0ALICE",
    )
    assert record.history[-1].reason == "promotion to production requested by slack:U0ALICE"
    # AND the approved bytes are in the production bucket under the same key
    assert world.store.sha256(PRODUCTION_BUCKET, record.key) == record.sha256
    assert world.publisher.kinds[-1] == "PromotionStarted"


def test_prepare_of_a_retired_version_is_a_rollback_that_copies_nothing(world: Promotion) -> None:
    # GIVEN version 1 replaced in production by version 2
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    assert world.registry.get("fraud", "1").status is S.RETIRED
    # WHEN a rollback to version 1 is prepared
    prepared = world.prepare("1", THIRD, by="api:ops")
    # THEN it is a rollback from alias revision 2; its bytes are in production already
    assert prepared == PrepareResult(started=True, alias_revision=2, rollback=True, copied=False)
    record = world.registry.get("fraud", "1", with_history=True)
    assert (record.status, run_of(record).execution_arn) == (S.PROMOTING, THIRD)
    assert record.history[-1].reason == "rollback to production requested by api:ops"


def test_a_second_execution_for_the_same_version_does_nothing(world: Promotion) -> None:
    # GIVEN a version being promoted by one execution (a duplicate ModelApproved started another)
    world.approved()
    world.prepare(execution=FIRST)
    before, copies = world.state("1"), len(world.store.copies)
    # WHEN the other execution prepares it
    prepared = world.prepare(execution=SECOND)
    # THEN it starts nothing, copies nothing, and the first keeps the version
    assert (prepared.started, prepared.copied) == (False, False)
    assert "PROMOTING" in prepared.reason
    assert world.state("1") == before and len(world.store.copies) == copies


def test_an_execution_that_loses_the_race_for_the_claim_does_nothing(
    world: Promotion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two executions that both read the version APPROVED; the first claimed it meanwhile
    world.approved()
    stale = world.registry.get("fraud", "1")
    world.prepare(execution=FIRST)
    fresh = world.registry.get
    reads = iter([stale])
    monkeypatch.setattr(world.registry, "get", lambda *args, **kwargs: next(reads, None) or fresh(*args, **kwargs))
    # WHEN the second one's claim finds it PROMOTING already
    prepared = world.prepare(execution=SECOND)
    # THEN it backs off without copying; the first still owns the version
    assert (prepared.started, prepared.reason) == (False, "another execution is promoting this version")
    assert run_of(fresh("fraud", "1")).execution_arn == FIRST
    assert len(world.store.copies) == 1


@pytest.mark.parametrize("status", [S.STAGED, S.AWAITING_APPROVAL, S.DECLINED])
def test_a_version_that_is_not_promotable_is_not_prepared(world: Promotion, status: Status) -> None:
    world.staged()
    path = {S.STAGED: [], S.AWAITING_APPROVAL: [S.AWAITING_APPROVAL]}.get(status, [S.AWAITING_APPROVAL, status])
    for step in path:
        world.tracker.move("fraud", "1", step, "pipeline/test")
    before = world.state("1")
    prepared = world.prepare()
    assert (prepared.started, prepared.reason) == (False, f"fraud 1 is {status.value}: nothing to promote")
    assert world.state("1") == before and world.store.copies == []


def test_a_retried_prepare_by_the_owner_copies_again_without_moving(world: Promotion) -> None:
    world.approved()
    first = world.prepare()
    history = world.history()
    again = world.prepare()
    assert (again.started, again.alias_revision, again.copied) == (True, first.alias_revision, False)
    assert [c.copied for c in world.store.copies] == [True, False]
    assert world.history() == history


# -- WarmProduction --------------------------------------------------------------------------------
def test_warm_production_smoke_tests_the_copy_and_records_its_timings(world: Promotion) -> None:
    # GIVEN a prepared promotion
    world.approved()
    world.prepare()
    # WHEN the production copy is warmed
    result = world.warm()
    # THEN the production MME served the model's file name; cold load and p50 are recorded
    assert (result.cold_load_ms, result.warm_p50_ms, result.requests) == (1504.0, 4.0, 3)
    assert set(world.invoker.targets) == {"fraud_1.tar.gz"}
    record = world.registry.get("fraud", "1", with_history=True)
    assert record.status is S.PROMOTING
    assert (record.metrics["production_cold_load_ms"], record.metrics["production_warm_p50_ms"]) == (1504.0, 4.0)
    assert record.metrics["warm_p50_ms"] == 3.25  # the staging evidence is kept
    assert record.history[-1].reason.startswith("warm on production: cold load 1.50 s, warm p50 4.0 ms")


def test_warm_production_refuses_a_copy_that_is_not_the_approved_bytes(world: Promotion) -> None:
    # GIVEN a prepared promotion whose production copy was replaced by other bytes
    world.approved()
    world.prepare()
    other = pack({**single_python_repo(name="fraud", version="1"), "fraud/1/extra.txt": b"changed"})
    world.store.put(PRODUCTION_BUCKET, "fraud_1.tar.gz", other, "tampered")
    before = world.state("1")
    # WHEN it is warmed / THEN it is refused before the endpoint loads anything
    with pytest.raises(ArtifactChanged, match="approved was"):
        world.warm()
    assert world.invoker.targets == [] and world.state("1") == before


def test_warm_production_by_a_non_owner_is_refused(world: Promotion) -> None:
    world.approved()
    world.prepare(execution=FIRST)
    with pytest.raises(NotOwned, match=FIRST):
        world.warm(execution=SECOND)
    assert world.invoker.targets == []


# -- FlipAlias -------------------------------------------------------------------------------------
def test_the_flip_makes_the_owned_version_production_and_announces_it(world: Promotion) -> None:
    world.approved()
    prepared = world.prepare()
    world.warm()
    flipped = world.flip(prepared=prepared)
    assert flipped == FlipResult(version="1", replaced=None, alias_revision=1)
    assert world.registry.get("fraud", "1").status is S.PRODUCTION
    assert world.publisher.kinds[-1] == "ModelPromoted"
    assert [(r.version, replaced, rolled_back) for r, replaced, rolled_back in world.notifier.promoted] == [
        ("1", None, False)
    ]
    updated, _ = world.notifier.updates[-1]
    assert updated.status is S.PRODUCTION  # the approval message follows the version


def test_the_flip_by_a_non_owner_is_refused_and_changes_nothing(world: Promotion) -> None:
    world.approved()
    prepared = world.prepare(execution=FIRST)
    before = world.state("1")
    with pytest.raises(NotOwned):
        world.flip(execution=SECOND, prepared=prepared)
    assert world.state("1") == before and world.notifier.promoted == []


def test_a_retried_flip_reports_the_same_flip_and_posts_nothing_again(world: Promotion) -> None:
    world.in_production("1", FIRST)
    before, promoted = world.state("1"), len(world.notifier.promoted)
    assert world.flip("1", FIRST) == FlipResult(version="1", replaced=None, alias_revision=1)
    assert world.state("1") == before and len(world.notifier.promoted) == promoted


def test_a_rollback_flip_retires_the_current_version_and_is_announced_as_rolled_back(world: Promotion) -> None:
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    world.promote_again("1", THIRD)
    assert world.registry.get("fraud", "2").status is S.RETIRED
    alias = world.alias()
    assert (alias.version, alias.previous, alias.revision) == ("1", "2", 3)
    assert MODEL_ROLLED_BACK in world.publisher.kinds
    assert world.notifier.promoted[-1][1:] == ("2", True)  # names the version it replaced


def test_of_two_racing_promotions_the_second_flip_fails_and_ends_failed(world: Promotion) -> None:
    # GIVEN version 1 in production, and versions 2 and 3 both prepared against alias revision 1
    world.in_production("1", FIRST)
    world.approved("2")
    world.approved("3")
    two, three = world.prepare("2", SECOND), world.prepare("3", THIRD)
    assert two.alias_revision == three.alias_revision == 1
    # WHEN both flip
    world.flip("2", SECOND, two)
    with pytest.raises(AliasMoved):
        world.flip("3", THIRD, three)
    # THEN version 2 serves, and the Catch ends version 3 FAILED, production unchanged
    assert world.alias().version == "2"
    assert world.fail("3", THIRD, "AliasMoved") == "FAILED"
    assert world.registry.get("fraud", "3").reason.startswith("promotion failed, production unchanged: AliasMoved")


# -- RecordPromotionOutcome ------------------------------------------------------------------------------
def test_a_failed_promotion_ends_failed_with_production_unchanged(world: Promotion) -> None:
    world.approved()
    world.prepare()
    assert world.fail() == "FAILED"
    record = world.registry.get("fraud", "1")
    assert record.status is S.FAILED
    assert (
        record.reason == "promotion failed, production unchanged: SmokeTestFailed: 1 smoke-test problem(s): OUT differs"
    )
    assert world.alias() is None
    assert [r.status for r in world.notifier.outcomes] == [S.FAILED]


def test_a_failed_rollback_leaves_the_version_retired(world: Promotion) -> None:
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    world.prepare("1", THIRD)
    alias = world.alias()
    assert world.fail("1", THIRD) == "RETIRED"
    record = world.registry.get("fraud", "1")
    assert record.reason.startswith("rollback failed, production unchanged: SmokeTestFailed")
    assert world.alias() == alias


def test_a_non_owners_error_changes_nothing(world: Promotion) -> None:
    world.approved()
    world.prepare(execution=FIRST)
    before = world.state("1")
    assert world.fail(execution=SECOND) == "PROMOTING"
    assert world.state("1") == before and world.notifier.outcomes == []


# -- PromotionRequests (the admin API) -------------------------------------------------------------
def refused(call: Any) -> tuple[int, str]:
    with pytest.raises(DomainError) as raised:
        call()
    return http_status(raised.value), str(raised.value)


def test_promoting_an_awaiting_version_approves_it_through_the_gate(world: Promotion) -> None:
    approval_id = world.awaiting()
    accepted = world.requests.promote("fraud", "1", "api:ops")
    assert (accepted.action, accepted.status) == ("approved", S.AWAITING_APPROVAL)
    assert [(out["decided_by"], out["approval_id"]) for _, out in world.callback.succeeded] == [
        ("api:ops", approval_id)
    ]


def test_promoting_an_awaiting_version_decided_in_slack_is_refused(world: Promotion) -> None:
    world.gate.decide(world.awaiting(), Decision.DECLINE, "slack:U0BOB")
    status, message = refused(lambda: world.requests.promote("fraud", "1", "api:ops"))
    assert status == 409 and "already declined by slack:U0BOB" in message
    assert world.callback.succeeded == []


def test_promoting_an_approved_version_requests_a_promotion(world: Promotion) -> None:
    world.approved()
    accepted = world.requests.promote("fraud", "1", "api:ops")
    assert (accepted.action, accepted.status, accepted.from_version) == ("promotion requested", S.APPROVED, None)
    kind, event = world.publisher.events[-1]
    assert (kind, event.name, event.version, event.actor) == (PROMOTION_REQUESTED, "fraud", "1", "api:ops")


def test_promoting_a_retired_version_requests_a_promotion(world: Promotion) -> None:
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    accepted = world.requests.promote("fraud", "1", "api:ops")
    assert (accepted.status, world.publisher.kinds[-1]) == (S.RETIRED, PROMOTION_REQUESTED)


def test_promoting_the_production_version_is_a_conflict(world: Promotion) -> None:
    world.in_production()
    events = len(world.publisher.events)
    assert refused(lambda: world.requests.promote("fraud", "1", "api:ops")) == (
        409,
        "fraud 1 already serves in production",
    )
    assert len(world.publisher.events) == events


def test_promoting_a_staged_version_is_a_conflict(world: Promotion) -> None:
    world.staged()
    status, message = refused(lambda: world.requests.promote("fraud", "1", "api:ops"))
    assert status == 409 and message.startswith("fraud 1 is STAGED; only AWAITING_APPROVAL, APPROVED or RETIRED")


def test_promoting_an_unknown_version_is_not_found(world: Promotion) -> None:
    assert refused(lambda: world.requests.promote("fraud", "7", "api:ops"))[0] == 404


def test_a_rollback_without_a_production_version_is_not_found(world: Promotion) -> None:
    world.approved()
    assert refused(lambda: world.requests.rollback("fraud", "api:ops")) == (
        404,
        "model fraud has no production version",
    )


def test_a_rollback_of_the_first_production_version_is_a_conflict(world: Promotion) -> None:
    world.in_production()
    status, message = refused(lambda: world.requests.rollback("fraud", "api:ops"))
    assert status == 409 and "1 is the first production version of fraud" in message


def test_a_rollback_to_a_version_that_is_not_retired_is_a_conflict(world: Promotion) -> None:
    # GIVEN a rollback to version 1 already under way (version 1 is PROMOTING)
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    world.prepare("1", THIRD)
    status, message = refused(lambda: world.requests.rollback("fraud", "api:ops"))
    assert status == 409 and "fraud 1 is PROMOTING, not RETIRED" in message


def test_a_rollback_requests_the_previous_version(world: Promotion) -> None:
    world.in_production("1", FIRST)
    world.in_production("2", SECOND)
    accepted = world.requests.rollback("fraud", "api:ops")
    assert (accepted.version, accepted.from_version, accepted.action) == ("1", "2", "rollback requested")
    kind, event = world.publisher.events[-1]
    assert (kind, event.version, event.status, event.actor) == (PROMOTION_REQUESTED, "1", S.RETIRED, "api:ops")


# -- the production alias in the registry ----------------------------------------------------------
def promoting(world: Promotion, version: str) -> None:
    """A staged version moved straight on to PROMOTING (the registry does not check who)."""
    world.staged(version)
    for status in (S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING):
        world.registry.transition("fraud", version, status, "pipeline/test")


def item_total(world: Promotion) -> int:
    """How many items the registry's table holds."""
    return world.registry.item_count()


def test_the_first_flip_creates_the_alias_and_makes_the_version_production(world: Promotion) -> None:
    promoting(world, "1")
    flip = world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    assert flip.changed and flip.retired is None
    assert (flip.alias.version, flip.alias.previous, flip.alias.revision) == ("1", None, 1)
    assert world.alias() == flip.alias
    history = world.registry.history("fraud", "1")
    assert (history[-1].status, history[-1].actor, history[-1].reason) == (S.PRODUCTION, "pipeline/promote", "promoted")
    assert world.registry.get("fraud", "1") == flip.promoted


def test_a_second_versions_flip_retires_the_first(world: Promotion) -> None:
    promoting(world, "1")
    world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(world, "2")
    flip = world.registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    assert flip.retired is not None and flip.retired.version == "1"
    assert (flip.alias.version, flip.alias.previous, flip.alias.revision) == ("2", "1", 2)
    retired = world.registry.history("fraud", "1")[-1]
    assert (retired.status, retired.reason) == (S.RETIRED, "replaced in production by 2")
    assert world.registry.get("fraud", "1").status is S.RETIRED


@pytest.mark.parametrize("serving", [0, 1], ids=["no-alias-yet", "alias-at-revision-1"])
def test_of_two_flips_that_read_the_same_revision_only_the_first_wins(world: Promotion, serving: int) -> None:
    # GIVEN (optionally) a version in production, and two versions promoted against its revision
    if serving:
        promoting(world, "1")
        world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(world, "2")
    promoting(world, "3")
    world.registry.flip_production("fraud", "2", serving, "pipeline/promote", "promoted")
    before = world.state("2", "3")
    # WHEN the second flips with the revision it read / THEN AliasMoved, and nothing changed
    with pytest.raises(AliasMoved, match=f"it read revision {serving}, it now points at 2"):
        world.registry.flip_production("fraud", "3", serving, "pipeline/promote", "promoted")
    assert world.state("2", "3") == before
    assert world.registry.get("fraud", "3").status is S.PROMOTING


def test_a_retried_flip_returns_unchanged_and_writes_nothing(world: Promotion) -> None:
    promoting(world, "1")
    first = world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    before, items = world.state("1"), item_total(world)
    again = world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    assert (again.changed, again.alias, again.promoted) == (False, first.alias, first.promoted)
    assert world.state("1") == before and item_total(world) == items


def test_a_version_that_is_not_promoting_cannot_be_flipped(world: Promotion) -> None:
    world.approved()
    with pytest.raises(TransitionRefused):
        world.registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    assert world.alias() is None
