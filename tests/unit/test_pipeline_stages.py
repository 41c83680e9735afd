"""The DeployModel pipeline's services on the real ModelRegistry (DynamoDB in-process with moto),
with in-memory Step Functions, artifact store, lifecycle publisher and Slack notifier that record
what they are asked to do."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.lifecycle_events import UPLOAD_REFUSED, EventPublishFailed
from chalicelib.adapters.step_functions import DeploymentStarter
from chalicelib.deploy_model.record_outcome import RecordOutcome, ending
from chalicelib.deploy_model.stage_io import DeploymentInput, RecordOutcomeInput, UploadedObject, ValidationVerdict
from chalicelib.deploy_model.upload_trigger import UNNAMED_VERSION, TriggerAction, UploadTrigger, upload_event_pattern
from chalicelib.deploy_model.validate import Validate
from chalicelib.domain.errors import TransitionRefused
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.validation.findings import Code
from chalicelib.stages.stage_io import StageError
from testkit.tarballs import PYTHON_MODEL, pack, single_python_repo
from tests.unit.fakes import FakeArtifactStore, FakePublisher, TickingClock, Tracked

S = Status
BUCKET = "staging"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:mmedeploy-dev-deploy-model"
NAME_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


# -- fakes ----------------------------------------------------------------------------------------
class ExecutionAlreadyExists(Exception):
    pass


class FakeStepFunctions:
    """StartExecution with Step Functions' answer to a name that was used before."""

    class exceptions:  # as on a boto3 client
        ExecutionAlreadyExists = ExecutionAlreadyExists

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.attempts = 0

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        self.attempts += 1
        if name in self.executions:
            raise ExecutionAlreadyExists(name)
        self.executions[name] = {"stateMachineArn": stateMachineArn, "input": json.loads(input)}
        return {"executionArn": f"{stateMachineArn}:{name}"}


class SteppingTimer:
    """perf_counter that advances 12.5 ms between readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.0125
        return self.now


# -- the world: the registry in memory plus the fakes -------------------------------------------------
class World(Tracked):
    def __init__(self, publisher: FakePublisher | None = None) -> None:
        super().__init__(publisher)
        self.sfn = FakeStepFunctions()
        self.starter = DeploymentStarter(self.sfn, STATE_MACHINE)
        self.trigger = UploadTrigger(self.tracker, self.starter, BUCKET, TickingClock())
        self.store = FakeArtifactStore()
        self.validate = Validate(self.tracker, self.store, timer=SteppingTimer())  # type: ignore[arg-type]
        self.outcome = RecordOutcome(self.tracker)

    def upload(self, data: bytes, key: str = "fraud_1.tar.gz", version_id: str = "v1") -> UploadedObject:
        """Put the bytes in the store and deliver the upload event to the trigger."""
        upload = self.store.put(BUCKET, key, data, version_id)
        self.trigger.handle(upload)
        return upload

    def deployment(self, upload: UploadedObject) -> DeploymentInput:
        """The execution input the trigger started the upload's execution with."""
        started = self.sfn.executions[upload.execution_name()]["input"]
        return DeploymentInput.model_validate(started)


@pytest.fixture
def world() -> World:
    return World()


def upload_of(key: str = "fraud_1.tar.gz", etag: str = "etag-1", bucket: str = BUCKET, **extra: Any) -> UploadedObject:
    return UploadedObject(bucket=bucket, key=key, etag=etag, **extra)


def tarball(version: str = "1", **files: bytes) -> bytes:
    return pack({**single_python_repo(name="fraud", version=version), **files})


def invalid_tarball() -> bytes:
    return tarball(**{"fraud/config.pbtxt": b'name: "fraud" backend: {', "model_version.txt": b"2\n"})


