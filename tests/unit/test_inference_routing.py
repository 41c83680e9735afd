"""The Router: which endpoint and TargetModel serve a request, from the registry's routes and
version records kept for a TTL (an injected clock), a canary chosen by an injected chance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.domain.errors import NotFound
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import Alias, Canary, ModelRoutes, ModelVersion
from chalicelib.domain.signature import ModelSummary, TensorSpec
from chalicelib.inference.routing import CANARY, PINNED, PRODUCTION, Route, Router, TtlCache
from tests.unit.http_answers import http_status
from tests.unit.test_registry import version_record

S = Status
STAGING, PROD = "mmedeploy-staging", "mmedeploy-production"
TTL_S = 5.0


def summary(version: str, input_name: str | None = None) -> ModelSummary:
    """The served model of a version, whose input is named after it unless told."""
    return ModelSummary(
        name=f"fraud_{version}.tar.gz",
        platform="ensemble",
        served=True,
        max_batch_size=4,
        inputs=[TensorSpec(name=input_name or f"IN_{version}", data_type="TYPE_FP32", dims=[4])],
        outputs=[TensorSpec(name="OUT", data_type="TYPE_FP32", dims=[1])],
    )


MEMBER = ModelSummary(name="preprocess", backend="python", served=False)


class FakeRoutes:
    """The registry's reads the Router makes, in memory, counted."""

    def __init__(self) -> None:
        self.aliases: dict[str, Alias] = {}
        self.canaries: dict[str, Canary] = {}
        self.records: dict[tuple[str, str], ModelVersion] = {}
        self.route_reads: list[str] = []
        self.version_reads: list[tuple[str, str]] = []

    @property
    def reads(self) -> int:
        return len(self.route_reads) + len(self.version_reads)

    def routes(self, name: str) -> ModelRoutes:
        self.route_reads.append(name)
        return ModelRoutes(production=self.aliases.get(name), canary=self.canaries.get(name))

    def find(self, name: str, version: str, with_history: bool = False) -> ModelVersion | None:
        self.version_reads.append((name, version))
        return self.records.get((name, version))

    def add(self, version: str, status: Status, name: str = "fraud", input_name: str | None = None) -> None:
        """A version record whose models are an unserved member and the served model."""
        self.records[(name, version)] = version_record(
            version, name=name, status=status, models=[MEMBER, summary(version, input_name)]
        )

    def serve(self, version: str, name: str = "fraud", revision: int = 1) -> None:
        self.aliases[name] = Alias(
            name=name, version=version, revision=revision, updated_at="2025-01-01T00:00:00.000Z", actor="test"
        )

    def start_canary(self, version: str, weight: float, name: str = "fraud") -> None:
        self.canaries[name] = Canary(
            name=name, version=version, weight=weight, started_at="2025-01-01T00:00:00.000Z", actor="test"
        )


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Chances:
    """An injected ``random.random``: the given draws, in order, counted."""

    def __init__(self, draws: list[float]) -> None:
        self._draws: Iterator[float] = iter(draws)
        self.drawn = 0

    def __call__(self) -> float:
        self.drawn += 1
        return next(self._draws)


@pytest.fixture
def source() -> FakeRoutes:
    fake = FakeRoutes()
    fake.add("1", S.RETIRED)
    fake.add("2", S.PRODUCTION)
    fake.serve("2")
    return fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def router(source: FakeRoutes, clock: FakeClock, chance: Chances | None = None, max_models: int = 4096) -> Router:
    return Router(source, STAGING, PROD, ttl_s=TTL_S, max_models=max_models, clock=clock, chance=chance or Chances([]))


# -- production ----------------------------------------------------------------------------------
def test_a_request_goes_to_the_production_version_on_the_production_endpoint(
    source: FakeRoutes, clock: FakeClock
) -> None:
    target = router(source, clock).resolve("fraud")
    assert target == Route("fraud", "2", PRODUCTION, PROD, "fraud_2.tar.gz", summary("2"))


