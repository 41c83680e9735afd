"""The outbox: a status change, its lifecycle event and its Slack notice are not lost to a crash
between them. The change writes what it owes with it; the handler delivers and drops it; a crash
leaves it owed, for the retried step or the sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.lifecycle_events import EventPublishFailed
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import Notice
from chalicelib.sweep import OWED_AFTER_S
from tests.unit.builders import a_version
from tests.unit.test_sweep import SweepWorld

ENDING = "ExecutionAborted: stopped"


@pytest.fixture
def world() -> SweepWorld:
    return SweepWorld()


class CrashingNotifierOnce:
    """The Slack notice fails once, as a Lambda killed between the write and the notice would."""

    def __init__(self, inner: object) -> None:
        self._inner, self.failed = inner, False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def announce_outcome(self, record: object) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("Slack unreachable")
        self._inner.announce_outcome(record)  # type: ignore[attr-defined]


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