# -- UploadTrigger --------------------------------------------------------------------------------
def test_a_valid_upload_is_registered_received_and_its_deployment_started(world: World) -> None:
    # GIVEN an upload under a prefix, following the naming contract
    upload = upload_of("incoming/fraud_1.2.tar.gz", version_id="v7", size=5224, requester="123456789012")
    # WHEN the trigger handles it
    result = world.trigger.handle(upload)
    # THEN the version is RECEIVED, owned by an execution named after the object
    assert (result.outcome, result.name, result.version) == (TriggerAction.STARTED, "fraud", "1.2")
    assert result.execution_name == upload.execution_name()
    record = world.registry.get("fraud", "1.2")
    assert record.status is S.RECEIVED
    assert (record.bucket, record.key, record.etag) == (BUCKET, "incoming/fraud_1.2.tar.gz", "etag-1")
    assert (record.object_version, record.size, record.uploader) == ("v7", 5224, "123456789012")
    assert record.execution_arn == f"{STATE_MACHINE.replace(':stateMachine:', ':execution:')}:{result.execution_name}"
    # AND one execution was started with the deployment input
    assert list(world.sfn.executions) == [result.execution_name]
    started = world.sfn.executions[upload.execution_name()]
    assert started["stateMachineArn"] == STATE_MACHINE
    expected = DeploymentInput(name="fraud", version="1.2", upload=upload)
    assert DeploymentInput.model_validate(started["input"]) == expected
    # AND it was announced, without Slack
    assert world.publisher.kinds == ["ModelReceived"]
    assert world.notifier.outcomes == []


def test_the_same_event_twice_registers_once_and_reports_a_duplicate(world: World) -> None:
    # GIVEN an upload event that was already handled
    upload = upload_of()
    first = world.trigger.handle(upload)
    # WHEN EventBridge delivers it again
    second = world.trigger.handle(upload)
    # THEN there is one registration and one execution; the second start is a duplicate
    assert (first.outcome, second.outcome) == (TriggerAction.STARTED, TriggerAction.DUPLICATE)
    assert second.execution_name == first.execution_name
    assert world.history() == [S.RECEIVED]
    assert (world.sfn.attempts, len(world.sfn.executions)) == (2, 1)
    assert world.publisher.kinds == ["ModelReceived"]


def test_identical_bytes_uploaded_again_under_the_key_are_a_duplicate(world: World) -> None:
    # GIVEN a handled upload / WHEN the same bytes are put again (same ETag, a new object version)
    world.trigger.handle(upload_of(version_id="v1"))
    again = world.trigger.handle(upload_of(version_id="v2"))
    # THEN no second execution is started
    assert again.outcome is TriggerAction.DUPLICATE and len(world.sfn.executions) == 1


def test_a_new_upload_of_a_registered_key_starts_its_own_execution(world: World) -> None:
    # GIVEN a registered upload
    world.trigger.handle(upload_of(etag="etag-1"))
    # WHEN other bytes are uploaded under the same key
    again = world.trigger.handle(upload_of(etag="etag-2"))
    # THEN the version keeps its first upload, and a separate execution decides about the new one
    assert again.outcome is TriggerAction.STARTED
    assert len(world.sfn.executions) == 2
    record = world.registry.get("fraud", "1")
    assert record.etag == "etag-1"
    assert record.execution_arn and record.execution_arn.endswith(upload_of(etag="etag-1").execution_name())
    assert world.history() == [S.RECEIVED]


def test_an_invalid_name_is_rejected_announced_and_notified(world: World) -> None:
    # GIVEN an upload whose file name breaks the naming contract
    upload = upload_of("incoming/Fraud Model v2.tar.gz")
    # WHEN the trigger handles it
    result = world.trigger.handle(upload)
    # THEN it is registered REJECTED under its stem and the "unnamed" version, with NAME_INVALID
    assert (result.outcome, result.name, result.version) == (TriggerAction.REJECTED, "Fraud Model v2", "unnamed")
    record = world.registry.get("Fraud Model v2", UNNAMED_VERSION)
    assert record.status is S.REJECTED
    assert record.reason.startswith("NAME_INVALID: ") and "<model_name>_<model_version>.tar.gz" in record.reason
    assert [(f.code, f.path) for f in record.findings] == [(Code.NAME_INVALID, "Fraud Model v2.tar.gz")]
    # AND no deployment started; the rejection was published and sent to Slack
    assert world.sfn.attempts == 0
    assert world.publisher.kinds == ["ModelRejected"]
    assert world.publisher.events[0][1].finding_codes == ["NAME_INVALID"]
    assert [(r.name, r.status) for r in world.notifier.outcomes] == [("Fraud Model v2", S.REJECTED)]


def test_an_invalid_name_delivered_twice_is_notified_once(world: World) -> None:
    upload = upload_of("model.tar.gz")
    assert world.trigger.handle(upload).outcome is TriggerAction.REJECTED
    assert world.trigger.handle(upload).outcome is TriggerAction.DUPLICATE
    assert len(world.notifier.outcomes) == 1 and world.publisher.kinds == ["ModelRejected"]


