"""PreparePromotion: claim the version for this execution (APPROVED, RETIRED or a failed promotion
-> PROMOTING, with the production alias's revision read now) and copy its artifact to the
production bucket."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib.adapters.artifact_store import ArtifactStore
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import PromotionRun
from chalicelib.promote_model.ownership import may_claim, owned_by
from chalicelib.promote_model.stage_io import PrepareInput, PrepareResult
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/promote"


class MissingChecksum(Exception):
    """A version without a recorded SHA-256 was never validated: it cannot be promoted."""


class PreparePromotion:
    def __init__(self, tracker: LifecycleTracker, store: ArtifactStore, production_bucket: str) -> None:
        self._tracker = tracker
        self._store = store
        self._production_bucket = production_bucket

    def run(self, step: PrepareInput) -> PrepareResult:
        registry = self._tracker.registry
        record = registry.get(step.name, step.version)
        if not (record.status is Status.PROMOTING and owned_by(record, step.execution)):  # else a retried step
            if not may_claim(record):
                return self._nothing(step, f"{step.name} {step.version} is {record.status.value}: nothing to promote")
            alias = registry.find_alias(step.name)
            run = PromotionRun(
                execution_arn=step.execution,
                alias_revision=alias.revision if alias else 0,
                rollback=record.status is Status.RETIRED,
                requested_by=step.requested_by,
                started_at=registry.now(),
            )
            what = "rollback" if run.rollback else "promotion"
            record = self._tracker.move(
                step.name,
                step.version,
                Status.PROMOTING,
                ACTOR,
                f"{what} to production requested by {step.requested_by}",
                changes=lambda _: {"promotion": run},
            ).record
            if not owned_by(record, step.execution):  # a duplicate event's execution lost the claim
                return self._nothing(step, "another execution is promoting this version")
        if not record.sha256 or record.promotion is None:
            raise MissingChecksum(f"{step.name} {step.version} has no recorded SHA-256")
        # Never overwrite an artifact under the same name in production: an MME may keep serving
        # the old bytes. The same bytes already there (a retry, a rollback) are not copied again.
        copy = self._store.copy_immutable(
            record.bucket, record.key, record.object_version, self._production_bucket, record.sha256
        )
        return PrepareResult(
            started=True,
            alias_revision=record.promotion.alias_revision,
            rollback=record.promotion.rollback,
            copied=copy.copied,
        )

    def _nothing(self, step: PrepareInput, reason: str) -> PrepareResult:
        logger.info("nothing to promote", extra={"model": step.name, "version": step.version, "reason": reason})
        return PrepareResult(started=False, reason=reason)
