"""In-memory stand-ins for EventBridge, Slack, S3 and Step Functions' task callbacks, shared by the
unit tests of the pipeline, the approval gate and the promotion; plus the worlds those tests build
on the registry in memory (``FakeRegistry``; ``test_registry_contract.py`` holds it to the adapter's
behaviour on moto)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from chalicelib.adapters.artifact_store import ArtifactConflict, ArtifactMissing, CopyResult
from chalicelib.adapters.lifecycle_events import EventPublishFailed, LifecycleEvent
from chalicelib.approval.gate import ApprovalGate
from chalicelib.deploy_model.record_approval import RecordApproval, RecordApprovalInput
from chalicelib.deploy_model.request_approval import RequestApproval
from chalicelib.deploy_model.stage_io import ApprovalRequest, UploadedObject
from chalicelib.domain.approvals import ApprovalDecision, Decision, PendingApproval
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from chalicelib.stages.tracker import LifecycleTracker
from testkit.tarballs import pack, single_python_repo
from tests.unit.builders import a_version
from tests.unit.fake_registry import FakeRegistry

SLACK_CHANNEL = "C0APPROVALS"
STAGING_BUCKET = "staging"


class TickingClock:
    def __init__(self) -> None:
        self._next = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        now, self._next = self._next, self._next + timedelta(seconds=1)
        return now


class FakePublisher:
    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.events: list[tuple[str, LifecycleEvent]] = []
        self._fail_on = set(fail_on or ())  # detail-types refused once each

    def publish(self, event: LifecycleEvent, detail_type: str | None = None) -> None:
        kind = detail_type or event.detail_type
        if kind in self._fail_on:
            self._fail_on.discard(kind)
            raise EventPublishFailed(f"EventBridge refused {kind}")
        self.events.append((kind, event))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


class FakeNotifier:
    """SlackNotifier's interface; records every message instead of posting it."""

    def __init__(self) -> None:
        self.outcomes: list[ModelVersion] = []
        self.refused: list[tuple[ModelVersion, str]] = []
        self.requested: list[tuple[ModelVersion, str]] = []
        self.updates: list[tuple[ModelVersion, PendingApproval]] = []
        self.promoted: list[tuple[ModelVersion, str | None, bool]] = []  # (version, replaced, rolled back)

    def announce_outcome(self, record: ModelVersion) -> None:
        self.outcomes.append(record)

    def announce_refused_upload(self, record: ModelVersion, reason: str) -> None:
        self.refused.append((record, reason))

    def request_approval(self, record: ModelVersion, approval_id: str) -> tuple[str, str]:
        self.requested.append((record, approval_id))
        return SLACK_CHANNEL, f"1735787045.{len(self.requested):06d}"

    def update_approval(self, record: ModelVersion, approval: PendingApproval) -> None:
        self.updates.append((record, approval))

    def announce_promoted(self, record: ModelVersion, replaced: str | None, rolled_back: bool) -> None:
        self.promoted.append((record, replaced, rolled_back))


class StoreError(Exception):
    pass


class FakeArtifactStore:
    """Versioned buckets in memory, with ArtifactStore's interface."""

    errors = StoreError

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], bytes] = {}
        self.current: dict[tuple[str, str], str] = {}
        self.restored: list[tuple[str, str, str]] = []
        self.checked: list[tuple[str, str, str]] = []  # what exists() was asked
        self.copies: list[CopyResult] = []
        self.fail_restore = False

    def put(self, bucket: str, key: str, data: bytes, version_id: str) -> UploadedObject:
        self.objects[bucket, key, version_id] = data
        self.current[bucket, key] = version_id
        etag = hashlib.md5(data).hexdigest()  # S3's single-part ETag
        return UploadedObject(bucket=bucket, key=key, etag=etag, version_id=version_id, size=len(data))

    def _bytes(self, bucket: str, key: str, version_id: str | None) -> bytes:
        version = version_id or self.current.get((bucket, key))
        if version is None or (bucket, key, version) not in self.objects:
            raise ArtifactMissing(f"s3://{bucket}/{key} (version {version_id}) no longer exists")
        return self.objects[bucket, key, version]

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        return io.BytesIO(self._bytes(bucket, key, version_id))

    def sha256(self, bucket: str, key: str, version_id: str | None = None) -> str:
        return hashlib.sha256(self._bytes(bucket, key, version_id)).hexdigest()

    def exists(self, bucket: str, key: str, version_id: str) -> bool:
        self.checked.append((bucket, key, version_id))
        return (bucket, key, version_id) in self.objects

    def current_version(self, bucket: str, key: str) -> str | None:
        return self.current.get((bucket, key))

    def restore(self, bucket: str, key: str, version_id: str) -> None:
        if self.fail_restore:
            raise StoreError("AccessDenied: s3:PutObject")
        self.restored.append((bucket, key, version_id))
        self.put(bucket, key, self._bytes(bucket, key, version_id), f"{version_id}-restored")

    def copy_immutable(
        self, source_bucket: str, key: str, source_version_id: str | None, target_bucket: str, sha256: str
    ) -> CopyResult:
        """As ArtifactStore's: the same bytes already there are left alone, other bytes are refused."""
        existing = self.current.get((target_bucket, key))
        if existing is not None:
            if self.sha256(target_bucket, key) != sha256:
                raise ArtifactConflict(f"s3://{target_bucket}/{key} already holds other bytes")
            result = CopyResult(copied=False, version_id=existing, multipart=False)
        else:
            data = self._bytes(source_bucket, key, source_version_id)
            copied = self.put(target_bucket, key, data, f"copy-{len(self.copies) + 1}")
            result = CopyResult(copied=True, version_id=copied.version_id, multipart=False)
        self.copies.append(result)
        return result