def test_an_upload_to_another_bucket_is_ignored(world: World) -> None:
    result = world.trigger.handle(upload_of(bucket="someone-elses-bucket"))
    assert result.outcome is TriggerAction.IGNORED
    assert world.registry.find("fraud", "1") is None
    assert (world.sfn.attempts, world.publisher.events, world.notifier.outcomes) == (0, [], [])


def test_the_upload_event_pattern_selects_tarballs_in_the_staging_bucket() -> None:
    assert upload_event_pattern(BUCKET) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [{"suffix": ".tar.gz"}]}},
    }


# -- UploadedObject ------------------------------------------------------------------------------
def s3_event_detail(key: str = "fraud_1.tar.gz", etag: str = "etag-1", version: str | None = "v1") -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 5224, "etag": etag, "sequencer": "0062E99A88DC407460"}
    if version is not None:
        obj["version-id"] = version
    return {"version": "0", "bucket": {"name": BUCKET}, "object": obj, "requester": "123456789012"}


def test_an_uploaded_object_is_read_from_the_s3_event_detail() -> None:
    upload = UploadedObject.from_event_detail(s3_event_detail(etag='"abc"'))
    assert (upload.bucket, upload.key, upload.etag, upload.version_id) == (BUCKET, "fraud_1.tar.gz", "abc", "v1")
    assert (upload.size, upload.requester) == (5224, "123456789012")
    assert UploadedObject.from_event_detail(s3_event_detail(version="null")).version_id is None
    assert UploadedObject.from_event_detail(s3_event_detail(version=None)).version_id is None


def test_the_execution_name_is_stable_for_one_object() -> None:
    # GIVEN the same upload delivered twice (once with a quoted ETag)
    once = UploadedObject.from_event_detail(s3_event_detail(etag="abc"))
    twice = UploadedObject.from_event_detail(s3_event_detail(etag='"abc"'))
    # THEN both deliveries map to one execution name, which starts with the file stem
    assert once.execution_name() == twice.execution_name() == once.execution_name()
    assert once.execution_name().startswith("fraud_1-")


def test_the_execution_name_differs_by_etag_and_by_object() -> None:
    names = {
        upload_of(etag="etag-1").execution_name(),
        upload_of(etag="etag-2").execution_name(),
        upload_of("a/fraud_1.tar.gz").execution_name(),
        upload_of(bucket="other").execution_name(),
    }
    assert len(names) == 4


@pytest.mark.parametrize(
    "key",
    [
        "fraud_1.tar.gz",
        "a" * 63 + "_123456.123456.123456.tar.gz",
        "deep/prefix/" + "x" * 300 + ".tar.gz",
        "incoming/Fraud Model (v2) ünïcödé.tar.gz",
        ".tar.gz",
    ],
)
def test_the_execution_name_fits_step_functions(key: str) -> None:
    name = upload_of(key).execution_name()
    assert len(name) <= 80 and NAME_CHARS.match(name), name


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1, max_size=400), etag=st.text(max_size=40))
def test_any_key_gives_a_valid_execution_name(key: str, etag: str) -> None:
    name = upload_of(key, etag=etag).execution_name()
    assert len(name) <= 80 and NAME_CHARS.match(name), name


# -- LifecycleTracker ----------------------------------------------------------------------------
def test_the_tracker_publishes_an_event_for_every_move_including_repeats(world: World) -> None:
    # GIVEN a registered version
    world.trigger.handle(upload_of())
    # WHEN it moves, and the move is repeated (a retried step)
    world.tracker.move("fraud", "1", S.VALIDATING, "pipeline/validate", "validating")
    world.tracker.move("fraud", "1", S.VALIDATING, "pipeline/validate", "validating")
    # THEN each call published the status' event; only the first names the status it left
    assert world.publisher.kinds == ["ModelReceived", "ValidationStarted", "ValidationStarted"]
    first, repeat = world.publisher.events[1][1], world.publisher.events[2][1]
    assert (first.status, first.previous_status, first.revision, first.actor) == (
        S.VALIDATING,
        S.RECEIVED,
        2,
        "pipeline/validate",
    )
    assert (repeat.status, repeat.previous_status, repeat.revision) == (S.VALIDATING, None, 2)
    assert first.target_model == "fraud_1.tar.gz"
    assert world.notifier.outcomes == []


