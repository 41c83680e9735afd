"""Redeploy: a fresh DeployModel for a version that ended FAILED or EXPIRED for a reason outside
the model (an execution stopped or lost, the infrastructure, an approval nobody answered in
time), on the same immutable artifact — the object version the registry pinned — with the
version back at RECEIVED, owned by the new execution, and every step in its history again.

Refused, with the reason, where a redeploy cannot change the ending: REJECTED (the validator's
findings), DECLINED (an approver's decision), a model that failed on its own account (Triton
would not load it, or it failed its smoke tests), and an artifact whose pinned object version is
gone: those need a new version.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from chalicelib.adapters.artifact_store import ArtifactStore
from chalicelib.adapters.step_functions import DeploymentStarter
from chalicelib.deploy_model.stage_io import EXECUTION_NAME_LIMIT, DeploymentInput, UploadedObject
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.lifecycle import REDEPLOYABLE, Status
from chalicelib.stages.tracker import LifecycleTracker

# The errors (the first word of a FAILED reason) that a redeploy of the same bytes would meet again:
# the model's own doing, or bytes that are no longer the ones validated.
MODEL_FAULTS = frozenset({"ModelLoadFailed", "SmokeTestFailed", "NothingToServe", "ArtifactChanged"})


class RedeployStarted(BaseModel):
    name: str
    version: str
    status: Status
    execution: str


class Redeploy:
    def __init__(self, tracker: LifecycleTracker, starter: DeploymentStarter, artifacts: ArtifactStore) -> None:
        self._tracker = tracker
        self._starter = starter
        self._artifacts = artifacts

    def redeploy(self, name: str, version: str, actor: str) -> RedeployStarted:
        record = self._tracker.registry.find(name, version)
        if record is None:
            raise NotFound(f"no version {version} of model {name} in the registry")
        if record.status not in REDEPLOYABLE:
            raise Conflict(
                f"{name} {version} is {record.status.value}: a redeploy starts again only a version that ended "
                f"FAILED or EXPIRED{_why_not(record.status, record.reason)}"
            )
        if _error_of(record.reason) in MODEL_FAULTS:
            raise Conflict(
                f"{name} {version} failed on its own account ({record.reason[:300]}); a redeploy would fail the "
                "same way: fix the model and upload it as a new version"
            )
        # Checked before the version moves: a new execution on bytes that are gone could only fail.
        # (Nothing pinned, a bucket without versions: Validate compares the bytes with the sha256.)
        if record.object_version and not self._artifacts.exists(record.bucket, record.key, record.object_version):
            raise Conflict(
                f"{name} {version} cannot be redeployed: its artifact s3://{record.bucket}/{record.key} "
                f"(object version {record.object_version}) no longer exists; upload it again as a new version"
            )
        upload = UploadedObject(
            bucket=record.bucket,
            key=record.key,
            etag=record.etag,
            version_id=record.object_version,
            size=record.size,
            requester=record.uploader,
        )
        # a name of its own: Step Functions keeps a name for 90 days, and the revision is unique
        suffix = f"-r{record.revision}"
        execution_name = upload.execution_name()[: EXECUTION_NAME_LIMIT - len(suffix)] + suffix
        execution = self._starter.execution_arn(execution_name)
        reason = f"redeploy of the same artifact requested by {actor} (it was {record.status.value}: {record.reason})"
        self._tracker.move(
            name,
            version,
            Status.RECEIVED,
            actor,
            reason[:1000],
            lambda _current: {"execution_arn": execution, "approval_id": None, "promotion": None},
        )
        self._starter.start(execution_name, DeploymentInput(name=name, version=version, upload=upload))
        return RedeployStarted(name=name, version=version, status=Status.RECEIVED, execution=execution)


def _error_of(reason: str) -> str:
    """The error a FAILED reason names: its first word, or the first after a stage's words
    ("promotion failed, production unchanged: ModelLoadFailed: ...")."""
    head, _, rest = reason.partition(": ")
    return head if re.fullmatch(r"\w+", head) else rest.partition(":")[0]


def _why_not(status: Status, reason: str) -> str:
    if status is Status.REJECTED:
        return f"; it was rejected by the validator ({reason[:300]}): fix the model and upload a new version"
    if status is Status.DECLINED:
        return f"; an approver declined it ({reason[:300]}): upload a new version to ask again"
    return ""
