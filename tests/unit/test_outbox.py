"""The outbox: a status change, its lifecycle event and its Slack notice are not lost to a crash
between them. The change writes what it owes with it; the handler delivers and drops it; a crash
leaves it owed, for the retried step or the sweep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.lifecycle_events import UPLOAD_REFUSED, EventPublishFailed
from chalicelib.domain.lifecycle import MODEL_ROLLED_BACK, Status
from chalicelib.domain.records import ModelVersion, Notice
from chalicelib.sweep import OWED_AFTER_S
from tests.unit.builders import a_version
from tests.unit.test_execution_ended import OWNER
from tests.unit.test_sweep import SweepWorld

ENDING = "ExecutionAborted: stopped"


@pytest.fixture
def world() -> SweepWorld:
    return SweepWorld()


class CrashingNotifierOnce:
    """One kind of Slack notice (``method``) fails once, as a Lambda killed between the write and
    the notice would, or Slack down."""

    def __init__(self, inner: object, method: str = "announce_outcome") -> None:
        self._inner, self._method, self.failed = inner, method, False

    def __getattr__(self, name: str) -> object:
        if name != self._method or self.failed:
            return getattr(self._inner, name)

        def crash(*_args: object, **_kwargs: object) -> None:
            self.failed = True
            raise ConnectionError("Slack unreachable")

        return crash


def quiet(world: SweepWorld) -> None:
    """The sweep's clock, once every version has been quiet long enough for it to deliver."""
    latest = max(world.registry.get("fraud", v).updated_at for v in ("1", "2") if world.registry.find("fraud", v))
    world.clock = datetime.fromisoformat(latest.replace("Z", "+00:00")) + timedelta(seconds=OWED_AFTER_S + 1)


TO_PROMOTING = [
    Status.VALIDATING,
    Status.VALIDATED,
    Status.WARMING,
    Status.STAGED,
    Status.AWAITING_APPROVAL,
    Status.APPROVED,
    Status.PROMOTING,
]


def promoting(world: SweepWorld, version: str) -> None:
    world.tracker.register(a_version(version=version), "s3-upload")
    for status in TO_PROMOTING:
        world.tracker.move("fraud", version, status, "pipeline/test")


def flipped_over_one(world: SweepWorld) -> None:
    """Version 1 in production, and version 2 promoting against the alias at revision 1."""
    promoting(world, "1")
    world.tracker.flip("fraud", "1", 0, "pipeline/promote", "promoted", rollback=False)
    promoting(world, "2")


def test_a_move_delivered_at_once_owes_nothing(world: SweepWorld) -> None:
    world.at(Status.WARMING)
    assert world.registry.get("fraud", "1").outbox == []
    assert world.publisher.kinds[-1] == "WarmingStarted"


def test_an_event_lost_to_a_crash_is_delivered_by_the_retried_step(world: SweepWorld) -> None:
    # GIVEN EventBridge refuses the event of a move, after the move was written
    world.at(Status.VALIDATED)
    world.publisher._fail_on.add("WarmingStarted")
    with pytest.raises(EventPublishFailed):
        world.tracker.move("fraud", "1", Status.WARMING, "pipeline/warm-staging", "loading")
    # THEN the change is written and what it owes is kept with it
    record = world.registry.get("fraud", "1")
    assert record.status is Status.WARMING and [n.revision for n in record.outbox] == [record.revision]
    # WHEN Step Functions retries the step THEN the event goes out once, and nothing is owed any more
    world.tracker.move("fraud", "1", Status.WARMING, "pipeline/warm-staging", "loading")
    assert world.publisher.kinds.count("WarmingStarted") == 1
    assert world.registry.get("fraud", "1").outbox == []


def test_a_slack_notice_lost_to_a_crash_is_delivered_by_the_sweep(world: SweepWorld) -> None:
    # GIVEN an ending whose Slack notice failed after the change was written (and nothing retried it)
    world.at(Status.AWAITING_APPROVAL)
    notifier = CrashingNotifierOnce(world.notifier)
    world.tracker._notifier = notifier  # type: ignore[assignment]
    with pytest.raises(ConnectionError):
        world.tracker.move("fraud", "1", Status.FAILED, "pipeline/record-outcome", ENDING)
    owed = world.registry.get("fraud", "1")
    assert owed.outbox and owed.outbox[-1].slack and world.notifier.outcomes == []
    # WHEN the sweep runs, too soon: the writer may still be delivering
    updated = owed.updated_at.replace("Z", "+00:00")
    world.clock = datetime.fromisoformat(updated) + timedelta(seconds=1)
    assert world.sweep.run().announced == []
    # THEN once the version has been quiet long enough, the sweep announces it: event and Slack notice
    world.clock = datetime.fromisoformat(updated) + timedelta(seconds=OWED_AFTER_S + 1)
    assert world.sweep.run().announced == ["fraud 1"]
    assert [r.status for r in world.notifier.outcomes] == [Status.FAILED]
    assert world.publisher.kinds.count("DeploymentFailed") == 2  # before the crash, and the sweep's
    assert world.registry.get("fraud", "1").outbox == []
    # AND a later sweep owes nothing
    assert world.sweep.run().announced == []


