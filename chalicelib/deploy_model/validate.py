"""Validate: stream the uploaded object through the validator once and record what it found.

An upload whose ETag is not the registered one is a later upload under a registered name and
version: identical bytes are a no-op; other bytes are refused (artifacts are immutable) and the
registered bytes are made current again, so the endpoint can never load the refused ones.
A version validated before (a redeploy) must hash to the sha256 it recorded, or it ends FAILED
with ArtifactChanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aws_lambda_powertools import Logger

from chalicelib.adapters.artifact_store import ArtifactMissing, ArtifactStore
from chalicelib.deploy_model.stage_io import DeploymentInput, UploadedObject, ValidationResult, ValidationVerdict
from chalicelib.domain.errors import ArtifactChanged
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.validation.findings import Code
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.triton_release import DEFAULT_TRITON, TritonVersion
from chalicelib.domain.validation.validator import inspect_tarball, report_of
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/validate"


class Validate:
    def __init__(
        self,
        tracker: LifecycleTracker,
        store: ArtifactStore,
        limits: ArchiveLimits | None = None,
        timer: Callable[[], float] = time.perf_counter,
        triton_version: TritonVersion = DEFAULT_TRITON,
    ) -> None:
        self._tracker = tracker
        self._store = store
        self._limits = limits or ArchiveLimits()
        self._timer = timer
        self._triton_version = triton_version  # the endpoints' (Settings.deployed_triton)

    def run(self, deployment: DeploymentInput) -> ValidationResult:
        name, version, upload = deployment.name, deployment.version, deployment.upload
        record = self._tracker.registry.get(name, version)
        if (record.key, record.etag) != (upload.key, upload.etag):
            return self._later_upload(record, upload)

        if record.status is Status.RECEIVED:
            self._tracker.move(name, version, Status.VALIDATING, ACTOR, "validating the Triton repository")
        # else a retried step (e.g. its event was refused): validate again and repeat the final
        # move, which is then a no-op that publishes the event once more.
        started = self._timer()
        inspection = inspect_tarball(
            self._store.open(upload.bucket, upload.key, upload.version_id),
            upload.key,
            self._limits,
            triton_version=self._triton_version,
        )
        report = report_of(inspection)
        # A redeploy reads the artifact again: it must be the bytes this version was validated with
        # (no sha256: the stream was not read to its end, and the report's findings say why).
        if record.sha256 and report.sha256 and report.sha256 != record.sha256:
            raise ArtifactChanged(
                f"s3://{upload.bucket}/{upload.key} (object version {upload.version_id}) has sha256 "
                f"{report.sha256[:12]}, but {name} {version} was validated with sha256 {record.sha256[:12]}; "
                "upload it again as a new version"
            )
        elapsed_ms = round((self._timer() - started) * 1000, 1)

        def evidence(current: ModelVersion) -> dict[str, object]:
            return {
                "findings": report.findings,
                "sha256": report.sha256,
                "size": report.size,
                "models": report.models,
                "test_cases": len(inspection.test_cases),
                "rollout_policy": inspection.rollout_overrides,
                "metrics": {**current.metrics, "validation_ms": elapsed_ms},
            }

        if not report.valid:
            self._tracker.move(name, version, Status.REJECTED, ACTOR, rejection_reason(report), evidence)
            return ValidationResult(outcome=ValidationVerdict.REJECTED, validation_ms=elapsed_ms)
        warnings = len(report.warnings)
        self._tracker.move(name, version, Status.VALIDATED, ACTOR, f"valid ({warnings} warning(s))", evidence)
        return ValidationResult(
            outcome=ValidationVerdict.VALIDATED,
            served=report.served_model,
            test_cases=inspection.test_cases,
            validation_ms=elapsed_ms,
        )

    def _later_upload(self, record: ModelVersion, upload: UploadedObject) -> ValidationResult:
        uploaded = self._store.sha256(upload.bucket, upload.key, upload.version_id)
        registered = record.sha256 or self._store.sha256(record.bucket, record.key, record.object_version)
        if uploaded == registered:
            logger.info("identical re-upload ignored", extra={"model": record.name, "version": record.version})
            return ValidationResult(outcome=ValidationVerdict.DUPLICATE)
        reason = (
            f"{Code.ARTIFACT_IMMUTABLE.value}: s3://{upload.bucket}/{upload.key} (sha256 {uploaded[:12]}) reuses "
            f"{record.name} version {record.version}, registered with other bytes (sha256 {registered[:12]}, "
            f"status {record.status.value}); artifacts are immutable, so upload it as a new version"
        )
        if (
            upload.key == record.key
            and record.object_version
            and self._store.current_version(upload.bucket, upload.key) == upload.version_id
        ):
            # The endpoint loads whatever is current under the key: put the registered bytes back.
            try:
                self._store.restore(record.bucket, record.key, record.object_version)
                reason += "; the registered bytes were restored under the key"
            except (ArtifactMissing, self._store.errors) as exc:
                logger.error("could not restore the registered bytes", extra={"error": str(exc)})
                reason += (
                    f"; restoring the registered bytes failed ({exc}): delete object version {upload.version_id} "
                    "of the key so that the endpoint cannot load the refused bytes"
                )
        self._tracker.refuse_upload(record, upload.etag, uploaded, reason, ACTOR)
        return ValidationResult(outcome=ValidationVerdict.REFUSED)


def rejection_reason(report: ValidationReport) -> str:
    errors = report.errors
    codes = sorted({f.code.value for f in errors})
    first = errors[0]
    return f"{len(errors)} error(s): {', '.join(codes)}; first: {first.path}: {first.message}"[:1000]
