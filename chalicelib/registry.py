"""The model registry on DynamoDB: every version's status, evidence and append-only history.

One table, keys ``pk``/``sk``:
- ``MODEL#<name>`` / ``VERSION#<version>``: the version's current record (``record``, JSON) with
  ``status``, ``revision``, ``etag`` and ``sha256`` as attributes for conditions and reads;
- ``MODEL#<name>`` / ``VERSION#<version>#H#<revision>``: one history entry per write (who, what,
  when, why), never updated or deleted;
- ``MODEL#<name>`` / ``ALIAS#production``: which version serves, the one before it (for rollback)
  and a revision; flipped in one transaction with both versions' moves, on condition of the
  revision read when the promotion began, so of two concurrent promotions exactly one wins;
- ``MODEL#<name>`` / ``ALIAS#canary``: a candidate taking a share of the traffic (version, weight);
  read with the production alias in one Query (``routes``);
- ``MODELS`` / ``MODEL#<name>``: the model index (latest, production and canary versions), kept in
  the same transactions as the writes it summarises, so ``GET /models`` pages through one
  partition instead of scanning the table;
- ``APPROVAL#<id>`` / ``APPROVAL``: a pending approval: the Step Functions task token, which never
  leaves the registry (Slack buttons carry only the short id), the Slack message to update, and
  the decision once claimed (a conditional write, so a double click decides once).

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


class PromotionRun(BaseModel):
    """The PromoteModel execution that owns a version while it is PROMOTING."""

    execution_arn: str
    alias_revision: int  # the production alias's revision when it began: the flip's condition
    rollback: bool  # RETIRED -> PROMOTING: a failure leaves it RETIRED, not FAILED
    requested_by: str
    started_at: str


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
    promotion: PromotionRun | None = None
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
    slack_channel: str | None = None
    slack_ts: str | None = None  # the approval message, updated with the outcome
    decision: str | None = None  # "approve" | "reject", claimed once; "expired" if too late
    decided_by: str | None = None
    decided_at: str | None = None


PRODUCTION_ALIAS = "production"
CANARY_ALIAS = "canary"
MODELS_PK = "MODELS"


class Alias(BaseModel):
    """A named pointer at a version; ``previous`` is where a rollback goes."""

    name: str
    alias: str = PRODUCTION_ALIAS
    version: str
    previous: str | None = None
    revision: int
    updated_at: str
    actor: str


class Canary(BaseModel):
    """A candidate version taking ``weight`` (0..1) of a model's traffic beside production."""

    name: str
    version: str
    weight: float
    started_at: str
    actor: str


class ModelRoutes(BaseModel):
    """Where a model's traffic goes: what the inference API caches per model."""

    production: Alias | None = None
    canary: Canary | None = None


class ModelEntry(BaseModel):
    """A model in the index: what ``GET /models`` lists without reading each model."""

    name: str
    latest_version: str
    updated_at: str
    production_version: str | None = None
    canary_version: str | None = None


class ModelsPage(BaseModel):
    models: list[ModelEntry]
    next: str | None = None  # the last name listed, to continue after; None at the end


class VersionsPage(BaseModel):
    versions: list[ModelVersion]
    next: str | None = None  # the last version listed, to continue after; None at the end


class Flip(BaseModel):
    """The production alias moved: the version now serving, the one it replaced (RETIRED)."""

    alias: Alias
    promoted: ModelVersion
    retired: ModelVersion | None = None
    changed: bool = True  # False when a retried flip found it done


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


class ApprovalNotFound(RegistryError):
    def __init__(self, approval_id: str) -> None:
        super().__init__(f"no approval {approval_id} in the registry")


class AlreadyDecided(RegistryError):
    def __init__(self, approval: PendingApproval) -> None:
        super().__init__(f"approval {approval.approval_id} was already decided ({approval.decision})")
        self.approval = approval


class AliasMoved(RegistryError):
    """The alias changed since the promotion read it: another promotion won."""

    def __init__(self, name: str, alias: Alias | None, seen: int) -> None:
        now = f"{alias.version} (revision {alias.revision})" if alias else "nothing"
        super().__init__(
            f"the {PRODUCTION_ALIAS} alias of {name} moved while this promotion ran "
            f"(it read revision {seen}, it now points at {now}): a concurrent promotion won"
        )
        self.alias = alias


