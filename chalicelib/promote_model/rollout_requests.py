"""An admin's rollout through the API: start one (a RolloutRequested event: PromoteModel does the
work, as for a promotion; a version awaiting approval is approved by the request, as `promote`
does, and the promotion its approval starts rolls it out), pause it, resume it, abort it.

A rollout is found from the model's canary (a rollout's canary names its execution) or, before its
first step, from the version PROMOTING under a rollout. Pause holds the rollout at its step (the
gates still read, and a breach still rolls it back); resume lets it go on; abort ends it at once:
the version ROLLED_BACK with who aborted it, the canary removed, the execution stopped.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from chalicelib.adapters.executions import Executions
from chalicelib.adapters.lifecycle_events import LifecycleEvent, LifecyclePublisher
from chalicelib.domain.approvals import Decision
from chalicelib.domain.errors import Conflict, NotFound, RolloutInProgress
from chalicelib.domain.lifecycle import ROLLOUT_REQUESTED, Status
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.rollout.policy import RolloutOverrides, RolloutPolicy, resolve_policy
from chalicelib.domain.rollout.progress import RolloutRun
from chalicelib.promote_model.ownership import may_claim
from chalicelib.promote_model.requests import Approver
from chalicelib.promote_model.rollout import end_rollout, rollout_changes
from chalicelib.stages.tracker import LifecycleTracker


class RolloutAccepted(BaseModel):
    name: str
    version: str
    status: Status
    action: str
    production: str | None = None
    policy: RolloutPolicy | None = None
    rollout: RolloutRun | None = None


class RolloutRequests:
    def __init__(
        self,
        tracker: LifecycleTracker,
        gate: Approver,
        publisher: LifecyclePublisher,
        executions: Executions,
        rollout_defaults: Callable[[], RolloutOverrides],
    ) -> None:
        self._tracker = tracker
        self._gate = gate
        self._registry = tracker.registry
        self._publisher = publisher
        self._executions = executions
        self._defaults = rollout_defaults

    def start(self, name: str, version: str, options: RolloutOverrides, actor: str) -> RolloutAccepted:
        """Ask PromoteModel to roll ``version`` out; refused here (not after warming) when it
        cannot run: the policy's layers do not hold together, nothing serves to compare it with, a
        rollout or an admin's canary of another version holds the canary, or the version is not
        one a promotion may claim."""
        record = self._registry.find(name, version)
        if record is None:
            raise NotFound(f"no version {version} of model {name} in the registry")
        routes = self._registry.routes(name)
        if routes.production is None:
            raise Conflict(f"{name} has no production version to judge {version} against: promote it instead")
        if routes.production.version == version:
            raise Conflict(f"{name} {version} already serves in production")
        running = self._registry.running_rollout(name)  # (a stale one is cleared here)
        if running is not None:
            raise RolloutInProgress(
                f"a rollout of {name} {running.version} is in progress; one rollout per model "
                f"(abort it first: mmedeploy rollout abort {name})"
            )
        canary = self._registry.routes(name).canary
        if canary and canary.version != version:
            raise Conflict(
                f"{name} has a canary of {canary.version} (started by {canary.actor}); end it first "
                f"(mmedeploy canary {name} --stop)"
            )
        awaiting = record.status is Status.AWAITING_APPROVAL and record.approval_id is not None
        if not awaiting and (record.status is Status.RETIRED or not may_claim(record)):
            raise Conflict(
                f"{name} {version} is {record.status.value}; a rollout takes a version AWAITING_APPROVAL (it is "
                "approved by the request), APPROVED, or one whose promotion or rollout failed (a RETIRED one "
                "comes back with mmedeploy rollback)"
            )
        policy = resolve_policy(self._defaults(), record.rollout_policy, options)
        if awaiting:
            # as `promote` does, the admin approves it; the promotion the approval starts finds the
            # options on the version and rolls it out
            assert record.approval_id is not None
            self._registry.annotate(
                name,
                version,
                actor,
                f"rollout requested by {actor}: it starts once approved",
                lambda _: {"rollout_request": options},
            )
            answer = self._gate.decide(record.approval_id, Decision.APPROVE, actor)
            if not answer.ok:
                self._registry.annotate(
                    name, version, actor, "rollout request withdrawn", lambda _: {"rollout_request": None}
                )
                raise Conflict(answer.text)
            action = "approved; rollout requested"
        else:
            event = LifecycleEvent.of(record, actor).model_copy(update={"rollout": options})
            self._publisher.publish(event, detail_type=ROLLOUT_REQUESTED)
            action = "rollout requested"
        return RolloutAccepted(
            name=name,
            version=version,
            status=record.status,
            action=action,
            production=routes.production.version,
            policy=policy,
        )

    def pause(self, name: str, actor: str) -> RolloutAccepted:
        record, run = self._rollout_of(name)
        if run.paused_by:
            return self._answer(record, f"already paused by {run.paused_by}")
        noted = self._registry.annotate(
            name,
            record.version,
            actor,
            f"rollout paused {_at(run)} by {actor}: it holds its weight, the gates still read",
            rollout_changes(paused_by=actor, paused_at=self._registry.now()),
        )
        return self._answer(noted, "rollout paused")

    def resume(self, name: str, actor: str) -> RolloutAccepted:
        record, run = self._rollout_of(name)
        if not run.paused_by:
            return self._answer(record, "not paused")
        noted = self._registry.annotate(
            name,
            record.version,
            actor,
            f"rollout resumed {_at(run)} by {actor} (paused by {run.paused_by})",
            rollout_changes(paused_by=None, paused_at=None),
        )
        return self._answer(noted, "rollout resumed")

    def abort(self, name: str, actor: str) -> RolloutAccepted:
        record, run = self._rollout_of(name)
        assert record.promotion is not None
        reason = f"aborted by {actor} {_at(run)}: production {run.production_version} unchanged, canary removed"
        ended = end_rollout(self._tracker, record, Status.ROLLED_BACK, actor, reason).record
        # the execution ends now rather than at its next reading (which would find the version ended)
        self._executions.stop(record.promotion.execution_arn, f"rollout of {name} {record.version} {reason}")
        return self._answer(ended, "rollout aborted")

    def _rollout_of(self, name: str) -> tuple[ModelVersion, RolloutRun]:
        """The version of ``name`` a rollout is running, and its progress; NotFound if none."""
        canary = self._registry.running_rollout(name)
        candidates = (
            [self._registry.get(name, canary.version)]
            if canary
            # claimed, its canary not written yet (PreparePromotion writes it right after the claim)
            else [r for r in self._registry.versions(name) if r.status is Status.PROMOTING]
        )
        for record in candidates:
            if record.status is Status.PROMOTING and record.promotion and record.promotion.rollout:
                return record, record.promotion.rollout
        raise NotFound(f"no rollout of {name} is in progress")

    @staticmethod
    def _answer(record: ModelVersion, action: str) -> RolloutAccepted:
        run = record.promotion.rollout if record.promotion else None
        return RolloutAccepted(
            name=record.name,
            version=record.version,
            status=record.status,
            action=action,
            production=run.production_version if run else None,
            policy=run.policy if run else None,
            rollout=run,
        )


def _at(run: RolloutRun) -> str:
    return f"at {run.describe_step()}" if run.started else "before its first step"