def test_older_owed_changes_are_announced_as_they_were(world: SweepWorld) -> None:
    # GIVEN a change whose event was lost, then a later change (a different step)
    world.at(Status.VALIDATED)
    world.publisher._fail_on.add("WarmingStarted")
    with pytest.raises(EventPublishFailed):
        world.tracker.move("fraud", "1", Status.WARMING, "pipeline/warm-staging", "loading")
    world.tracker.move("fraud", "1", Status.STAGED, "pipeline/warm-staging", "warm")
    # THEN both went out, in order, each with its own status, reason and revision
    warming, staged = (e for kind, e in world.publisher.events if kind in ("WarmingStarted", "ModelWarmed"))
    assert (warming.status, warming.reason, staged.status, staged.reason) == (
        Status.WARMING,
        "loading",
        Status.STAGED,
        "warm",
    )
    assert staged.revision == warming.revision + 1
    assert world.registry.get("fraud", "1").outbox == []


def test_the_outbox_is_not_part_of_the_versions_json() -> None:
    assert "outbox" not in a_version().document()


def test_the_registry_on_dynamodb_keeps_and_clears_the_outbox(dynamodb: object) -> None:
    # the adapter itself (the fake stands in for it elsewhere): owed notices survive a crash in
    # DynamoDB and are dropped by a conditional write that adds no history
    from chalicelib.adapters.registry import ModelRegistry
    from chalicelib.stages.tracker import LifecycleTracker
    from tests.unit.fakes import FakeNotifier, FakePublisher
    from tests.unit.registry_table import TABLE

    registry = ModelRegistry(TABLE, dynamodb)  # type: ignore[arg-type]
    publisher = FakePublisher(fail_on={"ValidationStarted"})
    tracker = LifecycleTracker(registry, registry, publisher, FakeNotifier())  # type: ignore[arg-type]
    tracker.register(a_version(status=Status.RECEIVED), "s3-upload")
    with pytest.raises(EventPublishFailed):
        tracker.move("fraud", "1", Status.VALIDATING, "pipeline/validate", "validating")
    owed = registry.get("fraud", "1", with_history=True)
    assert [n.revision for n in owed.outbox] == [2] and len(owed.history) == 2
    tracker.deliver(owed)
    cleared = registry.get("fraud", "1", with_history=True)
    assert (cleared.outbox, cleared.revision, len(cleared.history)) == ([], 2, 2)
    assert publisher.kinds[-1] == "ValidationStarted"


def test_one_version_the_sweep_cannot_settle_does_not_stop_it_for_the_others(world: SweepWorld) -> None:
    # GIVEN two versions owing a Slack notice, and Slack fails the first delivery
    for version in ("1", "2"):
        world.tracker.register(a_version(version=version, status=Status.FAILED), "pipeline/test")
    before = len(world.notifier.outcomes)  # (registering them announced them once)
    notifier = CrashingNotifierOnce(world.notifier)
    world.tracker._notifier = notifier  # type: ignore[assignment]
    for version in ("1", "2"):
        record = world.registry.get("fraud", version)
        world.registry._replace_record(  # type: ignore[attr-defined]
            record.model_copy(update={"outbox": [Notice(revision=record.revision, slack=True)]})
        )
    world.clock = datetime.fromisoformat(record.updated_at.replace("Z", "+00:00")) + timedelta(seconds=60)
    # WHEN the sweep runs THEN the first fails, the second is announced, and the next sweep gets the first
    report = world.sweep.run()
    assert (report.failed, report.announced) == (["fraud 1"], ["fraud 2"])
    assert world.sweep.run().announced == ["fraud 1"]
    assert [r.version for r in world.notifier.outcomes[before:]] == ["2", "1"]