class Transition(BaseModel):
    record: ModelVersion
    changed: bool  # False when the version already had the target status (a repeated step)
    previous: Status | None = None  # the status moved from, when changed


def _version_key(name: str, version: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": f"VERSION#{version}"}}


def _alias_key(name: str, alias: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": f"ALIAS#{alias}"}}


def _index_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": MODELS_PK}, "sk": {"S": f"MODEL#{name}"}}


def _approval_key(approval_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}}


def _approval_of(item: dict[str, Any]) -> PendingApproval:
    """An approval item's attributes (all strings) as the model."""
    return PendingApproval.model_validate({k: item[k]["S"] for k in PendingApproval.model_fields if k in item})


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

    def versions_page(self, name: str, limit: int = 100, after: str | None = None) -> VersionsPage:
        """Up to ``limit`` versions of ``name`` in key order (``1.10`` sorts before ``1.2``), after
        the version ``after``; ``next`` is set only when another version follows."""
        records = self._version_records(name, limit, after)
        more = len(records) == limit and bool(self._version_records(name, 1, records[-1].version))
        return VersionsPage(versions=records, next=records[-1].version if more else None)

    def _version_records(self, name: str, limit: int, after: str | None) -> list[ModelVersion]:
        """History items share the version key range: a filter skips them, so a Query's page may
        hold fewer records than asked for and the reading goes on from where it stopped."""
        records: list[ModelVersion] = []
        start = _version_key(name, after) if after else None
        while len(records) < limit:
            query: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "FilterExpression": "attribute_exists(#record)",
                "ExpressionAttributeNames": {"#record": "record"},
                "ExpressionAttributeValues": {":pk": {"S": f"MODEL#{name}"}, ":prefix": {"S": "VERSION#"}},
                "Limit": (limit - len(records)) * 8,  # about 8 history items per version
            }
            if start:
                query["ExclusiveStartKey"] = start
            page = self._db.query(**query)
            records += [ModelVersion.model_validate_json(item["record"]["S"]) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return records[:limit]

    def list_models(self, limit: int = 100, after: str | None = None) -> ModelsPage:
        """One page of the model index, in name order, after the model ``after``."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": MODELS_PK}},
            "Limit": limit + 1,  # one more than shown: DynamoDB's LastEvaluatedKey cannot say if more follow
        }
        if after:
            query["ExclusiveStartKey"] = _index_key(after)
        items = self._db.query(**query)["Items"]
        models = [
            ModelEntry.model_validate({k: v["S"] for k, v in item.items() if "S" in v and k in ModelEntry.model_fields})
            for item in items[:limit]
        ]
        return ModelsPage(models=models, next=models[-1].name if len(items) > limit else None)

    def routes(self, name: str) -> ModelRoutes:
        """The production alias and the canary of ``name``, in one read."""
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{name}"}, ":prefix": {"S": "ALIAS#"}},
            ConsistentRead=True,
        )
        routes = ModelRoutes()
        for item in page["Items"]:
            if item["sk"]["S"] == f"ALIAS#{PRODUCTION_ALIAS}":
                routes.production = Alias.model_validate_json(item["alias"]["S"])
            elif item["sk"]["S"] == f"ALIAS#{CANARY_ALIAS}":
                routes.canary = Canary.model_validate_json(item["canary"]["S"])
        return routes

    # -- writes --------------------------------------------------------------------------
    def register(self, record: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
        """Create the version (RECEIVED, or REJECTED for an unusable upload); VersionExists if it is there."""
        now = iso(self._clock())
        created = record.model_copy(update={"revision": 1, "updated_at": now})
        entry = HistoryEntry(at=now, status=created.status, actor=actor, reason=reason or created.reason, revision=1)
        items = self._version_items(created, entry, condition="attribute_not_exists(pk)", values={})
        items.append(
            self._update_index(
                record.name,
                "SET #name = :name, latest_version = :latest, updated_at = :at",
                {":name": {"S": record.name}, ":latest": {"S": record.version}, ":at": {"S": now}},
            )
        )
        try:
            self._transact(items)
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
        written, items = self._version_change(current, target, actor, reason, update)
        self._transact(items)
        return written

    def _version_change(
        self, current: ModelVersion, target: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> tuple[ModelVersion, list[dict[str, Any]]]:
        """The new record and the transaction items that write it (on condition of the revision
        read) with its history entry."""
        now = iso(self._clock())
        revision = current.revision + 1
        fields = {**update, "status": target, "revision": revision, "updated_at": now}
        if target != current.status:  # the reason is the status's; an annotation's stays in history
            fields.setdefault("reason", reason)
        written = current.model_copy(update=fields)
        written = ModelVersion.model_validate(written.model_dump())  # re-validate what `changes` set
        entry = HistoryEntry(at=now, status=target, actor=actor, reason=reason, revision=revision)
        return written, self._version_items(
            written, entry, condition="revision = :seen", values={":seen": {"N": str(current.revision)}}
        )

    def _version_items(
        self, record: ModelVersion, entry: HistoryEntry, condition: str, values: dict[str, Any]
    ) -> list[dict[str, Any]]:
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
        # the history is append-only
        return [self._put(item, condition, values), self._put(history_item, "attribute_not_exists(sk)", {})]

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> dict[str, Any]:
        """A conditional Put for a transaction."""
        put: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _update_index(self, name: str, expression: str, values: dict[str, Any]) -> dict[str, Any]:
        """An unconditional Update of the model's index item for a transaction."""
        update: dict[str, Any] = {"TableName": self._table, "Key": _index_key(name), "UpdateExpression": expression}
        if values:
            update["ExpressionAttributeValues"] = values
        if "#name" in expression:
            update["ExpressionAttributeNames"] = {"#name": "name"}  # a DynamoDB reserved word
        return {"Update": update}

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self._db.transact_write_items(TransactItems=items)
        except self._db.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise _ConditionFailed from exc
            raise

    # -- the production alias --------------------------------------------------------------
    def find_alias(self, name: str, alias: str = PRODUCTION_ALIAS) -> Alias | None:
        item = self._db.get_item(TableName=self._table, Key=_alias_key(name, alias), ConsistentRead=True).get("Item")
        return Alias.model_validate_json(item["alias"]["S"]) if item else None

    def flip_production(self, name: str, version: str, seen_revision: int, actor: str, reason: str) -> Flip:
        """Point the production alias at ``version`` (PROMOTING -> PRODUCTION) and retire the one
        it pointed at, in one transaction, on condition that the alias is still at
        ``seen_revision`` (0: none yet). AliasMoved when another promotion got there first."""
        for _ in range(WRITE_ATTEMPTS):
            routes = self.routes(name)  # the alias and the canary the flip may end, in one read
            alias = routes.production
            current = self.get(name, version)
            if alias and alias.version == version and current.status is Status.PRODUCTION:
                return Flip(alias=alias, promoted=current, changed=False)  # a retried flip, done
            if (alias.revision if alias else 0) != seen_revision:
                raise AliasMoved(name, alias, seen_revision)
            if not may_move(current.status, Status.PRODUCTION):
                raise TransitionRefused(current, Status.PRODUCTION)
            promoted, items = self._version_change(current, Status.PRODUCTION, actor, reason, {})
            retired = None
            if alias and alias.version != version:
                serving = self.get(name, alias.version)
                if may_move(serving.status, Status.RETIRED):
                    retired, more = self._version_change(
                        serving, Status.RETIRED, actor, f"replaced in production by {version}", {}
                    )
                    items += more
            previous = alias.version if alias and alias.version != version else (alias.previous if alias else None)
            flipped = Alias(
                name=name,
                version=version,
                previous=previous,
                revision=seen_revision + 1,
                updated_at=promoted.updated_at,
                actor=actor,
            )
            condition, values = (
                ("revision = :seen", {":seen": {"N": str(seen_revision)}})
                if alias
                else ("attribute_not_exists(pk)", {})
            )
            alias_item = {
                **_alias_key(name, PRODUCTION_ALIAS),
                "kind": {"S": "alias"},
                "revision": {"N": str(flipped.revision)},
                "alias": {"S": flipped.model_dump_json()},
            }
            index = "SET production_version = :production, updated_at = :at"
            canary = routes.canary
            if canary and canary.version == version:  # the candidate now serves all the traffic
                items.append({"Delete": {"TableName": self._table, "Key": _alias_key(name, CANARY_ALIAS)}})
                index += " REMOVE canary_version"
            items.append(
                self._update_index(name, index, {":production": {"S": version}, ":at": {"S": promoted.updated_at}})
            )
            try:
                self._transact([self._put(alias_item, condition, values), *items])
            except _ConditionFailed:
                continue  # the alias or a version changed meanwhile: re-read and re-check
            return Flip(alias=flipped, promoted=promoted, retired=retired)
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    # -- the canary ------------------------------------------------------------------------
    def put_canary(self, name: str, version: str, weight: float, actor: str) -> Canary:
        """Start (or re-weight) the canary of ``name``; the caller checks the version may serve."""
        canary = Canary(name=name, version=version, weight=weight, started_at=self.now(), actor=actor)
        item = {**_alias_key(name, CANARY_ALIAS), "kind": {"S": "alias"}, "canary": {"S": canary.model_dump_json()}}
        self._transact(
            [
                {"Put": {"TableName": self._table, "Item": item}},
                self._update_index(
                    name,
                    "SET canary_version = :canary, updated_at = :at",
                    {":canary": {"S": version}, ":at": {"S": canary.started_at}},
                ),
            ]
        )
        return canary

    def delete_canary(self, name: str) -> Canary | None:
        """End the canary of ``name``; the one ended, or None if there was none."""
        canary = self.routes(name).canary
        if canary is None:
            return None
        self._transact(
            [
                {"Delete": {"TableName": self._table, "Key": _alias_key(name, CANARY_ALIAS)}},
                self._update_index(name, "REMOVE canary_version SET updated_at = :at", {":at": {"S": self.now()}}),
            ]
        )
        return canary

    # -- approvals -----------------------------------------------------------------------
    def put_approval(self, name: str, version: str, task_token: str) -> PendingApproval:
        approval = PendingApproval(
            approval_id=new_approval_id(),
            name=name,
            version=version,
            task_token=task_token,
            requested_at=iso(self._clock()),
        )
        item = {**_approval_key(approval.approval_id), "kind": {"S": "approval"}}
        item.update({k: {"S": v} for k, v in approval.model_dump(exclude_none=True).items()})
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return approval

    def find_approval(self, approval_id: str) -> PendingApproval | None:
        item = self._db.get_item(TableName=self._table, Key=_approval_key(approval_id), ConsistentRead=True).get("Item")
        return _approval_of(item) if item else None

    def set_approval_message(self, approval_id: str, channel: str, ts: str) -> None:
        """Where the approval message is, so the outcome can be written into it."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="SET slack_channel = :channel, slack_ts = :ts",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":channel": {"S": channel}, ":ts": {"S": ts}},
        )

    def claim_decision(self, approval_id: str, decision: str, decided_by: str) -> PendingApproval:
        """Record the decision once; AlreadyDecided (with who and when) for every later click."""
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=_approval_key(approval_id),
                UpdateExpression="SET decision = :decision, decided_by = :by, decided_at = :at",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(decision)",
                ExpressionAttributeValues={
                    ":decision": {"S": decision},
                    ":by": {"S": decided_by},
                    ":at": {"S": iso(self._clock())},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            approval = self.find_approval(approval_id)
            if approval is None:
                raise ApprovalNotFound(approval_id) from None
            raise AlreadyDecided(approval) from None
        return _approval_of(answer["Attributes"])

    def release_decision(self, approval_id: str, decided_by: str) -> None:
        """Undo a claim whose task could not be resumed (an error, not a timeout), so a click can be retried."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="REMOVE decision, decided_by, decided_at",
            ConditionExpression="decided_by = :by",
            ExpressionAttributeValues={":by": {"S": decided_by}},
        )

    def mark_approval_expired(self, approval_id: str, decided_by: str) -> None:
        """The claimed decision came after Step Functions gave up waiting: say so for later clicks."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="SET decision = :expired",
            ConditionExpression="decided_by = :by",
            ExpressionAttributeValues={":expired": {"S": "expired"}, ":by": {"S": decided_by}},
        )


class _ConditionFailed(Exception):
    pass


def new_approval_id() -> str:
    """Short enough for a Slack button value and a person to read; 64 bits of randomness."""
    return "apv_" + secrets.token_hex(8)
