"""Redeploy: a FAILED or EXPIRED version deployed again on the same artifact, by a new execution
that owns it; refused with the reason where a redeploy cannot change the ending."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.adapters.step_functions import DeploymentStarter
from chalicelib.deploy_model.redeploy import Redeploy
from chalicelib.deploy_model.stage_io import DeploymentInput, ValidationVerdict
from chalicelib.deploy_model.upload_trigger import TriggerAction, UploadTrigger
from chalicelib.domain.errors import ArtifactChanged, Conflict, NotFound
from chalicelib.domain.lifecycle import Status
from tests.unit.fakes import FakeArtifactStore
from tests.unit.test_execution_ended import OWNER, World
from tests.unit.test_pipeline_stages import BUCKET, STATE_MACHINE, FakeStepFunctions, tarball, upload_of
from tests.unit.test_pipeline_stages import World as PipelineWorld

ADMIN = "admin:platform"


class RedeployWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.sfn = FakeStepFunctions()
        self.store = FakeArtifactStore()
        self.redeploy = Redeploy(self.tracker, DeploymentStarter(self.sfn, STATE_MACHINE), self.store)  # type: ignore[arg-type]

    def end_as(self, status: Status, reason: str) -> None:
        self.at(Status.AWAITING_APPROVAL)
        self.tracker.move("fraud", "1", status, "pipeline/record-outcome", reason)


@pytest.fixture
def world() -> RedeployWorld:
    return RedeployWorld()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.FAILED, "ExecutionAborted: the DeployModel execution e1 was stopped at RequestApproval"),
        (Status.EXPIRED, "no approval decision before the approval timeout"),
    ],
)
def test_a_failed_or_expired_version_starts_again_owned_by_a_new_execution(
    world: RedeployWorld, status: Status, reason: str
) -> None:
    world.end_as(status, reason)
    before = world.registry.get("fraud", "1")
    # WHEN an admin redeploys it
    started = world.redeploy.redeploy("fraud", "1", ADMIN)
    # THEN it is RECEIVED again, owned by a new execution started on the same pinned artifact
    record = world.registry.get("fraud", "1", with_history=True)
    assert (started.status, record.status) == (Status.RECEIVED, Status.RECEIVED)
    assert record.execution_arn == started.execution != OWNER
    assert record.approval_id is None
    assert record.history[-1].actor == ADMIN and f"(it was {status.value}: {reason})" in record.history[-1].reason
    ((name, execution),) = world.sfn.executions.items()
    assert started.execution.endswith(f":{name}") and name.endswith(f"-r{before.revision}")
    upload = execution["input"]["upload"]
    assert (upload["key"], upload["etag"], upload["version_id"]) == (before.key, before.etag, before.object_version)
    # AND its history keeps the first run: RECEIVED appears twice
    assert [h.status for h in record.history].count(Status.RECEIVED) == 2


@pytest.mark.parametrize(
    ("status", "reason", "why"),
    [
        (Status.REJECTED, "1 error(s): CONFIG_INVALID", "rejected by the validator"),
        (Status.DECLINED, "declined by slack:U0BOB", "an approver declined it"),
        (Status.FAILED, "ModelLoadFailed: Triton refused to load it", "failed on its own account"),
        (Status.FAILED, "SmokeTestFailed: output y has shape [2]", "failed on its own account"),
        (Status.FAILED, "ArtifactChanged: the bytes' sha256 is b..., not a...", "failed on its own account"),
        (
            Status.FAILED,
            "promotion failed, production unchanged: ModelLoadFailed: out of memory",
            "failed on its own account",
        ),
    ],
)
def test_what_a_redeploy_cannot_change_is_refused_with_the_reason(
    world: RedeployWorld, status: Status, reason: str, why: str
) -> None:
    if status is Status.REJECTED:
        world.at(Status.VALIDATING)
        world.tracker.move("fraud", "1", status, "pipeline/validate", reason)
    else:
        world.end_as(status, reason)
    with pytest.raises(Conflict, match=why):
        world.redeploy.redeploy("fraud", "1", ADMIN)
    assert world.registry.get("fraud", "1").status is status and world.sfn.executions == {}


def test_a_version_in_progress_or_unknown_is_refused(world: RedeployWorld) -> None:
    world.at(Status.WARMING)
    with pytest.raises(
        Conflict, match="is WARMING: a redeploy starts again only a version that ended FAILED or EXPIRED"
    ):
        world.redeploy.redeploy("fraud", "1", ADMIN)
    with pytest.raises(NotFound):
        world.redeploy.redeploy("fraud", "9", ADMIN)


def test_identical_bytes_pushed_again_are_a_no_op_whatever_the_status(world: RedeployWorld) -> None:
    # GIVEN a version registered from an upload, whose deployment has ended
    trigger = UploadTrigger(world.tracker, DeploymentStarter(world.sfn, STATE_MACHINE), BUCKET)  # type: ignore[arg-type]
    upload = upload_of()
    assert trigger.handle(upload).outcome is TriggerAction.STARTED
    world.sfn.executions.clear()  # as after a local restart: Step Functions forgot the name
    for status in (Status.VALIDATING, Status.VALIDATED, Status.WARMING):
        world.tracker.move("fraud", "1", status, "pipeline/test")
    world.tracker.move("fraud", "1", Status.FAILED, "pipeline/record-outcome", "ExecutionAborted: stopped")
    # WHEN the same bytes are pushed again THEN nothing starts and nothing moves
    assert trigger.handle(upload).outcome is TriggerAction.DUPLICATE
    assert world.sfn.executions == {} and world.registry.get("fraud", "1").status is Status.FAILED


def test_a_version_whose_pinned_object_version_is_there_is_redeployed_on_it(world: RedeployWorld) -> None:
    world.end_as(Status.FAILED, "ExecutionAborted: stopped")
    world.store.put(BUCKET, "fraud_1.tar.gz", b"the registered bytes", "v1")
    world.registry._replace_record(  # type: ignore[attr-defined]
        world.registry.get("fraud", "1").model_copy(update={"object_version": "v1"})
    )
    world.store.put(BUCKET, "fraud_1.tar.gz", b"a later upload over the key", "v2")
    # WHEN it is redeployed THEN the version it pinned is the one checked (not the key's current one)
    assert world.redeploy.redeploy("fraud", "1", ADMIN).status is Status.RECEIVED
    assert world.store.checked == [(BUCKET, "fraud_1.tar.gz", "v1")]
    ((_, execution),) = world.sfn.executions.items()
    assert execution["input"]["upload"]["version_id"] == "v1"


def test_a_version_whose_pinned_object_version_is_gone_is_refused_and_nothing_changes(world: RedeployWorld) -> None:
    # GIVEN a FAILED version pinned to object version v1, since deleted (the key holds only v2)
    world.end_as(Status.FAILED, "ExecutionAborted: stopped")
    world.registry._replace_record(  # type: ignore[attr-defined]
        world.registry.get("fraud", "1").model_copy(update={"object_version": "v1"})
    )
    world.store.put(BUCKET, "fraud_1.tar.gz", b"another upload", "v2")
    before = world.registry.get("fraud", "1", with_history=True)
    events = len(world.publisher.events)
    # WHEN an admin redeploys it THEN it is refused, saying which object is gone and what to do
    with pytest.raises(Conflict) as refused:
        world.redeploy.redeploy("fraud", "1", ADMIN)
    message = refused.value.message
    assert f"s3://{BUCKET}/fraud_1.tar.gz" in message and "(object version v1) no longer exists" in message
    assert message.endswith("upload it again as a new version")
    # AND nothing changed: the record, its history, no event, no execution
    after = world.registry.get("fraud", "1", with_history=True)
    assert (after, after.history) == (before, before.history)
    assert len(world.publisher.events) == events and world.sfn.executions == {}


def test_a_redeploy_whose_bytes_differ_from_the_validated_ones_ends_failed_saying_so() -> None:
    # GIVEN a version validated from an unversioned upload (nothing pinned), FAILED for an outside reason
    world = PipelineWorld()
    data = tarball()
    upload = world.store.put(BUCKET, "fraud_1.tar.gz", data, "v1").model_copy(update={"version_id": None})
    world.trigger.handle(upload)
    assert world.validate.run(world.deployment(upload)).outcome is ValidationVerdict.VALIDATED
    redeploy = Redeploy(world.tracker, world.starter, world.store)  # type: ignore[arg-type]

    def redeployed() -> DeploymentInput:
        world.tracker.move("fraud", "1", Status.FAILED, "pipeline/record-outcome", "ExecutionAborted: stopped")
        started = redeploy.redeploy("fraud", "1", ADMIN)
        return DeploymentInput.model_validate(world.sfn.executions[started.execution.rsplit(":", 1)[-1]]["input"])

    # WHEN it is redeployed on the same bytes THEN it validates again
    assert world.validate.run(redeployed()).outcome is ValidationVerdict.VALIDATED
    # WHEN the key was overwritten with other bytes before the next redeploy THEN Validate refuses them
    world.store.put(BUCKET, "fraud_1.tar.gz", tarball(**{"fraud/1/extra.txt": b"changed"}), "v2")
    with pytest.raises(ArtifactChanged) as changed:
        world.validate.run(redeployed())
    recorded = hashlib.sha256(data).hexdigest()
    assert f"was validated with sha256 {recorded[:12]}" in changed.value.message
    assert changed.value.message.endswith("upload it again as a new version")
    assert world.registry.get("fraud", "1").sha256 == recorded  # the evidence of the first validation is kept
