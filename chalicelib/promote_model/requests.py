"""An admin's promotion or rollback through the API. Nothing is promoted here: an awaiting version
is approved through the gate (as a Slack click would), anything else is asked for with a
PromotionRequested event, and PromoteModel does the work (copy, warm, flip) as for an approval.
A version whose promotion failed (approved; the alias never moved to it) may be asked for again."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from chalicelib.adapters.lifecycle_events import LifecycleEvent, LifecyclePublisher
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.domain.approvals import Decision
from chalicelib.domain.errors import Conflict, NotFound, RolloutInProgress
from chalicelib.domain.lifecycle import PROMOTION_REQUESTED, REDEPLOYABLE, Status
from chalicelib.domain.records import ModelVersion
from chalicelib.promote_model.ownership import may_claim


class Decided(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def text(self) -> str: ...


class Approver(Protocol):
    """What an admin's promotion of an awaiting version needs of the approval gate: to decide as a
    Slack click would (the composition root passes the gate; the features stay independent)."""

    def decide(self, approval_id: str, decision: Decision, actor: str) -> Decided: ...


class PromotionAccepted(BaseModel):
    name: str
    version: str
    status: Status
    action: str
    from_version: str | None = None


class PromotionRequests:
    def __init__(self, registry: VersionStore, gate: Approver, publisher: LifecyclePublisher) -> None:
        self._registry = registry
        self._gate = gate
        self._publisher = publisher

    def promote(self, name: str, version: str, actor: str) -> PromotionAccepted:
        self._no_rollout(name, "promoted")
        record = self._registry.find(name, version)
        if record is None:
            raise NotFound(f"no version {version} of model {name} in the registry")
        if record.status is Status.AWAITING_APPROVAL and record.approval_id:
            answer = self._gate.decide(record.approval_id, Decision.APPROVE, actor)
            if not answer.ok:
                raise Conflict(answer.text)
            return PromotionAccepted(name=name, version=version, status=record.status, action="approved")
        if may_claim(record):
            again = " again" if record.status is Status.FAILED else ""
            return self._request(record, actor, f"promotion requested{again}")
        if record.status is Status.PRODUCTION:
            raise Conflict(f"{name} {version} already serves in production")
        redeploy = (
            f" (its deployment ended: {record.reason[:300]}); a redeploy may start it again"
            if record.status in REDEPLOYABLE
            else ""
        )
        raise Conflict(
            f"{name} {version} is {record.status.value}; only AWAITING_APPROVAL, APPROVED or RETIRED versions, or "
            f"one whose promotion failed, can be promoted{redeploy}",
        )

    def rollback(self, name: str, actor: str) -> PromotionAccepted:
        self._no_rollout(name, "rolled back")
        alias = self._registry.find_alias(name)
        if alias is None:
            raise NotFound(f"model {name} has no production version")
        if not alias.previous:
            first = f"{alias.version} is the first production version of {name}"
            raise Conflict(f"nothing to roll back to: {first}")
        previous = self._registry.get(name, alias.previous)
        if previous.status is not Status.RETIRED:
            raise Conflict(
                f"{name} {previous.version} is {previous.status.value}, not RETIRED: it cannot be rolled back to"
            )
        accepted = self._request(previous, actor, "rollback requested")
        return accepted.model_copy(update={"from_version": alias.version})

    def _no_rollout(self, name: str, what: str) -> None:
        canary = self._registry.running_rollout(name)
        if canary is not None:
            raise RolloutInProgress(
                f"a rollout of {name} {canary.version} is in progress (at {canary.weight:.0%}): {name} is not "
                f"{what} until it ends; abort it first (mmedeploy rollout abort {name})"
            )

    def _request(self, record: ModelVersion, actor: str, action: str) -> PromotionAccepted:
        # PromoteModel claims the version itself (a conditional move), so a repeated request is harmless.
        self._publisher.publish(LifecycleEvent.of(record, actor), detail_type=PROMOTION_REQUESTED)
        return PromotionAccepted(name=record.name, version=record.version, status=record.status, action=action)
