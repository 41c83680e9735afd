"""An upload to the staging bucket: register the version RECEIVED and start its deployment.

Idempotent three times over: Powertools idempotency on the event (see composition), a
conditional registry write, and an execution name derived from key and ETag.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from chalicelib.adapters.step_functions import DeploymentStarter
from chalicelib.deploy_model.stage_io import DeploymentInput, UploadedObject
from chalicelib.domain.errors import VersionExists
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.naming import ArtifactName, InvalidArtifactName
from chalicelib.domain.records import ModelVersion, iso, utc_now
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "s3-upload"
# Uploads whose key breaks the naming contract are kept under their file stem and this version.
UNNAMED_VERSION = "unnamed"


class TriggerAction(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IGNORED = "ignored"


class UploadResult(BaseModel):
    outcome: TriggerAction
    name: str | None = None
    version: str | None = None
    execution_name: str | None = None


class UploadTrigger:
    def __init__(
        self,
        tracker: LifecycleTracker,
        starter: DeploymentStarter,
        staging_bucket: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._tracker = tracker
        self._starter = starter
        self._bucket = staging_bucket
        self._clock = clock

    def knows(self, key: str, etag: str) -> bool:
        """Whether the registry heard of this upload: its version registered from these bytes, or
        the bytes refused under it (a key outside the naming contract: its stem recorded)."""
        try:
            artifact = ArtifactName.parse(key)
        except InvalidArtifactName:
            return self._tracker.registry.find(_stem(key), UNNAMED_VERSION) is not None
        record = self._tracker.registry.find(artifact.name, artifact.version)
        if record is None:
            return False
        return record.etag == etag or any(refused.etag == etag for refused in record.rejected_uploads)

    def handle(self, upload: UploadedObject, actor: str = ACTOR) -> UploadResult:
        """``actor``: who registers it (the sweep, for an upload whose event never came)."""
        if upload.bucket != self._bucket:
            logger.warning("upload outside the staging bucket ignored", extra={"bucket": upload.bucket})
            return UploadResult(outcome=TriggerAction.IGNORED)
        try:
            artifact = ArtifactName.parse(upload.key)
        except InvalidArtifactName as exc:
            return self._reject_name(upload, str(exc), actor)
        execution_name = upload.execution_name()
        record = self._record(upload, artifact.name, artifact.version, Status.RECEIVED)
        record.execution_arn = self._starter.execution_arn(execution_name)
        try:
            self._tracker.register(record, actor, f"uploaded to s3://{upload.bucket}/{upload.key}")
        except VersionExists as exists:
            existing = exists.existing
            logger.info("version already registered", extra={"status": existing.status, "etag": upload.etag})
            if (existing.key, existing.etag) == (upload.key, upload.etag) and not (
                existing.status is Status.RECEIVED and existing.execution_arn == record.execution_arn
            ):
                # The same bytes again (a redelivered event, or the same file pushed again) once
                # its deployment is under way, over or redeployed: a true no-op. (Step Functions
                # would refuse the name for 90 days; a local stack restarted would not.)
                return UploadResult(outcome=TriggerAction.DUPLICATE, name=artifact.name, version=artifact.version)
            # else a new upload of the key: its own execution tells them apart by the bytes
        started = self._starter.start(
            execution_name, DeploymentInput(name=artifact.name, version=artifact.version, upload=upload)
        )
        return UploadResult(
            outcome=TriggerAction.STARTED if started else TriggerAction.DUPLICATE,
            name=artifact.name,
            version=artifact.version,
            execution_name=execution_name,
        )

    def _reject_name(self, upload: UploadedObject, message: str, actor: str) -> UploadResult:
        filename, stem = upload.key.rsplit("/", 1)[-1], _stem(upload.key)
        record = self._record(upload, stem, UNNAMED_VERSION, Status.REJECTED)
        record.findings = [Finding.of(Code.NAME_INVALID, filename, message)]
        record.reason = f"{Code.NAME_INVALID.value}: {message}"
        try:
            self._tracker.register(record, actor)
        except VersionExists:
            return UploadResult(outcome=TriggerAction.DUPLICATE, name=stem, version=UNNAMED_VERSION)
        return UploadResult(outcome=TriggerAction.REJECTED, name=stem, version=UNNAMED_VERSION)

    def _record(self, upload: UploadedObject, name: str, version: str, status: Status) -> ModelVersion:
        now = iso(self._clock())
        return ModelVersion(
            name=name,
            version=version,
            status=status,
            bucket=upload.bucket,
            key=upload.key,
            etag=upload.etag,
            object_version=upload.version_id,
            size=upload.size,
            uploaded_at=now,
            uploader=upload.requester,
            updated_at=now,
        )


def _stem(key: str) -> str:
    """The name an upload outside the naming contract is recorded under."""
    filename = key.rsplit("/", 1)[-1]
    return filename.removesuffix(".tar.gz")[:200] or filename[:200]


def upload_event_pattern(staging_bucket: str) -> dict[str, object]:
    """The EventBridge pattern of uploads that start a deployment (S3 EventBridge notifications)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [staging_bucket]}, "object": {"key": [{"suffix": ".tar.gz"}]}},
    }
