"""Which endpoint and TargetModel serve a request, cached in the Lambda container.

A model's routes (its production alias and canary, one registry Query) and the version records
they point at are kept for ``ttl_s``: in steady state a request reads nothing from the registry,
and a promotion, rollback or canary change is seen within the TTL. Unknown names are cached too,
so a client asking for a missing model cannot turn each request into a registry read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.errors import NotFound
from chalicelib.domain.lifecycle import ON_PRODUCTION, ON_STAGING, Status
from chalicelib.domain.naming import ArtifactName
from chalicelib.domain.records import ModelRoutes, ModelVersion
from chalicelib.domain.signature import ModelSummary

PRODUCTION, CANARY, PINNED = "production", "canary", "pinned"


class RouteSource(Protocol):
    def routes(self, name: str) -> ModelRoutes: ...

    def find(self, name: str, version: str, with_history: bool = False) -> ModelVersion | None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """One request's destination."""

    name: str
    version: str
    kind: str  # production | canary | pinned
    endpoint: str
    target_model: str
    model: ModelSummary | None  # the served model's signature, to check requests against


class TtlCache[K, V]:
    """A small dict with expiry and a size bound (oldest entry dropped first)."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, load: Callable[[], V]) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        self._entries.pop(key, None)
        if len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[key] = (now + self._ttl_s, value)
        return value


class Router:
    def __init__(
        self,
        registry: RouteSource,
        staging_endpoint: str,
        production_endpoint: str,
        ttl_s: float = 5.0,
        max_models: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._registry = registry
        self._staging = staging_endpoint
        self._production = production_endpoint
        self._chance = chance
        self._routes: TtlCache[str, ModelRoutes] = TtlCache(ttl_s, max_models, clock)
        self._versions: TtlCache[tuple[str, str], ModelVersion | None] = TtlCache(ttl_s, max_models * 2, clock)

    def routes(self, name: str) -> ModelRoutes:
        return self._routes.get(name, lambda: self._registry.routes(name))

    def version(self, name: str, version: str) -> ModelVersion | None:
        return self._versions.get((name, version), lambda: self._registry.find(name, version))

    def resolve(self, name: str, version: str | None = None) -> Route:
        """The destination of a request for ``name`` (its production alias, or its canary by
        weight) or for one pinned ``version``; NotFound says why there is none."""
        if version is not None:
            return self._pinned(name, version)
        routes = self.routes(name)
        production = self._production_of(name, routes)
        canary = routes.canary
        if canary is not None and canary.version != production.version and self._chance() < canary.weight:
            candidate = self.version(name, canary.version)
            if candidate is None:
                return production
            if canary.rollout_execution:
                # a rollout's candidate was warmed on production; once its rollout ends (the
                # version moves on from PROMOTING) it stops serving, even before the canary goes
                if candidate.status is Status.PROMOTING:
                    return self._route(name, canary.version, CANARY, self._production, candidate)
            elif candidate.status in ON_STAGING:  # a declined one stops serving
                return self._route(name, canary.version, CANARY, self._staging, candidate)
        return production

    def production(self, name: str) -> Route:
        """The production version's destination, with no canary drawn (for metadata, readiness)."""
        return self._production_of(name, self.routes(name))

    def _production_of(self, name: str, routes: ModelRoutes) -> Route:
        if routes.production is None:
            raise NotFound(f"model {name} has no production version" if routes.canary else f"unknown model {name}")
        return self._route(name, routes.production.version, PRODUCTION, self._production)

    def _pinned(self, name: str, version: str) -> Route:
        record = self.version(name, version)
        if record is None:
            raise NotFound(f"model {name} has no version {version}")
        if record.status in ON_PRODUCTION:
            return self._route(name, version, PINNED, self._production, record)
        if record.status in ON_STAGING:
            return self._route(name, version, PINNED, self._staging, record)
        raise NotFound(
            f"version {version} of model {name} is {record.status.value}: only versions that are STAGED "
            "or later (warm, not declined, expired or failed) serve"
        )

    def _route(self, name: str, version: str, kind: str, endpoint: str, record: ModelVersion | None = None) -> Route:
        record = record or self.version(name, version)
        served = next((m for m in record.models if m.served), None) if record else None
        return Route(name, version, kind, endpoint, ArtifactName(name=name, version=version).filename, served)
