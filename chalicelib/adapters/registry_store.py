"""The model registry on DynamoDB, its version store: every version's status, evidence and
append-only history, the aliases that route traffic to versions, and the model index.

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
- ``APPROVAL#<id>`` / ``APPROVAL``: a pending approval (:mod:`chalicelib.adapters.approval_store`).

Writes are optimistic: read, check the lifecycle move, then write the record (condition: the
revision read) and its history entry in one transaction. A concurrent writer makes the condition
fail; the move is re-checked against the fresh record, so a status can never move backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.adapters.dynamodb import ConditionFailed, transact, translate_errors
from chalicelib.domain.errors import (
    AliasMoved,
    ConcurrentUpdate,
    RolloutEnded,
    RolloutInProgress,
    TransitionRefused,
    VersionExists,
    VersionNotFound,
)
from chalicelib.domain.lifecycle import Status, may_move
from chalicelib.domain.records import (
    CANARY_ALIAS,
    PRODUCTION_ALIAS,
    Alias,
    Canary,
    Clock,
    Flip,
    HistoryEntry,
    ModelEntry,
    ModelRoutes,
    ModelsPage,
    ModelVersion,
    Transition,
    VersionsPage,
    iso,
    utc_now,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WRITE_ATTEMPTS = 8
MODELS_PK = "MODELS"

# What a flip sets on each version it writes, besides the move: called with the version as read,
# its new status (PRODUCTION, or RETIRED for the one replaced) and the version replaced, if any.
type FlipChanges = Callable[[ModelVersion, Status, str | None], dict[str, Any]]


class FlipMove(NamedTuple):
    """One version a flip writes: as read, its new status, why, and the fields set with it."""

    current: ModelVersion
    to: Status
    reason: str
    update: dict[str, Any]


def _version_key(name: str, version: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": f"VERSION#{version}"}}


def _alias_key(name: str, alias: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": f"ALIAS#{alias}"}}


def _index_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": MODELS_PK}, "sk": {"S": f"MODEL#{name}"}}


class VersionStore:
    def __init__(self, table: str, client: DynamoDBClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._db = client
        self._clock = clock

    def now(self) -> str:
        return iso(self._clock())

    # -- reads ---------------------------------------------------------------------------
    @translate_errors
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

    @translate_errors
    def get(self, name: str, version: str, with_history: bool = False) -> ModelVersion:
        record = self.find(name, version, with_history)
        if record is None:
            raise VersionNotFound(name, version)
        return record

    @translate_errors
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

    @translate_errors
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

    @translate_errors
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

    @translate_errors
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

    @translate_errors
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
    @translate_errors
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
        except ConditionFailed:
            raise VersionExists(self.get(record.name, record.version)) from None
        return created

    @translate_errors
    def transition(
        self,
        name: str,
        version: str,
        to: Status,
        actor: str,
        reason: str = "",
        changes: Callable[[ModelVersion], dict[str, Any]] | None = None,
    ) -> Transition:
        """Move the version to status ``to``, applying ``changes`` (fields to set) in the same write."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(name, version)
            if current.status == to:
                return Transition(record=current, changed=False)
            if not may_move(current.status, to):
                raise TransitionRefused(current, to)
            update = dict(changes(current)) if changes else {}
            try:
                written = self._write(current, to, actor, reason, update)
                return Transition(record=written, changed=True, previous=current.status)
            except ConditionFailed:
                continue  # someone else wrote meanwhile: re-read and re-check the move
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    @translate_errors
    def annotate(
        self, name: str, version: str, actor: str, reason: str, changes: Callable[[ModelVersion], dict[str, Any]]
    ) -> ModelVersion:
        """Record something about the version without changing its status (e.g. a refused re-upload)."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(name, version)
            try:
                return self._write(current, current.status, actor, reason, dict(changes(current)))
            except ConditionFailed:
                continue
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    @translate_errors
    def clear_outbox(self, record: ModelVersion, announced: int) -> bool:
        """Drop ``record``'s notices up to revision ``announced`` (they were announced), on condition
        that the version is still at ``record.revision``; False if it moved on meanwhile (whoever
        moved it delivers what is still owed). No history entry: nothing about the version changed."""
        return self.refresh(record, {"outbox": [n for n in record.outbox if n.revision > announced]})

    @translate_errors
    def refresh(self, record: ModelVersion, update: dict[str, Any]) -> bool:
        """Set ``update``'s fields on ``record`` without a history entry or a new revision (nothing
        about the version changed: announcements made, a rollout's latest reading), on condition
        that the version is still at ``record.revision``; False if it moved on meanwhile."""
        try:
            self._replace_record(ModelVersion.model_validate({**record.model_dump(), **update}))
        except ConditionFailed:
            return False
        return True

    def _replace_record(self, record: ModelVersion) -> None:
        seen = {":seen": {"N": str(record.revision)}}
        self._transact([self._put(self._version_item(record), "revision = :seen", seen)])

    def _write(
        self, current: ModelVersion, to: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> ModelVersion:
        written, items = self._version_change(current, to, actor, reason, update)
        self._transact(items)
        return written

    def _version_change(
        self, current: ModelVersion, to: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> tuple[ModelVersion, list[dict[str, Any]]]:
        """The new record and the transaction items that write it (on condition of the revision
        read) with its history entry."""
        now = iso(self._clock())
        revision = current.revision + 1
        fields = {**update, "status": to, "revision": revision, "updated_at": now}
        if to != current.status:  # the reason is the status's; an annotation's stays in history
            fields.setdefault("reason", reason)
        written = current.model_copy(update=fields)
        written = ModelVersion.model_validate(written.model_dump())  # re-validate what `changes` set
        entry = HistoryEntry(at=now, status=to, actor=actor, reason=reason, revision=revision)
        return written, self._version_items(
            written, entry, condition="revision = :seen", values={":seen": {"N": str(current.revision)}}
        )

    def _version_items(
        self, record: ModelVersion, entry: HistoryEntry, condition: str, values: dict[str, Any]
    ) -> list[dict[str, Any]]:
        history_item = {
            "pk": {"S": f"MODEL#{record.name}"},
            "sk": {"S": f"VERSION#{record.version}#H#{entry.revision:08d}"},
            "kind": {"S": "history"},
            "entry": {"S": entry.model_dump_json()},
        }
        # the history is append-only
        return [
            self._put(self._version_item(record), condition, values),
            self._put(history_item, "attribute_not_exists(sk)", {}),
        ]

    def _version_item(self, record: ModelVersion) -> dict[str, Any]:
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
        return item

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
        transact(self._db, items)

    # -- the production alias --------------------------------------------------------------
    @translate_errors
    def find_alias(self, name: str, alias: str = PRODUCTION_ALIAS) -> Alias | None:
        item = self._db.get_item(TableName=self._table, Key=_alias_key(name, alias), ConsistentRead=True).get("Item")
        return Alias.model_validate_json(item["alias"]["S"]) if item else None

    @translate_errors
    def flip_production(
        self, name: str, version: str, seen_revision: int, actor: str, reason: str, changes: FlipChanges | None = None
    ) -> Flip:
        """Point the production alias at ``version`` (PROMOTING -> PRODUCTION) and retire the one
        it pointed at, in one transaction, on condition that the alias is still at
        ``seen_revision`` (0: none yet). AliasMoved when another promotion got there first.
        ``changes`` (see FlipChanges): fields to set on each version written, in that transaction."""
        for _ in range(WRITE_ATTEMPTS):
            routes = self.routes(name)  # the alias and the canary the flip may end, in one read
            alias = routes.production
            current = self.get(name, version)
            if alias and alias.version == version and current.status is Status.PRODUCTION:
                return Flip(alias=alias, promoted=current, changed=False)  # a retried flip, done
            if (alias.revision if alias else 0) != seen_revision:
                raise AliasMoved(name, alias, seen_revision)
            if not may_flip_under(routes.canary, version):
                raise rollout_in_progress(name, routes.canary)
            if not may_move(current.status, Status.PRODUCTION):
                raise TransitionRefused(current, Status.PRODUCTION)
            (promoted, items), *replaced = [
                self._version_change(m.current, m.to, actor, m.reason, m.update)
                for m in self._flip_moves(current, alias, reason, changes)
            ]
            retired = None
            if replaced:  # the version it replaces
                retired, more = replaced[0]
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
            except ConditionFailed:
                continue  # the alias or a version changed meanwhile: re-read and re-check
            return Flip(alias=flipped, promoted=promoted, retired=retired)
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    def _flip_moves(
        self, current: ModelVersion, alias: Alias | None, reason: str, changes: FlipChanges | None
    ) -> list[FlipMove]:
        """The versions a flip to ``current`` writes, in this order: ``current`` to PRODUCTION,
        then the one the alias points at to RETIRED (if it may retire), each with its ``changes``."""
        moves: list[tuple[ModelVersion, Status, str]] = [(current, Status.PRODUCTION, reason)]
        if alias and alias.version != current.version:
            serving = self.get(current.name, alias.version)
            if may_move(serving.status, Status.RETIRED):
                moves.append((serving, Status.RETIRED, f"replaced in production by {current.version}"))
        replaced = moves[1][0].version if len(moves) > 1 else None
        return [
            FlipMove(seen, to, why, dict(changes(seen, to, replaced)) if changes else {}) for seen, to, why in moves
        ]

    # -- the canary ------------------------------------------------------------------------
    @translate_errors
    def put_canary(
        self, name: str, version: str, weight: float, actor: str, rollout_execution: str | None = None
    ) -> Canary:
        """Start (or re-weight) the canary of ``name``; the caller checks the version may serve.

        A rollout's canary (``rollout_execution``: its PromoteModel execution) may replace no
        canary but its own or an admin's canary of the same version, and only while its version
        is PROMOTING (an abort between a rollout's reading and its next step must not bring the
        canary back); an admin's may not replace a rollout's. RolloutInProgress, naming the
        rollout, when a condition fails (RolloutEnded when it was the version's)."""
        canary = Canary(
            name=name,
            version=version,
            weight=weight,
            started_at=self.now(),
            actor=actor,
            rollout_execution=rollout_execution,
        )
        item = {
            **_alias_key(name, CANARY_ALIAS),
            "kind": {"S": "alias"},
            "canary": {"S": canary.model_dump_json()},
            "canary_version": {"S": version},
        }
        if rollout_execution:
            item["rollout_execution"] = {"S": rollout_execution}
            condition = (
                "attribute_not_exists(pk) OR rollout_execution = :mine "
                "OR (attribute_not_exists(rollout_execution) AND canary_version = :version)"
            )
            values = {":mine": {"S": rollout_execution}, ":version": {"S": version}}
        else:
            condition, values = "attribute_not_exists(rollout_execution)", {}
        items = [
            self._put(item, condition, values),
            self._update_index(
                name,
                "SET canary_version = :canary, updated_at = :at",
                {":canary": {"S": version}, ":at": {"S": canary.started_at}},
            ),
        ]
        if rollout_execution:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": _version_key(name, version),
                        "ConditionExpression": "#status = :promoting",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {":promoting": {"S": Status.PROMOTING.value}},
                    }
                }
            )
        try:
            self._transact(items)
        except ConditionFailed:
            if rollout_execution:
                self._require_promoting(name, version)
            raise self._rollout_in_progress(name) from None
        return canary

    def _require_promoting(self, name: str, version: str) -> None:
        """RolloutEnded unless ``version`` is still PROMOTING (a rollout's writes need it)."""
        current = self.find(name, version)
        if current is None or current.status is not Status.PROMOTING:
            raise RolloutEnded(name, version, current.status if current else None)

    def running_rollout(self, name: str) -> Canary | None:
        """The model's canary if a rollout owns it and is running (its candidate PROMOTING under the
        execution the canary names). A canary its ended rollout left (the version moved on, then
        the canary's removal failed) routes nothing already: it is removed here, and None answered,
        so it blocks nothing."""
        canary = self.routes(name).canary
        if canary is None or canary.rollout_execution is None:
            return None
        candidate = self.find(name, canary.version)
        promotion = candidate.promotion if candidate is not None and candidate.status is Status.PROMOTING else None
        if promotion is not None and promotion.execution_arn == canary.rollout_execution:
            return canary
        self.delete_canary(name, rollout_execution=canary.rollout_execution)
        return None

    @translate_errors
    def delete_canary(self, name: str, rollout_execution: str | None = None) -> Canary | None:
        """End the canary of ``name``; the one ended, or None if there was none. An admin's end
        (no ``rollout_execution``) may not end a rollout's canary (RolloutInProgress); a rollout
        ends only its own (another's is left, and None answered)."""
        canary = self.routes(name).canary
        if canary is None:
            return None
        if rollout_execution and canary.rollout_execution != rollout_execution:
            return None
        condition, values = (
            ("rollout_execution = :mine", {":mine": {"S": rollout_execution}})
            if rollout_execution
            else ("attribute_not_exists(rollout_execution)", {})
        )
        delete: dict[str, Any] = {
            "TableName": self._table,
            "Key": _alias_key(name, CANARY_ALIAS),
            "ConditionExpression": condition,
        }
        if values:
            delete["ExpressionAttributeValues"] = values
        try:
            self._transact(
                [
                    {"Delete": delete},
                    self._update_index(name, "REMOVE canary_version SET updated_at = :at", {":at": {"S": self.now()}}),
                ]
            )
        except ConditionFailed:
            if rollout_execution:
                return None  # ended meanwhile (by the flip, or another ending of this rollout)
            raise self._rollout_in_progress(name) from None
        return canary

    def _rollout_in_progress(self, name: str) -> RolloutInProgress:
        return rollout_in_progress(name, self.routes(name).canary)


def rollout_in_progress(name: str, canary: Canary | None) -> RolloutInProgress:
    """The refusal of a canary change (or a flip) that the canary's rollout does not allow."""
    owner = (
        f"a rollout of {name} {canary.version} (at {canary.weight:.0%}, execution "
        f"{canary.rollout_execution.rsplit(':', 1)[-1]})"
        if canary and canary.rollout_execution
        else f"another change to {name}'s canary"
    )
    return RolloutInProgress(
        f"{owner} owns the canary; wait for it to end or abort it (mmedeploy rollout abort {name})"
    )


def may_replace_canary(canary: Canary | None, version: str, rollout_execution: str | None) -> bool:
    """put_canary's condition: a rollout's canary replaces none but its own or an admin's canary of
    the same version; an admin's replaces any but a rollout's."""
    if canary is None:
        return True
    if rollout_execution:
        return canary.rollout_execution == rollout_execution or (
            canary.rollout_execution is None and canary.version == version
        )
    return canary.rollout_execution is None


def may_flip_under(canary: Canary | None, version: str) -> bool:
    """Production does not move under a rollout, but to the rollout's own candidate."""
    return canary is None or canary.rollout_execution is None or canary.version == version