def test_steady_state_reads_nothing_within_the_ttl(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a router that resolved the model once (one routes read, one version read)
    subject = router(source, clock)
    subject.resolve("fraud")
    assert (source.route_reads, source.version_reads) == (["fraud"], [("fraud", "2")])
    # WHEN many requests come within the TTL
    for _ in range(100):
        clock.now += (TTL_S - 0.001) / 100
        assert subject.resolve("fraud").version == "2"
    # THEN none of them reads the registry
    assert source.reads == 2


def test_a_promotion_is_seen_after_the_ttl(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a cached production version 2
    subject = router(source, clock)
    assert subject.resolve("fraud").version == "2"
    # WHEN version 3 is promoted (the alias moves) and the TTL has not passed
    source.add("3", S.PRODUCTION)
    source.serve("3", revision=2)
    clock.now += TTL_S - 0.5
    # THEN version 2 still serves; once the TTL passes, version 3 does, on the production endpoint
    assert subject.resolve("fraud").version == "2"
    clock.now += 0.5
    assert subject.resolve("fraud") == Route("fraud", "3", PRODUCTION, PROD, "fraud_3.tar.gz", summary("3"))
    assert source.route_reads == ["fraud", "fraud"]


def test_an_unknown_model_is_cached_and_not_found(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a client asking for a model that does not exist, over and over
    subject = router(source, clock)
    for _ in range(50):
        # WHEN it asks / THEN NotFound says the model is unknown
        with pytest.raises(NotFound, match="unknown model nosuch") as raised:
            subject.resolve("nosuch")
        assert http_status(raised.value) == 404
    # AND the registry was read once for all of them
    assert (source.route_reads, source.version_reads) == (["nosuch"], [])
    # AND once the TTL passes it is read again
    clock.now += TTL_S
    with pytest.raises(NotFound):
        subject.resolve("nosuch")
    assert source.route_reads == ["nosuch", "nosuch"]


def test_a_model_with_only_a_canary_has_no_production_version(source: FakeRoutes, clock: FakeClock) -> None:
    source.add("1", S.STAGED, name="fresh")
    source.start_canary("1", 0.5, name="fresh")
    with pytest.raises(NotFound, match="model fresh has no production version"):
        router(source, clock).resolve("fresh")


def test_a_production_version_without_a_record_has_no_signature(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN an alias at a version whose record is missing: requests are framed-checked only
    source.serve("9")
    target = router(source, clock).resolve("fraud")
    assert (target.version, target.endpoint, target.model) == ("9", PROD, None)


# -- canary --------------------------------------------------------------------------------------
def test_a_canary_takes_exactly_the_requests_drawn_under_its_weight(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a canary of staged version 3 taking 25% of the traffic
    source.add("3", S.AWAITING_APPROVAL)
    source.start_canary("3", 0.25)
    draws = [0.0, 0.2499, 0.25, 0.9, 0.1, 0.75, 0.24, 0.5]
    chance = Chances(draws)
    subject = router(source, clock, chance)
    # WHEN eight requests are resolved with these draws
    targets = [subject.resolve("fraud") for _ in draws]
    # THEN exactly those drawn under 0.25 go to version 3 on the staging endpoint, as the canary
    expected = [d < 0.25 for d in draws]
    assert [t.kind == CANARY for t in targets] == expected
    for target, canary in zip(targets, expected, strict=True):
        if canary:
            assert target == Route("fraud", "3", CANARY, STAGING, "fraud_3.tar.gz", summary("3"))
        else:
            assert target == Route("fraud", "2", PRODUCTION, PROD, "fraud_2.tar.gz", summary("2"))
    # AND one draw was made per request; both versions' records were read once
    assert chance.drawn == len(draws)
    assert sorted(source.version_reads) == [("fraud", "2"), ("fraud", "3")]
    assert source.route_reads == ["fraud"]


def test_a_canary_of_the_production_version_is_ignored(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a canary left at the version that now serves production
    source.start_canary("2", 0.99)
    chance = Chances([0.0] * 10)
    subject = router(source, clock, chance)
    # WHEN requests come / THEN all go to production, with no draw made
    assert {subject.resolve("fraud").kind for _ in range(10)} == {PRODUCTION}
    assert chance.drawn == 0


def test_a_canary_ended_is_seen_after_the_ttl(source: FakeRoutes, clock: FakeClock) -> None:
    source.add("3", S.STAGED)
    source.start_canary("3", 0.5)
    subject = router(source, clock, Chances([0.0, 0.0, 0.0]))
    assert subject.resolve("fraud").kind == CANARY
    del source.canaries["fraud"]
    assert subject.resolve("fraud").kind == CANARY  # still cached
    clock.now += TTL_S
    assert subject.resolve("fraud").kind == PRODUCTION


@pytest.mark.parametrize("status", [S.DECLINED, S.EXPIRED, S.FAILED])
def test_a_canary_whose_candidate_no_longer_serves_takes_no_traffic(
    source: FakeRoutes, clock: FakeClock, status: Status
) -> None:
    # GIVEN a canary started on an AWAITING_APPROVAL version that was then declined (or expired, failed)
    source.add("3", status)
    source.start_canary("3", 0.5)
    # WHEN a request draws under the weight / THEN it still goes to production: a pinned request
    # for that version is refused, so canary traffic must not reach it either
    assert router(source, clock, Chances([0.0])).resolve("fraud").kind == PRODUCTION


# -- pinned versions -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [S.STAGED, S.AWAITING_APPROVAL, S.APPROVED, S.PROMOTING])
def test_a_staged_version_is_served_from_the_staging_endpoint(
    source: FakeRoutes, clock: FakeClock, status: Status
) -> None:
    source.add("3", status)
    target = router(source, clock).resolve("fraud", "3")
    assert target == Route("fraud", "3", PINNED, STAGING, "fraud_3.tar.gz", summary("3"))


@pytest.mark.parametrize(("version", "status"), [("2", S.PRODUCTION), ("1", S.RETIRED)])
def test_a_promoted_version_is_served_from_the_production_endpoint(
    source: FakeRoutes, clock: FakeClock, version: str, status: Status
) -> None:
    target = router(source, clock).resolve("fraud", version)
    assert source.records[("fraud", version)].status is status
    assert target == Route("fraud", version, PINNED, PROD, f"fraud_{version}.tar.gz", summary(version))
    assert source.route_reads == []  # a pinned request does not read the routes


@pytest.mark.parametrize("status", [S.REJECTED, S.FAILED, S.DECLINED, S.EXPIRED, S.RECEIVED])
def test_a_version_that_does_not_serve_is_not_found_naming_its_status(
    source: FakeRoutes, clock: FakeClock, status: Status
) -> None:
    source.add("3", status)
    with pytest.raises(NotFound) as raised:
        router(source, clock).resolve("fraud", "3")
    assert http_status(raised.value) == 404
    assert f"version 3 of model fraud is {status.value}" in raised.value.message


def test_an_unknown_pinned_version_is_cached_and_not_found(source: FakeRoutes, clock: FakeClock) -> None:
    subject = router(source, clock)
    for _ in range(5):
        with pytest.raises(NotFound, match="model fraud has no version 7"):
            subject.resolve("fraud", "7")
    assert source.version_reads == [("fraud", "7")]


def test_target_names_the_tarball_for_dotted_versions_and_underscored_names(
    source: FakeRoutes, clock: FakeClock
) -> None:
    source.add("1.2.3", S.STAGED, name="fraud_detector_v2")
    target = router(source, clock).resolve("fraud_detector_v2", "1.2.3")
    assert target.target_model == "fraud_detector_v2_1.2.3.tar.gz"
    assert target.model is not None and target.model.served and target.model.name == "fraud_1.2.3.tar.gz"


# -- TtlCache ------------------------------------------------------------------------------------
def test_the_cache_drops_the_oldest_entry_beyond_its_size(clock: FakeClock) -> None:
    # GIVEN a cache of three entries holding a, b, c (a loaded first)
    loads: list[str] = []
    cache: TtlCache[str, str] = TtlCache(ttl_s=60, max_entries=3, clock=clock)

    def get(key: str) -> str:
        def load() -> str:
            loads.append(key)
            return key.upper()

        return cache.get(key, load)

    assert [get(k) for k in "abc"] == ["A", "B", "C"]
    # WHEN a fourth key is loaded
    assert get("d") == "D"
    # THEN a was dropped (loaded again), while b, c and d are still cached
    assert [get(k) for k in "bcd"] == ["B", "C", "D"]
    assert loads == ["a", "b", "c", "d"]
    get("a")
    assert loads == ["a", "b", "c", "d", "a"]
    # AND adding a dropped b, the oldest then
    get("c")
    get("b")
    assert loads == ["a", "b", "c", "d", "a", "b"]


def test_the_cache_reloads_after_its_ttl_and_keeps_none(clock: FakeClock) -> None:
    loads: list[int] = []
    cache: TtlCache[str, None] = TtlCache(ttl_s=2, max_entries=10, clock=clock)

    def load() -> None:
        loads.append(1)

    for _ in range(3):
        cache.get("k", load)
    clock.now += 1.999
    cache.get("k", load)
    assert len(loads) == 1  # None is a cached value
    clock.now += 0.001
    cache.get("k", load)
    assert len(loads) == 2


def test_the_routers_cache_is_bounded_by_max_models(source: FakeRoutes, clock: FakeClock) -> None:
    # GIVEN a router that keeps two models' routes
    subject = router(source, clock, max_models=2)
    for name in ("a", "b", "c", "a"):
        with pytest.raises(NotFound):
            subject.resolve(name)
    # THEN the third evicted the first, which was read again
    assert source.route_reads == ["a", "b", "c", "a"]