# -- the registration, the flip and the refused upload write what they owe too ---------------------
@pytest.mark.parametrize(("status", "kind"), [(Status.RECEIVED, "ModelReceived"), (Status.REJECTED, "ModelRejected")])
def test_a_registration_whose_announcement_was_lost_to_a_crash_is_delivered_by_the_sweep(
    world: SweepWorld, status: Status, kind: str
) -> None:
    # GIVEN a registration whose event EventBridge refused after the record was written
    world.publisher._fail_on.add(kind)
    with pytest.raises(EventPublishFailed):
        world.tracker.register(a_version(status=status, reason="NAME_INVALID: no"), "s3-upload", "uploaded")
    # THEN the version is there, owing its event (and, rejected, its Slack notice) in the same write
    owed = world.registry.get("fraud", "1")
    assert [(n.revision, n.previous, n.slack) for n in owed.outbox] == [(1, None, status is Status.REJECTED)]
    assert world.publisher.events == [] and world.notifier.outcomes == []
    # WHEN the sweep runs once the version has been quiet long enough THEN it announces it, once
    quiet(world)
    assert world.sweep.run().announced == ["fraud 1"]
    [(announced, event)] = world.publisher.events
    assert (announced, event.revision, event.previous_status, event.actor) == (kind, 1, None, "s3-upload")
    assert [r.status for r in world.notifier.outcomes] == ([Status.REJECTED] if status is Status.REJECTED else [])
    assert world.registry.get("fraud", "1").outbox == [] and world.sweep.run().announced == []


def test_a_registration_delivered_at_once_owes_nothing(world: SweepWorld) -> None:
    world.tracker.register(a_version(status=Status.REJECTED), "s3-upload")
    assert world.registry.get("fraud", "1").outbox == []
    assert (world.publisher.kinds, [r.status for r in world.notifier.outcomes]) == (
        ["ModelRejected"],
        [Status.REJECTED],
    )


@pytest.mark.parametrize("rollback", [False, True], ids=["promotion", "rollback"])
def test_a_flip_whose_announcements_were_lost_to_a_crash_is_delivered_by_the_sweep(
    world: SweepWorld, rollback: bool
) -> None:
    # GIVEN version 2 flipped in place of version 1, and the flip's first event refused after its transaction
    flipped_over_one(world)
    kind = MODEL_ROLLED_BACK if rollback else "ModelPromoted"
    world.publisher._fail_on.add(kind)
    promoted_before = len(world.notifier.promoted)
    with pytest.raises(EventPublishFailed):
        world.tracker.flip("fraud", "2", 1, "pipeline/promote", "promoted", rollback=rollback)
    # THEN the flip is written, and each version it wrote owes its announcements in the same transaction
    two, one = world.registry.get("fraud", "2"), world.registry.get("fraud", "1")
    assert (two.status, one.status) == (Status.PRODUCTION, Status.RETIRED)
    assert [(n.revision, n.previous, n.slack, n.detail_type, n.replaced) for n in two.outbox] == [
        (two.revision, Status.PROMOTING, True, MODEL_ROLLED_BACK if rollback else None, "1")
    ]
    assert [(n.revision, n.previous, n.slack) for n in one.outbox] == [(one.revision, Status.PRODUCTION, False)]
    assert len(world.notifier.promoted) == promoted_before and "ModelRetired" not in world.publisher.kinds
    # WHEN the sweep runs once both have been quiet long enough
    quiet(world)
    assert sorted(world.sweep.run().announced) == ["fraud 1", "fraud 2"]
    # THEN the promotion is announced once, as it was, and in Slack naming what it replaced
    [promotion] = [e for k, e in world.publisher.events if k == kind and e.version == "2"]
    assert (promotion.version, promotion.status, promotion.previous_status, promotion.revision, promotion.actor) == (
        "2",
        Status.PRODUCTION,
        Status.PROMOTING,
        two.revision,
        "pipeline/promote",
    )
    [(record, replaced, rolled_back)] = world.notifier.promoted[promoted_before:]
    assert (record.version, replaced, rolled_back) == ("2", "1", rollback)
    # AND the replaced version as retired, once
    [retired] = [e for k, e in world.publisher.events if k == "ModelRetired"]
    assert (retired.version, retired.previous_status, retired.revision) == ("1", Status.PRODUCTION, one.revision)
    assert world.registry.get("fraud", "2").outbox == [] == world.registry.get("fraud", "1").outbox
    assert world.sweep.run().announced == []