class FakeTaskCallback:
    """TaskCallback's interface: records SendTaskSuccess/Failure; ``error`` is raised by the next call."""

    def __init__(self) -> None:
        self.succeeded: list[tuple[str, dict[str, Any]]] = []
        self.failed: list[tuple[str, str, dict[str, Any]]] = []
        self.error: Exception | None = None

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._raise_pending()
        self.succeeded.append((token, output))

    def fail(self, token: str, error: str, cause: dict[str, Any]) -> None:
        self._raise_pending()
        self.failed.append((token, error, cause))

    @property
    def calls(self) -> int:
        return len(self.succeeded) + len(self.failed)

    def _raise_pending(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error


# -- worlds ---------------------------------------------------------------------------------------
class Tracked:
    """The registry in memory and the tracker over the fake publisher and notifier."""

    def __init__(self, publisher: FakePublisher | None = None) -> None:
        self.registry = FakeRegistry(TickingClock())
        self.publisher = publisher or FakePublisher()
        self.notifier = FakeNotifier()
        self.tracker = LifecycleTracker(self.registry, self.registry, self.publisher, self.notifier)  # type: ignore[arg-type]

    def history(self, name: str = "fraud", version: str = "1") -> list[Status]:
        return [h.status for h in self.registry.history(name, version)]


def deploy_execution(name: str, version: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:mmedeploy-dev-deploy-model:{name}_{version}-e1"


class ApprovalWorld(Tracked):
    """Versions staged with real tarballs in the fake staging bucket, asked for approval through
    RequestApproval, and decided through the real ApprovalGate over a fake task callback."""

    def __init__(self) -> None:
        super().__init__()
        self.store = FakeArtifactStore()
        self.callback = FakeTaskCallback()
        self.reconciled: list[str] = []  # "name version" of each version the gate reconciled
        self.reconcile_to: tuple[Status, str] | None = None  # what reconciling moves it to
        self.gate = ApprovalGate(self.registry, self.registry, self.callback, self._reconcile)  # type: ignore[arg-type]
        self.request_approval = RequestApproval(self.tracker, self.notifier)  # type: ignore[arg-type]

    def _reconcile(self, record: ModelVersion) -> ModelVersion:
        """The sweep's check, as a stand-in: moves the version where ``reconcile_to`` says."""
        self.reconciled.append(f"{record.name} {record.version}")
        if self.reconcile_to is not None:
            status, reason = self.reconcile_to
            self.tracker.move(record.name, record.version, status, "pipeline/record-outcome", reason)
        return self.registry.get(record.name, record.version)

    def staged(self, version: str = "1", name: str = "fraud") -> ModelVersion:
        data = pack(single_python_repo(name=name, version=version))
        upload = self.store.put(STAGING_BUCKET, f"{name}_{version}.tar.gz", data, f"s{version}")
        self.tracker.register(
            a_version(
                name=name,
                version=version,
                status=Status.RECEIVED,
                bucket=upload.bucket,
                key=upload.key,
                etag=upload.etag,
                object_version=upload.version_id,
                size=upload.size,
                sha256=hashlib.sha256(data).hexdigest(),
                uploaded_at="2025-01-02T02:00:00.000Z",
                uploader="arn:aws:iam::123456789012:user/alice",
                updated_at="2025-01-02T02:00:00.000Z",
                execution_arn=deploy_execution(name, version),
                metrics={"cold_load_ms": 2345.6, "warm_p50_ms": 3.25, "smoke_tests": 0.0},
            ),
            "s3-upload",
        )
        for status in (Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED):
            self.tracker.move(name, version, status, "pipeline/test")
        return self.registry.get(name, version)

    def awaiting(self, version: str = "1", name: str = "fraud") -> str:
        """A staged version waiting for approval; returns the approval id its buttons carry."""
        self.staged(version, name)
        return self.ask_again(version, name)

    def ask_again(self, version: str = "1", name: str = "fraud") -> str:
        """RequestApproval (again, for a retried task): a new task token under a new approval id."""
        token = f"token-{name}-{version}-{len(self.notifier.requested) + 1}"
        return self.request_approval.run(ApprovalRequest(name=name, version=version, task_token=token))

    def record_approval(self, version: str = "1", name: str = "fraud") -> str:
        """RecordApproval with what the gate last handed SendTaskSuccess; returns the status."""
        (_, output) = self.callback.succeeded[-1]
        decision = ApprovalDecision.model_validate(output)
        approved = RecordApprovalInput(name=name, version=version, decision=decision)
        return RecordApproval(self.tracker).run(approved).status

    def approved(self, version: str = "1", name: str = "fraud", actor: str = "slack:U0ALICE") -> ModelVersion:
        """A version asked for approval, approved in Slack, and recorded APPROVED by its execution."""
        answer = self.gate.decide(self.awaiting(version, name), Decision.APPROVE, actor)
        assert answer.ok, answer.text
        self.record_approval(version, name)
        return self.registry.get(name, version)

    def snapshot(self, name: str = "fraud", version: str = "1") -> ModelVersion:
        """The record with its history, to show that something changed nothing."""
        return self.registry.get(name, version, with_history=True)

    def untouched(self, approval_id: str) -> tuple[Any, ...]:
        """Everything a decision could change: version 1's record and history, the approval, the callbacks."""
        record = self.snapshot()
        return record, record.history, self.registry.find_approval(approval_id), self.callback.calls
