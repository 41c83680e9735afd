"""The model registry on DynamoDB: every version's status, evidence and append-only history.

One table, keys ``pk``/``sk``:
- ``MODEL#<name>`` / ``VERSION#<version>``: the version's current record (``record``, JSON) with
  ``status``, ``revision``, ``etag`` and ``sha256`` as attributes for conditions and reads;
- ``MODEL#<name>`` / ``VERSION#<version>#H#<revision>``: one history entry per write (who, what,
  when, why), never updated or deleted;
- ``APPROVAL#<id>`` / ``APPROVAL``: a pending approval: the Step Functions task token, which never
  leaves the registry (Slack buttons carry only the short id).

Writes are optimistic: read, check the lifecycle move, then write the record (condition: the
revision read) and its history entry in one transaction. A concurrent writer makes the condition
fail; the move is re-checked against the fresh record, so a status can never move backwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.lifecycle import Status, may_move
from chalicelib.validation.findings import Finding
from chalicelib.validation.report import ModelSummary

Clock = Callable[[], datetime]
WRITE_ATTEMPTS = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HistoryEntry(BaseModel):
    at: str
    status: Status
    actor: str
    reason: str = ""
    revision: int = 0


class RejectedUpload(BaseModel):
    """A later upload under this name+version that was refused (artifacts are immutable)."""

    at: str
    etag: str
    sha256: str | None = None
    reason: str


class ModelVersion(BaseModel):
    """A version's current record (its history is kept beside it, see ``history``)."""

    name: str
    version: str
    status: Status
    reason: str = ""
    bucket: str
    key: str
    etag: str
    object_version: str | None = None
    size: int | None = None
    sha256: str | None = None
    uploaded_at: str
    uploader: str | None = None
    updated_at: str
    revision: int = 0
    execution_arn: str | None = None
    approval_id: str | None = None
    findings: list[Finding] = []
    models: list[ModelSummary] = []
    test_cases: int = 0
    metrics: dict[str, float] = Field(default_factory=dict)
    rejected_uploads: list[RejectedUpload] = []
    history: list[HistoryEntry] = Field(default=[], exclude=True)  # read beside the record

    @property
    def target_model(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class PendingApproval(BaseModel):
    approval_id: str
    name: str
    version: str
    task_token: str
    requested_at: str


class RegistryError(Exception):
    """Base of the registry's domain errors."""


class VersionNotFound(RegistryError):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(f"no version {version} of model {name} in the registry")


class VersionExists(RegistryError):
    def __init__(self, existing: ModelVersion) -> None:
        super().__init__(f"version {existing.version} of model {existing.name} is already registered")
        self.existing = existing


class TransitionRefused(RegistryError):
    """The move is not allowed from the version's current status (it has moved on)."""

    def __init__(self, record: ModelVersion, target: Status) -> None:
        super().__init__(f"{record.name} {record.version} is {record.status}; it cannot become {target} from there")
        self.record = record
        self.target = target


class ConcurrentUpdate(RegistryError):
    pass


class Transition(BaseModel):
    record: ModelVersion
    changed: bool  # False when the version already had the target status (a repeated step)
    previous: Status | None = None  # the status moved from, when changed


def _version_key(name: str, version: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": f"VERSION#{version}"}}


class ModelRegistry:
    def __init__(self, table: str, client: Any, clock: Clock = utc_now) -> None:
        self._table = table
        self._db = client
        self._clock = clock

    def now(self) -> str:
        return iso(self._clock())

    # -- reads ---------------------------------------------------------------------------
    def find(self, name: str, version: str, with_history: bool = False) -> ModelVersion | None:
        item = self._db.get_item(TableName=self._table, Key=_version_key(name, version), ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            return None
        record = ModelVersion.model_validate_json(item["record"]["S"])
        if with_history:
            record.history = self.history(name, version)
        return record

    def get(self, name: str, version: str, with_history: bool = False) -> ModelVersion:
        record = self.find(name, version, with_history)
        if record is None:
            raise VersionNotFound(name, version)
        return record

    def history(self, name: str, version: str) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{name}"}, ":prefix": {"S": f"VERSION#{version}#H#"}},
            ConsistentRead=True,
        ):
            entries += [HistoryEntry.model_validate_json(item["entry"]["S"]) for item in page["Items"]]
        return sorted(entries, key=lambda e: e.revision)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name`` (records without history), oldest upload first."""
        records: list[ModelVersion] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="attribute_exists(#record)",
            ExpressionAttributeNames={"#record": "record"},
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{name}"}, ":prefix": {"S": "VERSION#"}},
        ):
            records += [ModelVersion.model_validate_json(item["record"]["S"]) for item in page["Items"]]
        return sorted(records, key=lambda r: (r.uploaded_at, r.version))

    # -- writes --------------------------------------------------------------------------
    def register(self, record: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
        """Create the version (RECEIVED, or REJECTED for an unusable upload); VersionExists if it is there."""
        now = iso(self._clock())
        created = record.model_copy(update={"revision": 1, "updated_at": now})
        entry = HistoryEntry(at=now, status=created.status, actor=actor, reason=reason or created.reason, revision=1)
        try:
            self._transact(created, entry, condition="attribute_not_exists(pk)", values={})
        except _ConditionFailed:
            raise VersionExists(self.get(record.name, record.version)) from None
        return created

    def transition(
        self,
        name: str,
        version: str,
        target: Status,
        actor: str,
        reason: str = "",
        changes: Callable[[ModelVersion], dict[str, Any]] | None = None,
    ) -> Transition:
        """Move the version to ``target``, applying ``changes`` (fields to set) in the same write."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(name, version)
            if current.status == target:
                return Transition(record=current, changed=False)
            if not may_move(current.status, target):
                raise TransitionRefused(current, target)
            update = dict(changes(current)) if changes else {}
            try:
                written = self._write(current, target, actor, reason, update)
                return Transition(record=written, changed=True, previous=current.status)
            except _ConditionFailed:
                continue  # someone else wrote meanwhile: re-read and re-check the move
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    def annotate(
        self, name: str, version: str, actor: str, reason: str, changes: Callable[[ModelVersion], dict[str, Any]]
    ) -> ModelVersion:
        """Record something about the version without changing its status (e.g. a refused re-upload)."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(name, version)
            try:
                return self._write(current, current.status, actor, reason, dict(changes(current)))
            except _ConditionFailed:
                continue
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    def _write(
        self, current: ModelVersion, target: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> ModelVersion:
        now = iso(self._clock())
        revision = current.revision + 1
        fields = {**update, "status": target, "revision": revision, "updated_at": now}
        if target != current.status:  # the reason is the status's; an annotation's stays in history
            fields.setdefault("reason", reason)
        written = current.model_copy(update=fields)
        written = ModelVersion.model_validate(written.model_dump())  # re-validate what `changes` set
        entry = HistoryEntry(at=now, status=target, actor=actor, reason=reason, revision=revision)
        self._transact(written, entry, condition="revision = :seen", values={":seen": {"N": str(current.revision)}})
        return written

    def _transact(self, record: ModelVersion, entry: HistoryEntry, condition: str, values: dict[str, Any]) -> None:
        item: dict[str, Any] = {
            **_version_key(record.name, record.version),
            "kind": {"S": "version"},
            "name": {"S": record.name},
            "version": {"S": record.version},
            "status": {"S": record.status.value},
            "revision": {"N": str(record.revision)},
            "etag": {"S": record.etag},
            "updated_at": {"S": record.updated_at},
            "record": {"S": record.model_dump_json()},
        }
        if record.sha256:
            item["sha256"] = {"S": record.sha256}
        history_item = {
            "pk": {"S": f"MODEL#{record.name}"},
            "sk": {"S": f"VERSION#{record.version}#H#{entry.revision:08d}"},
            "kind": {"S": "history"},
            "entry": {"S": entry.model_dump_json()},
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = values
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {"Put": put},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": history_item,
                            "ConditionExpression": "attribute_not_exists(sk)",  # append-only
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise _ConditionFailed from exc
            raise

    # -- approvals -----------------------------------------------------------------------
    def put_approval(self, name: str, version: str, task_token: str) -> PendingApproval:
        approval = PendingApproval(
            approval_id=new_approval_id(),
            name=name,
            version=version,
            task_token=task_token,
            requested_at=iso(self._clock()),
        )
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"APPROVAL#{approval.approval_id}"},
                "sk": {"S": "APPROVAL"},
                "kind": {"S": "approval"},
                "approval": {"S": approval.model_dump_json()},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return approval

    def find_approval(self, approval_id: str) -> PendingApproval | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}},
            ConsistentRead=True,
        ).get("Item")
        return PendingApproval.model_validate_json(item["approval"]["S"]) if item else None


class _ConditionFailed(Exception):
    pass


def new_approval_id() -> str:
    """Short enough for a Slack button value and a person to read; 64 bits of randomness."""
    return "apv_" + secrets.token_hex(8)
