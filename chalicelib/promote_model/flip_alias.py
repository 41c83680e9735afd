"""FlipAlias: the warm version becomes production and the one it replaces RETIRED, in one
conditional transaction (VersionStore.flip_production): of two promotions racing, exactly one
flips; the other fails with AliasMoved and its version ends FAILED."""

from __future__ import annotations

from chalicelib.domain.lifecycle import Status
from chalicelib.promote_model.ownership import owned_by, require_owned
from chalicelib.promote_model.stage_io import FlipInput, FlipResult
from chalicelib.stages.tracker import LifecycleTracker

ACTOR = "pipeline/promote"


class FlipAlias:
    def __init__(self, tracker: LifecycleTracker) -> None:
        self._tracker = tracker

    def run(self, step: FlipInput) -> FlipResult:
        record = self._tracker.registry.get(step.name, step.version)
        if not (record.status is Status.PRODUCTION and owned_by(record, step.execution)):  # else a retried step
            require_owned(record, step.execution)
        by = record.promotion.requested_by if record.promotion else "unknown"
        rollout = record.promotion.rollout if record.promotion else None
        if rollout is not None:
            reason = (
                f"promoted to production: its rollout passed every gate of {len(rollout.policy.steps) - 1} "
                f"canary step(s) (requested by {by})"
            )
        else:
            reason = f"{'rolled back' if step.rollback else 'promoted'} to production (requested by {by})"
        flip = self._tracker.flip(
            step.name, step.version, step.alias_revision, ACTOR, reason, step.rollback, rollout=rollout is not None
        )
        return FlipResult(
            version=flip.alias.version,
            replaced=flip.retired.version if flip.retired else None,
            alias_revision=flip.alias.revision,
        )