def test_the_tracker_notifies_slack_only_on_the_first_terminal_move(world: World) -> None:
    # GIVEN a version being validated
    world.trigger.handle(upload_of())
    world.tracker.move("fraud", "1", S.VALIDATING, "pipeline/validate")
    # WHEN it is rejected, and the rejection is repeated
    world.tracker.move("fraud", "1", S.REJECTED, "pipeline/validate", "2 error(s)")
    world.tracker.move("fraud", "1", S.REJECTED, "pipeline/validate", "2 error(s)")
    # THEN both moves are announced, but Slack hears of it once
    assert world.publisher.kinds[-2:] == ["ModelRejected", "ModelRejected"]
    assert [(r.status, r.reason) for r in world.notifier.outcomes] == [(S.REJECTED, "2 error(s)")]


def test_the_tracker_announces_nothing_for_a_refused_move(world: World) -> None:
    world.trigger.handle(upload_of())
    with pytest.raises(TransitionRefused):
        world.tracker.move("fraud", "1", S.STAGED, "pipeline/warm-staging")
    assert world.publisher.kinds == ["ModelReceived"] and world.notifier.outcomes == []


# -- RecordOutcome --------------------------------------------------------------------------------
def awaiting_approval(world: World) -> str:
    """A version waiting for approval; returns the execution that owns it."""
    upload = upload_of()
    world.trigger.handle(upload)
    for status in (S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL):
        world.tracker.move("fraud", "1", status, "pipeline/test")
    return world.starter.execution_arn(upload.execution_name())


def record_outcome(world: World, execution: str, error: str, cause: str = "") -> str:
    outcome = RecordOutcomeInput(
        name="fraud", version="1", execution=execution, error=StageError(Error=error, Cause=cause)
    )
    return world.outcome.run(outcome).status


def test_an_approval_timeout_expires_the_version(world: World) -> None:
    # GIVEN a version waiting for approval
    execution = awaiting_approval(world)
    # WHEN the approval task times out
    status = record_outcome(world, execution, "States.Timeout")
    # THEN it is EXPIRED, announced and notified
    record = world.registry.get("fraud", "1")
    assert status == "EXPIRED" and record.status is S.EXPIRED
    assert "approval timeout" in record.reason
    assert world.publisher.kinds[-1] == "ApprovalExpired"
    assert [r.status for r in world.notifier.outcomes] == [S.EXPIRED]


def test_a_declined_approval_declines_the_version_with_its_cause(world: World) -> None:
    execution = awaiting_approval(world)
    status = record_outcome(world, execution, "ApprovalDeclined", "declined by <@U123> in Slack")
    record = world.registry.get("fraud", "1")
    assert status == "DECLINED" and (record.status, record.reason) == (S.DECLINED, "declined by <@U123> in Slack")
    assert world.publisher.kinds[-1] == "ModelDeclined"


def test_a_lambda_error_fails_the_version_with_its_error_message(world: World) -> None:
    # GIVEN a version warming on staging
    upload = upload_of()
    world.trigger.handle(upload)
    for status in (S.VALIDATING, S.VALIDATED, S.WARMING):
        world.tracker.move("fraud", "1", status, "pipeline/test")
    cause = json.dumps(
        {
            "errorMessage": "1 smoke-test problem(s): case: OUT differs",
            "errorType": "SmokeTestFailed",
            "requestId": "c0ffee",
            "stackTrace": ['  File "/var/task/functions/warm_staging.py", line 20, in handler\n'],
        }
    )
    # WHEN the warm stage's Lambda error is caught
    status = record_outcome(world, world.starter.execution_arn(upload.execution_name()), "SmokeTestFailed", cause)
    # THEN the version FAILED with the error's type and message, not the stack trace
    record = world.registry.get("fraud", "1")
    assert status == "FAILED" and record.status is S.FAILED
    assert record.reason == "SmokeTestFailed: 1 smoke-test problem(s): case: OUT differs"
    assert world.publisher.kinds[-1] == "DeploymentFailed"
    assert [r.reason for r in world.notifier.outcomes] == [record.reason]


