"""Every status change in one place: the registry write, its lifecycle event, and what Slack is
told (endings are announced; the approval message follows the version once it is decided).
Stages move versions only through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.lifecycle_events import (
    UPLOAD_REFUSED,
    EventPublishFailed,
    LifecycleEvent,
    LifecyclePublisher,
)
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.domain.lifecycle import (
    AFTER_DECISION,
    MODEL_ROLLED_BACK,
    ROLLOUT_COMPLETED,
    ROLLOUT_GATE_PASSED,
    ROLLOUT_STEP_STARTED,
    TERMINAL,
    Status,
)
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
        """Create the version (RECEIVED, or REJECTED for an unusable upload) owing its event (and,
        REJECTED, its Slack notice) in the same write, then announce it. VersionExists if it is there."""
        owed = Notice(revision=1, slack=record.status in TERMINAL)
        created = self.registry.register(record.model_copy(update={"outbox": [owed]}), actor, reason)
        self.deliver(created, actor)
        logger.info(
            "version status",
            extra={"model": created.name, "version": created.version, "status": created.status, "changed": True},
        )
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
        known = actor is not None and all(n.revision == record.revision and not _is_note(n) for n in record.outbox)
        history = {} if known else {h.revision: h for h in self.registry.history(record.name, record.version)}
        for notice in record.outbox:
            entry = history.get(notice.revision)
            event = LifecycleEvent.of(record, entry.actor if entry else (actor or "mmedeploy"), notice.previous)
            # an older change as it was; a note (a refused upload, a rollout's step) with its own
            # reason, not the status's
            if entry is not None and (notice.revision != record.revision or _is_note(notice)):
                event = event.model_copy(
                    update={"status": entry.status, "reason": entry.reason, "at": entry.at, "revision": entry.revision}
                )
            self._publisher.publish(event, detail_type=notice.detail_type)
            if notice.slack:
                self._post(record, notice, event)
            if event.status in AFTER_DECISION and notice.detail_type != UPLOAD_REFUSED:
                self._update_approval_message(record)
        self.registry.clear_outbox(record, record.outbox[-1].revision)

    def _post(self, record: ModelVersion, notice: Notice, event: LifecycleEvent) -> None:
        """The Slack notice ``notice`` owes (``event``: its announcement, as the change was)."""
        if notice.detail_type == UPLOAD_REFUSED:
            self._notifier.announce_refused_upload(record, event.reason)
        elif event.status is Status.PRODUCTION:
            self._notifier.announce_promoted(
                record, notice.replaced, rolled_back=notice.detail_type == MODEL_ROLLED_BACK
            )
        elif event.status in TERMINAL:
            self._notifier.announce_outcome(record)

    def flip(
        self,
        name: str,
        version: str,
        seen_revision: int,
        actor: str,
        reason: str,
        rollback: bool,
        rollout: bool = False,
    ) -> Flip:
        """Make ``version`` the production version (see VersionStore.flip_production): announced
        as ModelPromoted, ModelRolledBack (``rollback``) or RolloutCompleted (the last step of a
        ``rollout``), and in Slack; the replaced version as ModelRetired. Both versions owe theirs
        in the flip's transaction (the outbox)."""
        detail_type = MODEL_ROLLED_BACK if rollback else ROLLOUT_COMPLETED if rollout else None

        def with_notice(current: ModelVersion, target: Status, replaced: str | None) -> dict[str, Any]:
            promoted = target is Status.PRODUCTION
            owed = Notice(
                revision=current.revision + 1,
                previous=current.status,
                slack=promoted,  # the replaced version is named in the promotion's notice
                detail_type=detail_type if promoted else None,
                replaced=replaced if promoted else None,
            )
            return {"outbox": [*current.outbox, owed]}

        flip = self.registry.flip_production(name, version, seen_revision, actor, reason, with_notice)
        if flip.changed:
            settled = [flip.promoted, *([flip.retired] if flip.retired else [])]
        else:  # a retried flip: what the first try left owed, on both versions
            replaced = self.registry.find(name, flip.alias.previous) if flip.alias.previous else None
            settled = [flip.promoted, *([replaced] if replaced and replaced.status is Status.RETIRED else [])]
            if not flip.promoted.outbox:  # its notices went out: the event again (consumers de-duplicate)
                self._publisher.publish(LifecycleEvent.of(flip.promoted, actor), detail_type=detail_type)
        for record in settled:
            if record.outbox:
                self._deliver_after_flip(record, actor)
        return flip

    def _deliver_after_flip(self, record: ModelVersion, actor: str) -> None:
        # The alias has flipped: a Slack outage must not fail the step (the execution would end
        # as if the promotion had failed). What was not announced stays owed, for the sweep.
        try:
            self.deliver(record, actor)
        except EventPublishFailed:
            raise  # the step is retried, and a retried flip delivers what is owed
        except Exception:
            logger.exception(
                "a flip's notice failed; it stays owed for the sweep",
                extra={"model": record.name, "version": record.version},
            )

    def refuse_upload(self, record: ModelVersion, etag: str, sha256: str, reason: str, actor: str) -> ModelVersion:
        """A later upload under a registered name+version was refused: noted on the version (its
        status is untouched) owing UploadRefused and a Slack notice in the same write, then
        announced. The same refusal again is noted once; its event is published again."""

        def note(current: ModelVersion) -> dict[str, Any]:
            if any(r.etag == etag for r in current.rejected_uploads):
                return {}
            refused = RejectedUpload(at=self.registry.now(), etag=etag, sha256=sha256, reason=reason)
            owed = Notice(revision=current.revision + 1, slack=True, detail_type=UPLOAD_REFUSED)
            return {"rejected_uploads": [*current.rejected_uploads, refused], "outbox": [*current.outbox, owed]}

        noted = self.registry.annotate(record.name, record.version, actor, reason, note)
        if noted.outbox:
            self.deliver(noted, actor)
        else:  # a repeated refusal whose notices went out: the event again (consumers de-duplicate)
            event = LifecycleEvent.of(noted, actor)
            event.reason = reason  # the refusal's, not the version's status reason
            self._publisher.publish(event, detail_type=UPLOAD_REFUSED)
        return noted

    def note(
        self,
        name: str,
        version: str,
        actor: str,
        reason: str,
        detail_type: str,
        changes: Callable[[ModelVersion], dict[str, Any]] | None = None,
    ) -> ModelVersion:
        """Record something that happened to the version without a status change (a rollout's
        step, a passed gate), applying ``changes``, owing its event ``detail_type`` (one of
        NOTE_EVENTS) in the same write; then announce it and update the approval message."""

        def with_notice(current: ModelVersion) -> dict[str, Any]:
            owed = Notice(revision=current.revision + 1, detail_type=detail_type)
            return {**(changes(current) if changes else {}), "outbox": [*current.outbox, owed]}

        noted = self.registry.annotate(name, version, actor, reason, with_notice)
        self.deliver(noted, actor)
        return noted

    def _update_approval_message(self, record: ModelVersion) -> None:
        approval = self.approvals.find_approval(record.approval_id) if record.approval_id else None
        if approval is not None:
            self._notifier.update_approval(record, approval)


# Events that announce a note on a version (its history entry's reason), not a status change.
NOTE_EVENTS = frozenset({UPLOAD_REFUSED, ROLLOUT_STEP_STARTED, ROLLOUT_GATE_PASSED})


def _is_note(notice: Notice) -> bool:
    return notice.detail_type in NOTE_EVENTS
