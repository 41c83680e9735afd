"""The registry's contract, run against both implementations: the adapter (ModelRegistry on
DynamoDB, in-process moto) and the in-memory FakeRegistry the business-rule tests use. Every
scenario here passes on both, so the fake cannot drift from what the rules rely on: copies of
records, revisions and history, conditional writes re-read and re-checked, the same domain errors,
paging in key order, the production alias and the canary, claims of pending approvals, and the
clock read as often."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.approvals import EXPIRED_DECISION
from chalicelib.domain.errors import (
    AliasMoved,
    AlreadyDecided,
    ApprovalNotFound,
    RegistryError,
    RolloutEnded,
    RolloutInProgress,
    TransitionRefused,
    VersionExists,
    VersionNotFound,
)
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion, Notice, iso
from tests.unit.builders import a_version
from tests.unit.fake_registry import FakeRegistry
from tests.unit.fakes import TickingClock
from tests.unit.registry_table import TABLE

S = Status
TO_PROMOTING = [S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING]


def tick(n: int) -> str:
    """The n-th reading (from 0) of TickingClock."""
    return iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(seconds=n))


@pytest.fixture(params=["moto", "memory"])
def registry(request: pytest.FixtureRequest) -> Any:
    if request.param == "moto":
        return ModelRegistry(TABLE, request.getfixturevalue("dynamodb"), TickingClock())
    return FakeRegistry(TickingClock())


def item_count(registry: Any) -> int:
    """How many items the table holds (the fake counts its own)."""
    if isinstance(registry, FakeRegistry):
        return registry.item_count()
    return int(registry._db.scan(TableName=TABLE, Select="COUNT")["Count"])


def walk(registry: Any, version: str, path: list[Status], name: str = "fraud") -> None:
    for status in path:
        registry.transition(name, version, status, "pipeline/test", f"to {status.value}")


# -- versions ------------------------------------------------------------------------------------
def test_register_creates_revision_one_and_refuses_a_second_registration(registry: Any) -> None:
    assert registry.find("fraud", "1") is None
    with pytest.raises(VersionNotFound, match="no version 1 of model fraud"):
        registry.get("fraud", "1")
    created = registry.register(a_version(reason="uploaded"), "s3-upload")
    assert (created.revision, created.updated_at, created.status) == (1, tick(0), S.RECEIVED)
    assert registry.get("fraud", "1") == created
    [entry] = registry.history("fraud", "1")
    assert (entry.at, entry.status, entry.actor, entry.reason, entry.revision) == (
        tick(0),
        S.RECEIVED,
        "s3-upload",
        "uploaded",
        1,
    )
    with pytest.raises(VersionExists) as exists:
        registry.register(a_version(etag="other"), "s3-upload")
    assert exists.value.existing == created
    assert registry.get("fraud", "1", with_history=True).history == [entry]


def test_records_read_are_copies(registry: Any) -> None:
    registry.register(a_version(), "s3-upload")
    read = registry.get("fraud", "1")
    read.status, read.etag = S.FAILED, "changed"
    assert (registry.get("fraud", "1").status, registry.get("fraud", "1").etag) == (S.RECEIVED, "etag-1")


def test_transitions_count_revisions_keep_history_and_refuse_backward_moves(registry: Any) -> None:
    registry.register(a_version(), "s3-upload")
    moved = registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "validating")
    assert (moved.changed, moved.previous, moved.record.revision, moved.record.reason) == (
        True,
        S.RECEIVED,
        2,
        "validating",
    )
    assert moved.record.updated_at == tick(1)
    again = registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "again")
    assert (again.changed, again.record) == (False, moved.record)
    changed = registry.transition(
        "fraud", "1", S.VALIDATED, "pipeline/validate", "valid", lambda current: {"size": current.revision * 100}
    )
    assert (changed.record.size, changed.record.revision, changed.record.updated_at) == (200, 3, tick(2))
    with pytest.raises(TransitionRefused) as refused:
        registry.transition("fraud", "1", S.RECEIVED, "pipeline/test")
    assert (refused.value.record, refused.value.wanted) == (changed.record, S.RECEIVED)
    noted = registry.annotate("fraud", "1", "s3-upload", "a re-upload refused", lambda _: {"etag": "etag-1"})
    assert (noted.status, noted.reason, noted.revision) == (S.VALIDATED, "valid", 4)
    history = registry.history("fraud", "1")
    assert [(h.revision, h.status, h.reason) for h in history] == [
        (1, S.RECEIVED, ""),
        (2, S.VALIDATING, "validating"),
        (3, S.VALIDATED, "valid"),
        (4, S.VALIDATED, "a re-upload refused"),
    ]
    assert [h.at for h in history] == [tick(0), tick(1), tick(2), tick(3)]  # the repeat and the refusal read no clock


def test_a_write_from_a_stale_read_is_re_read_and_re_checked(registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.register(a_version(), "s3-upload")
    walk(registry, "1", [S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL])
    stale = registry.get("fraud", "1")
    registry.transition("fraud", "1", S.APPROVED, "gate", "approved")
    fresh = registry.get
    reads = iter([stale])
    monkeypatch.setattr(registry, "get", lambda *args, **kwargs: next(reads, None) or fresh(*args, **kwargs))
    # the stale read says AWAITING_APPROVAL: its write fails on the revision, the re-read finds APPROVED
    again = registry.transition("fraud", "1", S.APPROVED, "gate", "approved again")
    assert (again.changed, again.record.revision) == (False, 7)
    reads = iter([stale])
    with pytest.raises(TransitionRefused):  # from the fresh read: APPROVED cannot become DECLINED
        registry.transition("fraud", "1", S.DECLINED, "gate", "declined")
    assert [h.status for h in fresh("fraud", "1", with_history=True).history].count(S.APPROVED) == 1


def test_versions_in_upload_order_and_pages_in_key_order(registry: Any) -> None:
    for n, version in enumerate(["2", "1.10", "1", "1.2"]):
        registry.register(a_version(version, uploaded_at=f"2025-01-01T00:00:0{n}.000Z"), "s3-upload")
    registry.register(a_version("1", name="other"), "s3-upload")
    walk(registry, "1.2", [S.VALIDATING])  # history items share the key range
    assert [r.version for r in registry.versions("fraud")] == ["2", "1.10", "1", "1.2"]
    first = registry.versions_page("fraud", limit=2)
    assert ([r.version for r in first.versions], first.next) == (["1", "1.10"], "1.10")
    second = registry.versions_page("fraud", limit=2, after=first.next)
    assert ([r.version for r in second.versions], second.next) == (["1.2", "2"], None)
    whole = registry.versions_page("fraud", limit=4)
    assert ([r.version for r in whole.versions], whole.next) == (["1", "1.10", "1.2", "2"], None)
    assert registry.versions_page("nobody").versions == [] and registry.versions("nobody") == []


def test_the_model_index_pages_in_name_order(registry: Any) -> None:
    for name in ["c", "a", "b"]:
        registry.register(a_version("1", name=name), "s3-upload")
    registry.register(a_version("2", name="a"), "s3-upload")
    page = registry.list_models(limit=2)
    assert [(m.name, m.latest_version, m.updated_at) for m in page.models] == [("a", "2", tick(3)), ("b", "1", tick(2))]
    assert page.next == "b"
    rest = registry.list_models(limit=2, after="b")
    assert ([m.name for m in rest.models], rest.next) == (["c"], None)
    assert registry.list_models(limit=3).next is None


# -- the production alias and the canary ---------------------------------------------------------
def promoting(registry: Any, version: str) -> None:
    registry.register(a_version(version), "s3-upload")
    walk(registry, version, TO_PROMOTING)


def test_flips_create_then_move_the_alias_and_retire_the_version_it_replaces(registry: Any) -> None:
    assert registry.find_alias("fraud") is None and registry.routes("fraud").production is None
    promoting(registry, "1")
    first = registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    assert (first.changed, first.retired, first.alias.version, first.alias.previous, first.alias.revision) == (
        True,
        None,
        "1",
        None,
        1,
    )
    assert first.alias.updated_at == first.promoted.updated_at == tick(8)
    assert registry.find_alias("fraud") == first.alias == registry.routes("fraud").production
    assert registry.get("fraud", "1") == first.promoted and first.promoted.status is S.PRODUCTION
    promoting(registry, "2")
    second = registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    assert second.retired is not None and (second.retired.version, second.retired.status) == ("1", S.RETIRED)
    assert (second.alias.version, second.alias.previous, second.alias.revision) == ("2", "1", 2)
    retired = registry.history("fraud", "1")[-1]
    assert (retired.status, retired.reason, retired.actor) == (
        S.RETIRED,
        "replaced in production by 2",
        "pipeline/promote",
    )
    [entry] = registry.list_models().models
    assert (entry.latest_version, entry.production_version, entry.updated_at) == ("2", "2", second.alias.updated_at)


def test_a_flip_writes_what_its_changes_give_on_both_versions_in_its_transaction(registry: Any) -> None:
    promoting(registry, "1")
    registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(registry, "2")
    asked: list[tuple[str, Status, Status, str | None]] = []

    def owed(record: ModelVersion, to: Status, replaced: str | None) -> dict[str, Any]:
        asked.append((record.version, record.status, to, replaced))
        return {"outbox": [*record.outbox, Notice(revision=record.revision + 1, replaced=replaced)]}

    flip = registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted", owed)
    # the promoted version, then the one it retires, each as read, told which version is replaced
    assert asked == [("2", S.PROMOTING, S.PRODUCTION, "1"), ("1", S.PRODUCTION, S.RETIRED, "1")]
    assert flip.retired is not None
    for written in (flip.promoted, flip.retired):
        stored = registry.get("fraud", written.version)
        assert stored == written and stored.outbox == [Notice(revision=stored.revision, replaced="1")]


@pytest.mark.parametrize("serving", [0, 1])
def test_of_two_flips_that_read_the_same_revision_only_the_first_wins(registry: Any, serving: int) -> None:
    if serving:
        promoting(registry, "1")
        registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(registry, "2")
    promoting(registry, "3")
    registry.flip_production("fraud", "2", serving, "pipeline/promote", "promoted")
    before = registry.get("fraud", "3", with_history=True), registry.find_alias("fraud")
    with pytest.raises(
        AliasMoved, match=f"it read revision {serving}, it now points at 2 \\(revision {serving + 1}\\)"
    ):
        registry.flip_production("fraud", "3", serving, "pipeline/promote", "promoted")
    assert (registry.get("fraud", "3", with_history=True), registry.find_alias("fraud")) == before


def test_a_retried_flip_is_unchanged_and_a_version_not_promoting_is_refused(registry: Any) -> None:
    promoting(registry, "1")
    first = registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    history, items = registry.history("fraud", "1"), item_count(registry)
    again = registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    assert (again.changed, again.alias, again.promoted) == (False, first.alias, first.promoted)
    assert registry.history("fraud", "1") == history and item_count(registry) == items == 12
    registry.register(a_version("2"), "s3-upload")
    with pytest.raises(TransitionRefused):
        registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    assert registry.find_alias("fraud") == first.alias


def test_the_canary_starts_ends_and_is_removed_when_its_version_is_promoted(registry: Any) -> None:
    promoting(registry, "1")
    registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(registry, "2")
    assert registry.delete_canary("fraud") is None
    canary = registry.put_canary("fraud", "2", 0.1, "api:ops")
    assert (canary.version, canary.weight, canary.started_at, canary.actor) == ("2", 0.1, tick(17), "api:ops")
    assert registry.routes("fraud").canary == canary
    assert registry.list_models().models[0].canary_version == "2"
    assert registry.delete_canary("fraud") == canary
    assert registry.routes("fraud").canary is None
    [entry] = registry.list_models().models
    assert (entry.canary_version, entry.updated_at) == (None, tick(18))
    registry.put_canary("fraud", "2", 0.5, "api:ops")
    registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    assert registry.routes("fraud").canary is None and registry.list_models().models[0].canary_version is None


ROLLOUT = "arn:aws:states:us-east-1:123456789012:execution:mmedeploy-dev-promote-model:rollout-2"


def test_a_rollouts_canary_is_changed_and_ended_by_its_rollout_only(registry: Any) -> None:
    promoting(registry, "1")
    registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(registry, "2")
    promoting(registry, "3")
    # an admin's canary of the rollout's own version is taken over; of another version it is not
    registry.put_canary("fraud", "3", 0.1, "api:ops")
    with pytest.raises(RolloutInProgress, match="another change to fraud's canary"):
        registry.put_canary("fraud", "2", 0.05, "pipeline/rollout", rollout_execution=ROLLOUT)
    registry.delete_canary("fraud")
    registry.put_canary("fraud", "2", 0.05, "pipeline/rollout", rollout_execution=ROLLOUT)
    stepped = registry.put_canary("fraud", "2", 0.25, "pipeline/rollout", rollout_execution=ROLLOUT)
    assert (stepped.weight, stepped.rollout_execution) == (0.25, ROLLOUT)
    assert registry.routes("fraud").canary == stepped
    # nobody else changes or ends it: an admin, another rollout, a flip of another version
    refused = "a rollout of fraud 2 \\(at 25%, execution rollout-2\\) owns the canary"
    with pytest.raises(RolloutInProgress, match=refused):
        registry.put_canary("fraud", "3", 0.1, "api:ops")
    with pytest.raises(RolloutInProgress, match=refused):
        registry.put_canary("fraud", "3", 0.1, "pipeline/rollout", rollout_execution=ROLLOUT + "-other")
    with pytest.raises(RolloutInProgress, match=refused):
        registry.delete_canary("fraud")
    with pytest.raises(RolloutInProgress, match=refused):
        registry.flip_production("fraud", "3", 1, "pipeline/promote", "promoted")
    assert registry.delete_canary("fraud", rollout_execution=ROLLOUT + "-other") is None
    assert registry.routes("fraud").canary == stepped and registry.find_alias("fraud").version == "1"
    # a rollout whose version is no longer PROMOTING writes no canary (it ended meanwhile)
    registry.register(a_version("4"), "s3-upload")
    with pytest.raises(RolloutEnded, match="the rollout of fraud 4 ended meanwhile \\(RECEIVED\\)"):
        registry.put_canary("fraud", "4", 0.1, "pipeline/rollout", rollout_execution=ROLLOUT + "-4")
    # its own rollout ends it (and again: nothing left to end)
    assert registry.delete_canary("fraud", rollout_execution=ROLLOUT) == stepped
    assert registry.delete_canary("fraud", rollout_execution=ROLLOUT) is None
    assert registry.routes("fraud").canary is None and registry.list_models().models[0].canary_version is None


def test_the_flip_of_a_rollouts_own_candidate_removes_its_canary(registry: Any) -> None:
    promoting(registry, "1")
    registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    promoting(registry, "2")
    registry.put_canary("fraud", "2", 0.5, "pipeline/rollout", rollout_execution=ROLLOUT)
    registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    assert registry.routes("fraud").canary is None and registry.find_alias("fraud").version == "2"


def test_a_refresh_sets_fields_without_history_and_only_at_the_revision_read(registry: Any) -> None:
    promoting(registry, "1")
    read = registry.get("fraud", "1")
    history = registry.history("fraud", "1")
    assert registry.refresh(read, {"metrics": {"p50": 3.0}}) is True
    refreshed = registry.get("fraud", "1")
    assert (refreshed.metrics, refreshed.revision, registry.history("fraud", "1")) == (
        {"p50": 3.0},
        read.revision,
        history,
    )
    registry.annotate("fraud", "1", "api:ops", "noted", lambda _: {})
    assert registry.refresh(read, {"metrics": {"p50": 9.0}}) is False  # it moved on meanwhile
    assert registry.get("fraud", "1").metrics == {"p50": 3.0}


# -- pending approvals ---------------------------------------------------------------------------
def test_a_decision_is_claimed_once_released_by_its_claimer_and_marked_expired(registry: Any) -> None:
    approval = registry.put_approval("fraud", "1", "token-1")
    assert approval.approval_id.startswith("apv_") and approval.requested_at == tick(0)
    assert registry.find_approval(approval.approval_id) == approval
    assert registry.find_approval("apv_unknown") is None
    registry.set_approval_message(approval.approval_id, "C0APPROVALS", "1735787045.000001")
    claimed = registry.claim_decision(approval.approval_id, "approve", "slack:U0ALICE")
    assert (claimed.decision, claimed.decided_by, claimed.decided_at, claimed.slack_ts) == (
        "approve",
        "slack:U0ALICE",
        tick(1),
        "1735787045.000001",
    )
    with pytest.raises(AlreadyDecided) as decided:
        registry.claim_decision(approval.approval_id, "decline", "slack:U0BOB")
    assert decided.value.approval == claimed
    with pytest.raises(RegistryError, match="ConditionalCheckFailedException") as not_theirs:
        registry.release_decision(approval.approval_id, "slack:U0BOB")
    assert type(not_theirs.value) is RegistryError
    registry.release_decision(approval.approval_id, "slack:U0ALICE")
    released = registry.find_approval(approval.approval_id)
    assert (released.decision, released.decided_by, released.decided_at) == (None, None, None)
    registry.claim_decision(approval.approval_id, "decline", "slack:U0BOB")
    registry.mark_approval_expired(approval.approval_id, "slack:U0BOB")
    expired = registry.find_approval(approval.approval_id)
    assert (expired.decision, expired.decided_by) == (EXPIRED_DECISION, "slack:U0BOB")
    with pytest.raises(RegistryError, match="ConditionalCheckFailedException"):
        registry.mark_approval_expired(approval.approval_id, "slack:U0ALICE")


def test_an_unknown_approval_is_not_found_and_cannot_be_updated(registry: Any) -> None:
    with pytest.raises(ApprovalNotFound, match="no approval apv_unknown"):
        registry.claim_decision("apv_unknown", "approve", "slack:U0ALICE")
    for update in (
        lambda: registry.set_approval_message("apv_unknown", "C0APPROVALS", "1.2"),
        lambda: registry.release_decision("apv_unknown", "slack:U0ALICE"),
        lambda: registry.mark_approval_expired("apv_unknown", "slack:U0ALICE"),
    ):
        with pytest.raises(RegistryError) as refused:
            update()
        assert str(refused.value) == (
            "the registry's table answered ConditionalCheckFailedException: The conditional request failed"
        )
    assert registry.find_approval("apv_unknown") is None
