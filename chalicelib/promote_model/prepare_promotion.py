"""PreparePromotion: claim the version for this execution (APPROVED, RETIRED or a failed promotion
-> PROMOTING, with the production alias's revision read now) and copy its artifact to the
production bucket.

It also decides whether this promotion is a rollout (canary steps judged by gates before the
flip): always for an admin's rollout (a RolloutRequested event, or the options an admin's rollout
of an awaiting version left on it before approving it); for an approval (an APPROVED version) when
the version's policy says ``start_on_approval``; never for a rollback or a promotion asked for again.
A policy that cannot hold, or a rollout with nothing to compare with, ends the claimed version
FAILED with the reason.
The rollout's policy is resolved here, once (the deployment's settings < the model's rollout.json
< the request's options), and kept with the claim. While a rollout of the model runs, nothing else
may be promoted or rolled back: the claim then fails with RolloutInProgress (production unchanged)."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from chalicelib.adapters.artifact_store import ArtifactStore
from chalicelib.domain.errors import RolloutInProgress, RolloutPolicyInvalid
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion, PromotionRun
from chalicelib.domain.rollout.policy import RolloutOverrides, resolve_policy
from chalicelib.domain.rollout.progress import RolloutRun
from chalicelib.promote_model.ownership import may_claim, owned_by
from chalicelib.promote_model.stage_io import PrepareInput, PrepareResult
from chalicelib.stages.tracker import LifecycleTracker

logger = Logger(service="mmedeploy", child=True)
ACTOR = "pipeline/promote"


class RolloutRefused(Exception):
    """A rollout that cannot run (the model has no production version to compare with)."""


class MissingChecksum(Exception):
    """A version without a recorded SHA-256 was never validated: it cannot be promoted."""


class PreparePromotion:
    def __init__(
        self,
        tracker: LifecycleTracker,
        store: ArtifactStore,
        production_bucket: str,
        rollout_defaults: Callable[[], RolloutOverrides],
    ) -> None:
        self._tracker = tracker
        self._store = store
        self._production_bucket = production_bucket
        self._rollout_defaults = rollout_defaults

    def run(self, step: PrepareInput) -> PrepareResult:
        registry = self._tracker.registry
        record = registry.get(step.name, step.version)
        if not (record.status is Status.PROMOTING and owned_by(record, step.execution)):  # else a retried step
            if not may_claim(record):
                return self._nothing(step, f"{step.name} {step.version} is {record.status.value}: nothing to promote")
            alias = registry.find_alias(step.name)
            rollback = record.status is Status.RETIRED
            refusal: Exception | None = None
            try:
                rollout = None if rollback else self._rollout(record, step, alias.version if alias else None)
            except (RolloutPolicyInvalid, RolloutRefused) as exc:
                # claimed all the same, so the version ends FAILED with the reason (promotable again)
                rollout, refusal = None, exc
            run = PromotionRun(
                execution_arn=step.execution,
                alias_revision=alias.revision if alias else 0,
                rollback=rollback,
                requested_by=step.requested_by,
                started_at=registry.now(),
                rollout=rollout,
            )
            what = "rollback" if run.rollback else "rollout" if rollout else "promotion"
            record = self._tracker.move(
                step.name,
                step.version,
                Status.PROMOTING,
                ACTOR,
                f"{what} to production requested by {step.requested_by}",
                changes=lambda _: {"promotion": run, "rollout_request": None},
            ).record
            if not owned_by(record, step.execution):  # a duplicate event's execution lost the claim
                return self._nothing(step, "another execution is promoting this version")
            if refusal is not None:
                raise refusal
        if not record.sha256 or record.promotion is None:
            raise MissingChecksum(f"{step.name} {step.version} has no recorded SHA-256")
        running = registry.running_rollout(step.name)  # (a stale one is cleared here)
        if running and running.rollout_execution != step.execution:
            raise RolloutInProgress(
                f"a rollout of {step.name} {running.version} is in progress (at {running.weight:.0%}): nothing else "
                f"is promoted or rolled back until it ends; ask again then, or abort it "
                f"(mmedeploy rollout abort {step.name})"
            )
        canary = registry.routes(step.name).canary
        if record.promotion.rollout and canary and not canary.rollout_execution and canary.version != step.version:
            raise RolloutRefused(
                f"{step.name} has a canary of {canary.version} (started by {canary.actor}): a rollout needs the "
                f"canary; end it (mmedeploy canary {step.name} --stop) and ask again "
                f"(mmedeploy rollout {step.name} {step.version})"
            )
        if record.promotion.rollout:
            # the rollout holds the model from its claim: its canary (no traffic until its first
            # step) refuses other rollouts, promotions and rollbacks while the candidate warms
            registry.put_canary(step.name, step.version, 0.0, ACTOR, rollout_execution=step.execution)
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
            rollout=record.promotion.rollout is not None,
        )

    def _rollout(self, record: ModelVersion, step: PrepareInput, production: str | None) -> RolloutRun | None:
        """The rollout this claim starts, or None for a plain promotion (see the module's doc).
        RolloutPolicyInvalid when the layers do not hold together (the version ends FAILED with
        the reason, and may be promoted or rolled out again)."""
        options = step.rollout if step.rollout is not None else record.rollout_request
        if options is None:  # an approval's promotion: a rollout only where its policy says so
            if record.status is not Status.APPROVED or production is None:
                return None  # (a first version has nothing to share traffic with: promoted at once)
            if not self._starts_on_approval(record):
                return None  # its policy is never resolved: a layer that cannot hold stops no promotion
        policy = resolve_policy(self._rollout_defaults(), record.rollout_policy, options)
        if production is None:
            raise RolloutRefused(
                f"{step.name} has no production version to judge {step.version} against: promote it instead"
            )
        return RolloutRun(policy=policy, production_version=production)

    def _starts_on_approval(self, record: ModelVersion) -> bool:
        """``start_on_approval`` from the highest layer that sets it (the model's rollout.json,
        then the deployment's settings), the others unread."""
        for layer in (record.rollout_policy, self._rollout_defaults()):
            if layer is not None and layer.start_on_approval is not None:
                return layer.start_on_approval
        return False

    def _nothing(self, step: PrepareInput, reason: str) -> PrepareResult:
        logger.info("nothing to promote", extra={"model": step.name, "version": step.version, "reason": reason})
        return PrepareResult(started=False, reason=reason)