def test_an_already_ended_version_is_left_unchanged(world: World) -> None:
    # GIVEN a rejected version
    upload = upload_of()
    world.trigger.handle(upload)
    world.tracker.move("fraud", "1", S.VALIDATING, "pipeline/validate")
    world.tracker.move("fraud", "1", S.REJECTED, "pipeline/validate", "2 error(s)")
    events, history = len(world.publisher.events), world.history()
    # WHEN a later error of its execution reaches RecordOutcome
    status = record_outcome(world, world.starter.execution_arn(upload.execution_name()), "States.TaskFailed", "boom")
    # THEN it stays REJECTED with its reason; nothing is written, published or notified again
    record = world.registry.get("fraud", "1")
    assert status == "REJECTED" and (record.status, record.reason) == (S.REJECTED, "2 error(s)")
    assert world.history() == history and len(world.publisher.events) == events
    assert len(world.notifier.outcomes) == 1


def test_an_execution_that_does_not_own_the_version_leaves_it_unchanged(world: World) -> None:
    # GIVEN a version waiting for approval, owned by the first upload's execution
    awaiting_approval(world)
    later = upload_of(etag="etag-2")
    world.trigger.handle(later)
    # WHEN the later upload's execution fails
    status = record_outcome(world, world.starter.execution_arn(later.execution_name()), "States.TaskFailed", "boom")
    # THEN the version still waits for approval
    assert status == "AWAITING_APPROVAL"
    assert world.registry.get("fraud", "1").status is S.AWAITING_APPROVAL
    assert world.history()[-1] is S.AWAITING_APPROVAL
    assert world.notifier.outcomes == []


def test_a_decision_error_outside_approval_fails_an_in_progress_version(world: World) -> None:
    # GIVEN a version still validating / WHEN an ApprovalDeclined error arrives / THEN it FAILED
    upload = upload_of()
    world.trigger.handle(upload)
    world.tracker.move("fraud", "1", S.VALIDATING, "pipeline/validate")
    assert record_outcome(world, world.starter.execution_arn(upload.execution_name()), "ApprovalDeclined") == "FAILED"


def test_a_stage_timeout_before_approval_fails_with_a_timeout_reason(world: World) -> None:
    # GIVEN a version warming on staging
    upload = upload_of()
    world.trigger.handle(upload)
    for status in (S.VALIDATING, S.VALIDATED, S.WARMING):
        world.tracker.move("fraud", "1", status, "pipeline/test")
    # WHEN the WarmStaging task times out (States.Timeout)
    status = record_outcome(world, world.starter.execution_arn(upload.execution_name()), "States.Timeout")
    # THEN it FAILED, and the reason says a stage timed out, not that an approval was missing
    record = world.registry.get("fraud", "1")
    assert status == "FAILED"
    assert "States.Timeout" in record.reason and "approval" not in record.reason


@pytest.mark.parametrize(
    ("error", "cause", "status", "reason"),
    [
        ("States.HeartbeatTimeout", "", S.EXPIRED, "no approval decision before the approval timeout"),
        ("ApprovalDeclined", "", S.DECLINED, "declined"),
        ("States.TaskFailed", "plain text cause ", S.FAILED, "States.TaskFailed: plain text cause"),
        ("States.Runtime", "", S.FAILED, "States.Runtime"),
        ("Wrapped", json.dumps({"Error": "X", "Cause": "inner cause"}), S.FAILED, "Wrapped: inner cause"),
        ("Listy", json.dumps(["not", "a", "dict"]), S.FAILED, 'Listy: ["not", "a", "dict"]'),
    ],
)
def test_ending_maps_errors_to_statuses_and_reasons(error: str, cause: str, status: Status, reason: str) -> None:
    assert ending(StageError(Error=error, Cause=cause)) == (status, reason)


def test_ending_bounds_the_reason() -> None:
    status, reason = ending(StageError(Error="Big", Cause=json.dumps({"errorMessage": "x" * 5000})))
    assert status is S.FAILED and len(reason) == 1000 and reason.startswith("Big: xxx")