def test_a_retried_flip_delivers_what_its_first_try_left_owed_on_both_versions(world: SweepWorld) -> None:
    # GIVEN a flip whose ModelRetired event was refused after the promotion was announced
    flipped_over_one(world)
    world.publisher._fail_on.add("ModelRetired")
    with pytest.raises(EventPublishFailed):
        world.tracker.flip("fraud", "2", 1, "pipeline/promote", "promoted", rollback=False)
    assert world.registry.get("fraud", "1").outbox and not world.registry.get("fraud", "2").outbox
    # WHEN Step Functions retries FlipAlias THEN the retired version is announced, and Slack told once
    again = world.tracker.flip("fraud", "2", 1, "pipeline/promote", "promoted", rollback=False)
    assert not again.changed
    assert world.publisher.kinds.count("ModelRetired") == 1
    assert [(r.version, replaced) for r, replaced, _ in world.notifier.promoted] == [("1", None), ("2", "1")]
    assert world.registry.get("fraud", "1").outbox == []


def test_a_slack_outage_does_not_fail_a_flip_and_its_notice_stays_owed_for_the_sweep(world: SweepWorld) -> None:
    # GIVEN Slack down when the flip announces the promotion
    promoting(world, "1")
    world.tracker._notifier = CrashingNotifierOnce(world.notifier, "announce_promoted")  # type: ignore[assignment]
    # WHEN the flip runs THEN it does not fail (the alias has flipped): the event went out, the notice is owed
    flip = world.tracker.flip("fraud", "1", 0, "pipeline/promote", "promoted", rollback=False)
    assert flip.changed and world.registry.get("fraud", "1").status is Status.PRODUCTION
    assert world.publisher.kinds.count("ModelPromoted") == 1 and world.notifier.promoted == []
    assert [n.slack for n in world.registry.get("fraud", "1").outbox] == [True]
    # AND once Slack is back the sweep posts it
    quiet(world)
    assert world.sweep.run().announced == ["fraud 1"]
    assert [(r.version, replaced, rolled_back) for r, replaced, rolled_back in world.notifier.promoted] == [
        ("1", None, False)
    ]
    assert world.registry.get("fraud", "1").outbox == []


@pytest.mark.parametrize("recovery", ["retried step", "sweep"])
def test_a_refused_upload_whose_announcement_was_lost_is_delivered_with_its_own_reason(
    world: SweepWorld, recovery: str
) -> None:
    # GIVEN a version validating (its execution runs), and a later upload refused; the refusal's
    # event is refused by EventBridge after the note was written
    world.at(Status.VALIDATED)
    world.executions.set(OWNER, "RUNNING")
    record = world.registry.get("fraud", "1")
    reason = "ARTIFACT_IMMUTABLE: other bytes under fraud 1"
    world.publisher._fail_on.add(UPLOAD_REFUSED)
    with pytest.raises(EventPublishFailed):
        world.tracker.refuse_upload(record, "etag-2", "f" * 64, reason, "pipeline/validate")
    owed = world.registry.get("fraud", "1")
    assert [(n.revision, n.slack, n.detail_type) for n in owed.outbox] == [(owed.revision, True, UPLOAD_REFUSED)]
    assert owed.status is Status.VALIDATED and owed.reason != reason and world.notifier.refused == []
    # WHEN the step is retried, or the sweep runs once the version has been quiet long enough
    if recovery == "sweep":
        quiet(world)
        assert world.sweep.run().announced == ["fraud 1"]
    else:
        world.tracker.refuse_upload(record, "etag-2", "f" * 64, reason, "pipeline/validate")
    # THEN the refusal is noted once and announced once, with the refusal's reason, not the status's
    assert len(world.registry.get("fraud", "1").rejected_uploads) == 1
    [event] = [e for k, e in world.publisher.events if k == UPLOAD_REFUSED]
    assert (event.status, event.reason, event.revision) == (Status.VALIDATED, reason, owed.revision)
    assert [(r.version, why) for r, why in world.notifier.refused] == [("1", reason)]
    assert world.registry.get("fraud", "1").outbox == []


def test_notices_stored_before_their_newer_fields_still_read_and_are_delivered(world: SweepWorld) -> None:
    # GIVEN a version whose record was stored with a notice of the first shape (no detail_type, no replaced)
    world.at(Status.WARMING)
    record = world.registry.get("fraud", "1")
    stored = record.model_dump(mode="json") | {
        "outbox": [{"revision": record.revision, "previous": "VALIDATED", "slack": False}]
    }
    old = ModelVersion.model_validate_json(json.dumps(stored))
    assert old.outbox == [Notice(revision=record.revision, previous=Status.VALIDATED)]
    world.registry._replace_record(old)  # type: ignore[attr-defined]
    world.executions.set(OWNER, "RUNNING")
    # WHEN the sweep delivers it THEN it is announced as the status's own event
    quiet(world)
    assert world.sweep.run().announced == ["fraud 1"]
    assert world.publisher.kinds.count("WarmingStarted") == 2  # the move's own, and the sweep's
