"""Every status change in one place: the registry write, its lifecycle event, and what Slack is
told (endings are announced; the approval message follows the version once it is decided).
Stages move versions only through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.lifecycle_events import UPLOAD_REFUSED, LifecycleEvent, LifecyclePublisher
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.domain.lifecycle import AFTER_DECISION, ROLLED_BACK, TERMINAL, Status
from chalicelib.domain.records import Flip, ModelVersion, Notice, RejectedUpload, Transition

if TYPE_CHECKING:  # built by composition, which imports slack_sdk only when a Lambda needs it
    from chalicelib.adapters.slack_notifier import SlackNotifier

logger = Logger(service="mmedeploy", child=True)


class LifecycleTracker:
    def __init__(
        self,
        registry: VersionStore,
        approvals: ApprovalStore,
        publisher: LifecyclePublisher,
        notifier: SlackNotifier,
    ) -> None:
        self.registry = registry
        self.approvals = approvals
        self._publisher = publisher
        self._notifier = notifier

    def register(self, record: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
        created = self.registry.register(record, actor, reason)
        self._announce(created, actor, previous=None, changed=True)
        return created

    def move(
        self,
        name: str,
        version: str,
        target: Status,
        actor: str,
        reason: str = "",
        changes: Callable[[ModelVersion], dict[str, Any]] | None = None,
    ) -> Transition:
        def with_notice(current: ModelVersion) -> dict[str, Any]:
            # what this move owes its watchers, written with it (the outbox)
            owed = Notice(revision=current.revision + 1, previous=current.status, slack=target in TERMINAL)
            return {**(changes(current) if changes else {}), "outbox": [*current.outbox, owed]}

        moved = self.registry.transition(name, version, target, actor, reason, with_notice)
        if moved.record.outbox:
            self.deliver(moved.record, actor)
        else:  # a repeated step whose notices went out: announced again (consumers de-duplicate)
            self._publisher.publish(LifecycleEvent.of(moved.record, actor, None))
        logger.info(
            "version status",
            extra={"model": name, "version": version, "status": moved.record.status, "changed": moved.changed},
        )
        return moved

    def deliver(self, record: ModelVersion, actor: str | None = None) -> None:
        """Announce what ``record``'s outbox owes, oldest first, then drop it from the outbox. A
        failure leaves the rest owed, for the retried step or the sweep. ``actor``: who made the
        record's current revision, when the caller knows (else its history says)."""
        known = actor is not None and all(n.revision == record.revision for n in record.outbox)
        history = {} if known else {h.revision: h for h in self.registry.history(record.name, record.version)}
        for notice in record.outbox:
            entry = history.get(notice.revision)
            event = LifecycleEvent.of(record, entry.actor if entry else (actor or "mmedeploy"), notice.previous)
            if entry is not None and notice.revision != record.revision:  # an older change: as it was
                event = event.model_copy(
                    update={"status": entry.status, "reason": entry.reason, "at": entry.at, "revision": entry.revision}
                )
            self._publisher.publish(event)
            status = entry.status if entry else record.status
            if notice.slack and status in TERMINAL:
                self._notifier.announce_outcome(record)
            if status in AFTER_DECISION:
                self._update_approval_message(record)
        self.registry.clear_outbox(record, record.outbox[-1].revision)

    def flip(self, name: str, version: str, seen_revision: int, actor: str, reason: str, rollback: bool) -> Flip:
        """Make ``version`` the production version (see VersionStore.flip_production): announced
        as ModelPromoted, or ModelRolledBack, and the replaced version as ModelRetired."""
        flip = self.registry.flip_production(name, version, seen_revision, actor, reason)
        self._publisher.publish(
            LifecycleEvent.of(flip.promoted, actor, Status.PROMOTING if flip.changed else None),
            detail_type=ROLLED_BACK if rollback else None,
        )
        if flip.retired:
            self._publisher.publish(LifecycleEvent.of(flip.retired, actor, Status.PRODUCTION))
        if flip.changed:
            self._notifier.announce_promoted(flip, rollback)
            self._update_approval_message(flip.promoted)
        return flip

    def refuse_upload(self, record: ModelVersion, etag: str, sha256: str, reason: str, actor: str) -> ModelVersion:
        """A later upload under a registered name+version was refused: noted on the version (its
        status is untouched), announced as UploadRefused and in Slack."""

        def note(current: ModelVersion) -> dict[str, Any]:
            if any(r.etag == etag for r in current.rejected_uploads):
                return {}
            refused = RejectedUpload(at=self.registry.now(), etag=etag, sha256=sha256, reason=reason)
            return {"rejected_uploads": [*current.rejected_uploads, refused]}

        noted = self.registry.annotate(record.name, record.version, actor, reason, note)
        event = LifecycleEvent.of(noted, actor)
        event.reason = reason  # the refusal's, not the version's status reason
        self._publisher.publish(event, detail_type=UPLOAD_REFUSED)
        self._notifier.announce_refused_upload(noted, reason)
        return noted

    def _announce(self, record: ModelVersion, actor: str, previous: Status | None, changed: bool) -> None:
        # Re-published on a repeated step too: a crash between the write and the event must not
        # lose the event (consumers de-duplicate on name, version, status and revision).
        self._publisher.publish(LifecycleEvent.of(record, actor, previous))
        logger.info(
            "version status",
            extra={"model": record.name, "version": record.version, "status": record.status, "changed": changed},
        )
        if changed and record.status in TERMINAL:
            self._notifier.announce_outcome(record)
        if changed and record.status in AFTER_DECISION:
            self._update_approval_message(record)

    def _update_approval_message(self, record: ModelVersion) -> None:
        approval = self.approvals.find_approval(record.approval_id) if record.approval_id else None
        if approval is not None:
            self._notifier.update_approval(record, approval)
