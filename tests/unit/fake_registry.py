"""The registry in memory: :class:`ModelRegistry`'s interface (the version store and the approval
store) over dicts, for the tests of the business rules (the stages, the approval gate, the Slack
webhook) that need the registry's behaviour but not DynamoDB.

It keeps what the rules rely on: records read are copies; every write is conditional on the
revision (or the alias revision) read, a failed condition is re-read and re-checked as the adapter
does, and ends in the same domain errors (``VersionExists``,
``TransitionRefused``, ``AliasMoved``, ``AlreadyDecided``, ``ApprovalNotFound``, ``RegistryError``
for an approval update whose condition fails); history entries are append-only; the clock is read
as often, and in the same order, as the adapter reads it. What is not storage it inherits from the
adapter rather than restating it: ``get``, the optimistic loops of ``transition`` and ``annotate``,
the new record of a move (``_version_change``) and the versions a flip writes (``_flip_moves``);
every method that reads or writes the table is overridden. ``test_registry_contract.py`` runs the
same scenarios against this fake and the moto-backed adapter, so the two cannot drift."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.approval_store import new_approval_id
from chalicelib.adapters.dynamodb import ConditionFailed
from chalicelib.adapters.registry import ModelRegistry
from chalicelib.adapters.registry_store import (
    WRITE_ATTEMPTS,
    FlipChanges,
    may_flip_under,
    may_replace_canary,
    rollout_in_progress,
)
from chalicelib.domain.approvals import EXPIRED_DECISION, PendingApproval
from chalicelib.domain.errors import (
    AliasMoved,
    AlreadyDecided,
    ApprovalNotFound,
    ConcurrentUpdate,
    RegistryError,
    TransitionRefused,
    VersionExists,
)
from chalicelib.domain.lifecycle import Status, may_move
from chalicelib.domain.records import (
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
    VersionsPage,
    iso,
    utc_now,
)


def condition_failed() -> RegistryError:
    """What the adapter raises when an approval update's condition fails (the table's answer, translated)."""
    return RegistryError(
        "the registry's table answered ConditionalCheckFailedException: The conditional request failed"
    )


class FakeRegistry(ModelRegistry):
    """ModelRegistry in memory (one table's worth: versions, history, aliases, canaries, the model
    index and pending approvals)."""

    def __init__(self, clock: Clock = utc_now) -> None:
        super().__init__("in-memory", None, clock)  # type: ignore[arg-type]  # no client: nothing here calls one
        self._records: dict[tuple[str, str], str] = {}  # (name, version) -> ModelVersion JSON
        self._history: dict[tuple[str, str], dict[int, str]] = {}  # revision -> HistoryEntry JSON
        self._aliases: dict[str, str] = {}  # name -> the production Alias JSON
        self._canaries: dict[str, str] = {}  # name -> Canary JSON
        self._index: dict[str, dict[str, str]] = {}  # name -> the model index item
        self._approvals: dict[str, dict[str, str]] = {}  # approval id -> its attributes

    def item_count(self) -> int:
        """How many items the table would hold (what a Scan's COUNT says)."""
        return (
            len(self._records)
            + sum(len(entries) for entries in self._history.values())
            + len(self._aliases)
            + len(self._canaries)
            + len(self._index)
            + len(self._approvals)
        )

    # -- reads ---------------------------------------------------------------------------
    def find(self, name: str, version: str, with_history: bool = False) -> ModelVersion | None:
        stored = self._records.get((name, version))
        if stored is None:
            return None
        record = ModelVersion.model_validate_json(stored)
        if with_history:
            record.history = self.history(name, version)
        return record

    def history(self, name: str, version: str) -> list[HistoryEntry]:
        entries = self._history.get((name, version), {})
        return [HistoryEntry.model_validate_json(entries[revision]) for revision in sorted(entries)]

    def versions(self, name: str) -> list[ModelVersion]:
        records = [ModelVersion.model_validate_json(j) for (n, _), j in self._records.items() if n == name]
        return sorted(records, key=lambda r: (r.uploaded_at, r.version))

    def versions_page(self, name: str, limit: int = 100, after: str | None = None) -> VersionsPage:
        """In key order (the table's sort key is ``VERSION#<version>``), after ``after``."""
        keys = sorted(v for n, v in self._records if n == name and (after is None or v > after))
        shown = [ModelVersion.model_validate_json(self._records[name, v]) for v in keys[:limit]]
        more = len(shown) == limit and len(keys) > limit
        return VersionsPage(versions=shown, next=shown[-1].version if more else None)

    def list_models(self, limit: int = 100, after: str | None = None) -> ModelsPage:
        names = sorted(n for n in self._index if after is None or n > after)
        models = [ModelEntry.model_validate(self._index[n]) for n in names[:limit]]
        return ModelsPage(models=models, next=models[-1].name if len(names) > limit else None)

    def routes(self, name: str) -> ModelRoutes:
        routes = ModelRoutes()
        if name in self._aliases:
            routes.production = Alias.model_validate_json(self._aliases[name])
        if name in self._canaries:
            routes.canary = Canary.model_validate_json(self._canaries[name])
        return routes

    # -- writes --------------------------------------------------------------------------
    def register(self, record: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
        now = iso(self._clock())
        created = record.model_copy(update={"revision": 1, "updated_at": now})
        entry = HistoryEntry(at=now, status=created.status, actor=actor, reason=reason or created.reason, revision=1)
        if (record.name, record.version) in self._records:
            raise VersionExists(self.get(record.name, record.version))
        self._put_version(created, entry)
        index = self._index.setdefault(record.name, {})
        index.update(name=record.name, latest_version=record.version, updated_at=now)
        return created

    def _write(
        self, current: ModelVersion, to: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> ModelVersion:
        """The adapter's transition and annotate call this; the new record is the adapter's own."""
        written, entry = self._changed(current, to, actor, reason, update)
        self._check_revision(current)
        self._put_version(written, entry)
        return written

    def _changed(
        self, current: ModelVersion, to: Status, actor: str, reason: str, update: dict[str, Any]
    ) -> tuple[ModelVersion, HistoryEntry]:
        """The adapter's new record (one clock reading) and its history entry."""
        written, _ = self._version_change(current, to, actor, reason, update)
        return written, HistoryEntry(
            at=written.updated_at, status=to, actor=actor, reason=reason, revision=written.revision
        )

    def _replace_record(self, record: ModelVersion) -> None:
        self._check_revision(record)
        self._records[record.name, record.version] = record.model_dump_json()

    def _check_revision(self, seen: ModelVersion) -> None:
        """The condition of every version write: the record is still at the revision read."""
        stored = self._records.get((seen.name, seen.version))
        if stored is None or ModelVersion.model_validate_json(stored).revision != seen.revision:
            raise ConditionFailed

    def _put_version(self, record: ModelVersion, entry: HistoryEntry) -> None:
        history = self._history.setdefault((record.name, record.version), {})
        assert entry.revision not in history, "the history is append-only"
        self._records[record.name, record.version] = record.model_dump_json()
        history[entry.revision] = entry.model_dump_json()

    # -- the production alias --------------------------------------------------------------
    def find_alias(self, name: str, alias: str = PRODUCTION_ALIAS) -> Alias | None:
        if alias != PRODUCTION_ALIAS:
            raise NotImplementedError("the fake keeps the production alias only (as the services use it)")
        stored = self._aliases.get(name)
        return Alias.model_validate_json(stored) if stored else None

    def flip_production(
        self, name: str, version: str, seen_revision: int, actor: str, reason: str, changes: FlipChanges | None = None
    ) -> Flip:
        for _ in range(WRITE_ATTEMPTS):
            routes = self.routes(name)
            alias = routes.production
            current = self.get(name, version)
            if alias and alias.version == version and current.status is Status.PRODUCTION:
                return Flip(alias=alias, promoted=current, changed=False)
            if (alias.revision if alias else 0) != seen_revision:
                raise AliasMoved(name, alias, seen_revision)
            if not may_move(current.status, Status.PRODUCTION):
                raise TransitionRefused(current, Status.PRODUCTION)
            if not may_flip_under(routes.canary, version):
                raise rollout_in_progress(name, routes.canary)
            writes = [
                (m.current, *self._changed(m.current, m.to, actor, m.reason, m.update))
                for m in self._flip_moves(current, alias, reason, changes)
            ]
            promoted, retired = writes[0][1], (writes[1][1] if len(writes) > 1 else None)
            previous = alias.version if alias and alias.version != version else (alias.previous if alias else None)
            flipped = Alias(
                name=name,
                version=version,
                previous=previous,
                revision=seen_revision + 1,
                updated_at=promoted.updated_at,
                actor=actor,
            )
            try:  # one transaction: every condition holds, or nothing is written
                stored_alias = self.find_alias(name)
                if (stored_alias.revision if stored_alias else 0) != seen_revision:
                    raise ConditionFailed
                for seen, _, _ in writes:
                    self._check_revision(seen)
            except ConditionFailed:
                continue
            for _, record, entry in writes:
                self._put_version(record, entry)
            self._aliases[name] = flipped.model_dump_json()
            index = self._index.setdefault(name, {})
            canary = routes.canary
            if canary and canary.version == version:
                self._canaries.pop(name, None)
                index.pop("canary_version", None)
            index.update(production_version=version, updated_at=promoted.updated_at)
            return Flip(alias=flipped, promoted=promoted, retired=retired)
        raise ConcurrentUpdate(f"{name} {version}: {WRITE_ATTEMPTS} concurrent writes in a row")

    # -- the canary ------------------------------------------------------------------------
    def put_canary(
        self, name: str, version: str, weight: float, actor: str, rollout_execution: str | None = None
    ) -> Canary:
        if rollout_execution:
            self._require_promoting(name, version)  # the adapter's ConditionCheck, as a read
        if not may_replace_canary(self.routes(name).canary, version, rollout_execution):
            raise rollout_in_progress(name, self.routes(name).canary)
        canary = Canary(
            name=name,
            version=version,
            weight=weight,
            started_at=self.now(),
            actor=actor,
            rollout_execution=rollout_execution,
        )
        self._canaries[name] = canary.model_dump_json()
        self._index.setdefault(name, {}).update(canary_version=version, updated_at=canary.started_at)
        return canary

    def delete_canary(self, name: str, rollout_execution: str | None = None) -> Canary | None:
        canary = self.routes(name).canary
        if canary is None:
            return None
        if canary.rollout_execution != rollout_execution:
            if rollout_execution:
                return None  # another's: a rollout ends only its own
            raise rollout_in_progress(name, canary)
        self._canaries.pop(name, None)
        index = self._index.setdefault(name, {})
        index.pop("canary_version", None)
        index["updated_at"] = self.now()
        return canary

    # -- pending approvals -----------------------------------------------------------------
    def put_approval(self, name: str, version: str, task_token: str) -> PendingApproval:
        approval = PendingApproval(
            approval_id=new_approval_id(),
            name=name,
            version=version,
            task_token=task_token,
            requested_at=iso(self._clock()),
        )
        if approval.approval_id in self._approvals:
            raise condition_failed()
        self._approvals[approval.approval_id] = approval.model_dump(exclude_none=True)
        return approval

    def find_approval(self, approval_id: str) -> PendingApproval | None:
        item = self._approvals.get(approval_id)
        return PendingApproval.model_validate(item) if item is not None else None

    def set_approval_message(self, approval_id: str, channel: str, ts: str) -> None:
        item = self._approvals.get(approval_id)
        if item is None:
            raise condition_failed()
        item.update(slack_channel=channel, slack_ts=ts)

    def claim_decision(self, approval_id: str, decision: str, decided_by: str) -> PendingApproval:
        at = iso(self._clock())
        item = self._approvals.get(approval_id)
        if item is None:
            raise ApprovalNotFound(approval_id)
        if "decision" in item:
            raise AlreadyDecided(PendingApproval.model_validate(item))
        item.update(decision=decision, decided_by=decided_by, decided_at=at)
        return PendingApproval.model_validate(item)

    def release_decision(self, approval_id: str, decided_by: str) -> None:
        item = self._decided_by(approval_id, decided_by)
        for key in ("decision", "decided_by", "decided_at"):
            item.pop(key, None)

    def mark_approval_expired(self, approval_id: str, decided_by: str) -> None:
        self._decided_by(approval_id, decided_by)["decision"] = EXPIRED_DECISION

    def _decided_by(self, approval_id: str, decided_by: str) -> dict[str, str]:
        """The approval's item, on condition that ``decided_by`` claimed it."""
        item = self._approvals.get(approval_id)
        if item is None or item.get("decided_by") != decided_by:
            raise condition_failed()
        return item
