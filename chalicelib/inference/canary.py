"""An admin's canary: a share of a model's traffic goes to a staged, warm candidate beside the
production version, and both are metered per version. One canary per model; ``DELETE`` ends it,
and promoting the candidate ends it too (the registry's flip removes it)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chalicelib.adapters.registry_store import VersionStore, rollout_in_progress
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.lifecycle import CANARY_CANDIDATES
from chalicelib.domain.records import Canary


class CanaryRequest(BaseModel):
    version: str = Field(min_length=1, max_length=32)
    weight: float = Field(gt=0, lt=1, description="the share of requests the candidate gets, e.g. 0.1")


class CanaryAnswer(BaseModel):
    name: str
    production: str
    canary: Canary | None
    action: str


class CanaryRequests:
    def __init__(self, registry: VersionStore) -> None:
        self._registry = registry

    def start(self, name: str, request: CanaryRequest, actor: str) -> CanaryAnswer:
        self._no_rollout(name)
        production = self._registry.routes(name).production
        if production is None:
            raise NotFound(f"model {name} has no production version to share traffic with")
        record = self._registry.find(name, request.version)
        if record is None:
            raise NotFound(f"model {name} has no version {request.version}")
        if request.version == production.version:
            raise Conflict(f"{name} {request.version} already serves all the traffic")
        if record.status not in CANARY_CANDIDATES:
            allowed = ", ".join(sorted(s.value for s in CANARY_CANDIDATES))
            raise Conflict(f"{name} {request.version} is {record.status.value}; a canary must be {allowed}")
        canary = self._registry.put_canary(name, request.version, request.weight, actor)
        self._registry.annotate(
            name, request.version, actor, f"canary: {request.weight:.1%} of {name}'s traffic", lambda _: {}
        )
        return CanaryAnswer(name=name, production=production.version, canary=canary, action="canary started")

    def stop(self, name: str, actor: str) -> CanaryAnswer:
        self._no_rollout(name)
        routes = self._registry.routes(name)
        ended = self._registry.delete_canary(name)
        if ended is None:
            raise NotFound(f"model {name} has no canary")
        self._registry.annotate(name, ended.version, actor, "canary ended", lambda _: {})
        production = routes.production.version if routes.production else ""
        return CanaryAnswer(name=name, production=production, canary=ended, action="canary ended")

    def _no_rollout(self, name: str) -> None:
        """RolloutInProgress while a rollout owns the canary (a canary an ended rollout left is
        cleared here: it routes nothing)."""
        running = self._registry.running_rollout(name)
        if running is not None:
            raise rollout_in_progress(name, running)
