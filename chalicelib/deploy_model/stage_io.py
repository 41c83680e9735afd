"""The DeployModel state machine's data: what each stage receives and returns (pydantic at the
boundary; the ASL in functions/deploy_model.asl.json places them with ResultPath)."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from chalicelib.domain.signature import ModelSummary
from chalicelib.domain.warmup import TestCase
from chalicelib.stages.stage_io import StageError

EXECUTION_NAME_LIMIT = 80


class UploadedObject(BaseModel):
    """One S3 "Object Created" event's object."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int | None = None
    requester: str | None = None

    @classmethod
    def from_event_detail(cls, detail: dict[str, Any]) -> UploadedObject:
        obj = detail["object"]
        version = obj.get("version-id")
        return cls(
            bucket=detail["bucket"]["name"],
            key=obj["key"],
            etag=str(obj.get("etag") or obj.get("eTag") or "").strip('"'),
            version_id=None if version in (None, "", "null") else str(version),
            size=obj.get("size"),
            requester=detail.get("requester"),
        )

    def execution_name(self) -> str:
        """Derived from key and ETag, so a redelivered event maps to the same execution (Step
        Functions answers ExecutionAlreadyExists) and a new upload of the key to a new one."""
        digest = hashlib.sha256(f"{self.bucket}/{self.key}\n{self.etag}".encode()).hexdigest()[:20]
        stem = re.sub(r"[^A-Za-z0-9_-]", "-", self.key.rsplit("/", 1)[-1].removesuffix(".tar.gz"))
        return f"{stem[: EXECUTION_NAME_LIMIT - len(digest) - 1]}-{digest}"


class DeploymentInput(BaseModel):
    """The execution's input, written by the upload trigger."""

    name: str
    version: str
    upload: UploadedObject


class ValidationVerdict(StrEnum):
    VALIDATED = "validated"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # the same bytes uploaded again: nothing to do
    REFUSED = "refused"  # other bytes under a registered name+version: refused, the original kept


class ValidationResult(BaseModel):
    outcome: ValidationVerdict
    served: ModelSummary | None = None
    test_cases: list[TestCase] = []
    validation_ms: float | None = None


class WarmInput(DeploymentInput):
    validation: ValidationResult


class ApprovalRequest(BaseModel):
    name: str
    version: str
    task_token: str


class RecordOutcomeInput(BaseModel):
    name: str
    version: str
    execution: str  # $$.Execution.Id: only the execution that registered the version may end it
    error: StageError