# -- Validate -------------------------------------------------------------------------------
def test_a_valid_tarball_is_validated_with_its_evidence_recorded(world: World) -> None:
    # GIVEN an uploaded valid tarball with a warning (a second version folder)
    data = tarball(**{"fraud/2/model.py": PYTHON_MODEL})
    upload = world.upload(data)
    # WHEN the Validate stage runs on the execution's input
    result = world.validate.run(world.deployment(upload))
    # THEN it is VALIDATED, with hash, size, findings, models and timing recorded
    assert result.outcome is ValidationVerdict.VALIDATED
    assert result.served is not None and result.served.name == "fraud_1.tar.gz" and result.served.backend == "python"
    assert result.validation_ms == 12.5
    record = world.registry.get("fraud", "1")
    assert record.status is S.VALIDATED and record.reason == "valid (1 warning(s))"
    assert (record.sha256, record.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert [f.code for f in record.findings] == [Code.MULTIPLE_VERSIONS]
    assert [(m.name, m.served) for m in record.models] == [("fraud_1.tar.gz", True)]
    assert record.metrics == {"validation_ms": 12.5}
    assert world.history() == [S.RECEIVED, S.VALIDATING, S.VALIDATED]
    assert world.publisher.kinds == ["ModelReceived", "ValidationStarted", "ModelValidated"]
    assert world.notifier.outcomes == []


def test_an_invalid_tarball_is_rejected_with_its_codes_in_the_reason(world: World) -> None:
    # GIVEN an uploaded tarball with a broken config and a wrong model_version.txt
    upload = world.upload(invalid_tarball())
    # WHEN it is validated
    result = world.validate.run(world.deployment(upload))
    # THEN it is REJECTED, the reason lists the error codes, and Slack hears of it
    assert result.outcome is ValidationVerdict.REJECTED and result.served is None
    record = world.registry.get("fraud", "1")
    assert record.status is S.REJECTED
    assert record.reason.startswith("2 error(s): CONFIG_SYNTAX, VERSION_FILE_MISMATCH; first: ")
    assert {f.code for f in record.findings} == {Code.CONFIG_SYNTAX, Code.VERSION_FILE_MISMATCH}
    assert record.sha256 == hashlib.sha256(invalid_tarball()).hexdigest()
    assert world.history() == [S.RECEIVED, S.VALIDATING, S.REJECTED]
    assert world.publisher.events[-1][1].finding_codes == ["CONFIG_SYNTAX", "VERSION_FILE_MISMATCH"]
    assert [r.status for r in world.notifier.outcomes] == [S.REJECTED]


def validated(world: World, data: bytes | None = None) -> UploadedObject:
    upload = world.upload(data or tarball(), version_id="v1")
    world.validate.run(world.deployment(upload))
    return upload


def test_a_later_upload_of_identical_bytes_is_a_duplicate_and_writes_nothing(world: World) -> None:
    # GIVEN a validated version
    validated(world)
    before, events = world.registry.get("fraud", "1", with_history=True), len(world.publisher.events)
    # WHEN the same bytes are uploaded again (a new object version, a multipart ETag)
    again = world.store.put(BUCKET, "fraud_1.tar.gz", tarball(), "v2").model_copy(update={"etag": "abc-2"})
    world.trigger.handle(again)
    result = world.validate.run(world.deployment(again))
    # THEN it is a duplicate: the record, history and events are as they were
    assert result.outcome is ValidationVerdict.DUPLICATE
    after = world.registry.get("fraud", "1", with_history=True)
    assert after == before and after.history == before.history
    assert len(world.publisher.events) == events
    assert world.store.restored == [] and world.notifier.refused == []


def test_identical_bytes_are_recognised_before_the_first_upload_was_validated(world: World) -> None:
    # GIVEN a version registered but not validated yet (no sha256 recorded)
    world.upload(tarball(), version_id="v1")
    again = world.store.put(BUCKET, "copy/fraud_1.tar.gz", tarball(), "w1")
    world.trigger.handle(again)
    # WHEN the copy's execution validates first / THEN the registered object is hashed to compare
    assert world.validate.run(world.deployment(again)).outcome is ValidationVerdict.DUPLICATE
    assert world.history() == [S.RECEIVED]


def test_other_bytes_under_a_registered_version_are_refused_and_the_original_restored(world: World) -> None:
    # GIVEN a validated version, then other bytes uploaded over its key (now the current version)
    validated(world)
    other = tarball(**{"fraud/1/extra.txt": b"changed"})
    refused_upload = world.store.put(BUCKET, "fraud_1.tar.gz", other, "v2")
    world.trigger.handle(refused_upload)
    # WHEN the later upload's execution validates it
    result = world.validate.run(world.deployment(refused_upload))
    # THEN it is refused: the status is unchanged, the refusal is recorded, and the original restored
    assert result.outcome is ValidationVerdict.REFUSED
    record = world.registry.get("fraud", "1")
    assert record.status is S.VALIDATED and record.sha256 == hashlib.sha256(tarball()).hexdigest()
    assert [(r.etag, r.sha256) for r in record.rejected_uploads] == [
        (refused_upload.etag, hashlib.sha256(other).hexdigest())
    ]
    reason = record.rejected_uploads[0].reason
    assert reason.startswith("ARTIFACT_IMMUTABLE: ") and "restored" in reason
    assert world.store.restored == [(BUCKET, "fraud_1.tar.gz", "v1")]
    assert world.store.sha256(BUCKET, "fraud_1.tar.gz") == hashlib.sha256(tarball()).hexdigest()
    assert world.history() == [S.RECEIVED, S.VALIDATING, S.VALIDATED, S.VALIDATED]
    assert world.publisher.kinds[-1] == UPLOAD_REFUSED
    assert [(r.version, why) for r, why in world.notifier.refused] == [("1", reason)]
    assert world.notifier.outcomes == []


def test_a_refused_upload_that_is_no_longer_current_is_not_restored_over(world: World) -> None:
    # GIVEN other bytes uploaded as v2, then the key overwritten again as v3 before validation
    validated(world)
    refused_upload = world.store.put(BUCKET, "fraud_1.tar.gz", tarball(**{"fraud/1/x": b"2"}), "v2")
    world.trigger.handle(refused_upload)
    world.store.put(BUCKET, "fraud_1.tar.gz", tarball(**{"fraud/1/x": b"3"}), "v3")
    # WHEN v2's execution validates / THEN it is refused, but v3 (its own execution's) is left alone
    assert world.validate.run(world.deployment(refused_upload)).outcome is ValidationVerdict.REFUSED
    assert world.store.restored == []
    assert world.registry.get("fraud", "1").status is S.VALIDATED


def test_other_bytes_under_another_key_are_refused_without_a_restore(world: World) -> None:
    validated(world)
    elsewhere = world.store.put(BUCKET, "team-b/fraud_1.tar.gz", tarball(**{"fraud/1/x": b"b"}), "w1")
    world.trigger.handle(elsewhere)
    assert world.validate.run(world.deployment(elsewhere)).outcome is ValidationVerdict.REFUSED
    assert world.store.restored == []
    assert len(world.registry.get("fraud", "1").rejected_uploads) == 1


def test_a_failed_restore_is_explained_in_the_refusal(world: World) -> None:
    validated(world)
    world.store.fail_restore = True
    refused_upload = world.store.put(BUCKET, "fraud_1.tar.gz", tarball(**{"fraud/1/x": b"2"}), "v2")
    world.trigger.handle(refused_upload)
    assert world.validate.run(world.deployment(refused_upload)).outcome is ValidationVerdict.REFUSED
    reason = world.registry.get("fraud", "1").rejected_uploads[0].reason
    assert "restoring the registered bytes failed" in reason and "delete object version v2" in reason


def test_a_refusal_delivered_twice_is_recorded_once(world: World) -> None:
    validated(world)
    refused_upload = world.store.put(BUCKET, "fraud_1.tar.gz", tarball(**{"fraud/1/x": b"2"}), "v2")
    world.trigger.handle(refused_upload)
    deployment = world.deployment(refused_upload)
    world.validate.run(deployment)
    world.store.current[BUCKET, "fraud_1.tar.gz"] = "v2"  # as if the restore were undone
    world.validate.run(deployment)
    assert len(world.registry.get("fraud", "1").rejected_uploads) == 1


def test_a_retried_validation_after_a_lost_event_is_idempotent() -> None:
    # GIVEN an upload whose ModelValidated event EventBridge refuses once, after the registry write
    world = World(FakePublisher(fail_on={"ModelValidated"}))
    upload = world.upload(tarball())
    deployment = world.deployment(upload)
    with pytest.raises(EventPublishFailed):
        world.validate.run(deployment)
    assert world.registry.get("fraud", "1").status is S.VALIDATED
    # WHEN Step Functions retries the Validate task (Retry on EventPublishFailed)
    result = world.validate.run(deployment)
    # THEN it is validated again without moving backwards, and the lost event is published
    assert result.outcome is ValidationVerdict.VALIDATED
    assert world.registry.get("fraud", "1").status is S.VALIDATED
    assert "ModelValidated" in world.publisher.kinds
