"""The local MME's load/unload rules, with an in-memory model host (the real Triton is exercised
in tests/integration/test_local_mme.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mmedeploy.local.mme.errors import ContainerError, ModelNotReady
from mmedeploy.local.mme.model_cache import ModelCache
from mmedeploy.local.mme.staging import StagedModel

MiB = 1 << 20


class FakeHost:
    def __init__(self, footprints: dict[str, int], load_seconds: float = 0.0) -> None:
        self.footprints = footprints
        self.load_seconds = load_seconds
        self.loaded: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.fail: dict[str, ContainerError] = {}
        self.lock = threading.Lock()

    def stage(self, tarball: Path, target: str) -> StagedModel:
        return StagedModel(target=target, members=[f"{target}__member"], footprint_bytes=self.footprints[target])

    def load(self, staged: StagedModel) -> None:
        time.sleep(self.load_seconds)
        if staged.target in self.fail:
            raise self.fail[staged.target]
        with self.lock:
            self.loaded.append(staged.target)
            self.events.append(("load", staged.target))

    def unload(self, staged: StagedModel) -> None:
        with self.lock:
            if staged.target in self.loaded:
                self.loaded.remove(staged.target)
            self.events.append(("unload", staged.target))


def fetch_from(present: set[str]):  # type: ignore[no-untyped-def]
    def fetch(target: str, destination: Path) -> None:
        if target not in present:
            raise ContainerError(404, f"no {target}")
        destination.write_bytes(b"tarball")

    return fetch


def make_cache(host: FakeHost, tmp_path: Path, budget_mib: int = 100, wait: float = 5.0, metrics=None, room_wait=5.0):  # type: ignore[no-untyped-def]
    recorded = metrics if metrics is not None else []
    return ModelCache(
        host,
        fetch_from(set(host.footprints)),
        tmp_path,
        budget_mib * MiB,
        wait,
        metric=lambda name, value, unit: recorded.append((name, value)),
        endpoint="ep",
        room_wait_s=room_wait,
    )


def invoke(cache: ModelCache, target: str) -> None:
    with cache.use(target):
        pass


def test_first_use_loads_then_hits_the_cache(tmp_path: Path) -> None:
    host = FakeHost({"a": 10 * MiB})
    metrics: list[tuple[str, float]] = []
    cache = make_cache(host, tmp_path, metrics=metrics)
    invoke(cache, "a")
    invoke(cache, "a")
    assert host.events == [("load", "a")]
    hits = [value for name, value in metrics if name == "ModelCacheHit"]
    assert hits == [0.0, 1.0]
    names = {name for name, _ in metrics}
    assert {"ModelLoadingWaitTime", "ModelLoadingTime", "ModelDownloadingTime", "LoadedModelCount"} <= names
    assert not list(tmp_path.iterdir()), "the downloaded tarball is removed once staged"


def test_least_recently_used_idle_model_is_evicted_and_reloads_on_demand(tmp_path: Path) -> None:
    host = FakeHost({"a": 40 * MiB, "b": 40 * MiB, "c": 40 * MiB})
    metrics: list[tuple[str, float]] = []
    cache = make_cache(host, tmp_path, budget_mib=100, metrics=metrics)
    invoke(cache, "a")
    invoke(cache, "b")
    invoke(cache, "a")  # b is now the least recently used
    invoke(cache, "c")
    assert sorted(host.loaded) == ["a", "c"]
    assert ("unload", "b") in host.events
    invoke(cache, "b")  # reloads, evicting a (the oldest now)
    assert sorted(host.loaded) == ["b", "c"]
    assert [m.target for m in cache.loaded()] == ["c", "b"]
    assert any(name == "ModelUnloadingTime" for name, _ in metrics)


def test_a_model_in_use_is_never_evicted_a_load_waits_for_it(tmp_path: Path) -> None:
    host = FakeHost({"a": 60 * MiB, "b": 60 * MiB})
    cache = make_cache(host, tmp_path, budget_mib=100, wait=0.2)
    with cache.use("a"):
        with pytest.raises(ModelNotReady):  # b's load waits for room while a serves
            invoke(cache, "b")
        assert host.loaded == ["a"]
    wait_until(lambda: host.loaded == ["b"])  # a went idle: it made way
    invoke(cache, "b")


def test_no_room_within_the_room_wait_is_out_of_memory(tmp_path: Path) -> None:
    host = FakeHost({"a": 60 * MiB, "b": 60 * MiB})
    cache = make_cache(host, tmp_path, budget_mib=100, room_wait=0.1)
    with cache.use("a"), pytest.raises(ContainerError) as raised:
        invoke(cache, "b")
    assert raised.value.status == 507 and "in use leave" in raised.value.message
    assert host.loaded == ["a"]


def test_two_cold_models_that_fit_only_one_at_a_time_both_serve(tmp_path: Path) -> None:
    host = FakeHost({"a": 60 * MiB, "b": 60 * MiB}, load_seconds=0.1)
    cache = make_cache(host, tmp_path, budget_mib=100)
    errors: list[BaseException] = []

    def call(target: str) -> None:
        try:
            invoke(cache, target)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(host.loaded) == 1 and host.events[-2][0] == "unload"


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_model_larger_than_the_budget_is_out_of_memory(tmp_path: Path) -> None:
    host = FakeHost({"huge": 200 * MiB})
    cache = make_cache(host, tmp_path, budget_mib=100)
    with pytest.raises(ContainerError) as raised:
        invoke(cache, "huge")
    assert raised.value.status == 507
    assert "Out of memory" in raised.value.message
    assert host.loaded == [] and cache.loaded() == []


def test_unknown_model_is_404_and_not_remembered(tmp_path: Path) -> None:
    host = FakeHost({"a": MiB})
    cache = make_cache(host, tmp_path)
    for _ in range(2):
        with pytest.raises(ContainerError) as raised:
            invoke(cache, "missing")
        assert raised.value.status == 404
    assert cache.loaded() == []


def test_a_failed_load_is_reported_and_retried_on_the_next_call(tmp_path: Path) -> None:
    host = FakeHost({"a": MiB})
    host.fail["a"] = ContainerError(400, "initialize() raised")
    cache = make_cache(host, tmp_path)
    with pytest.raises(ContainerError) as raised:
        invoke(cache, "a")
    assert (raised.value.status, raised.value.message) == (400, "initialize() raised")
    assert ("unload", "a") in host.events, "a failed load is cleaned up"
    del host.fail["a"]
    invoke(cache, "a")
    assert host.loaded == ["a"]


def test_callers_waiting_longer_than_the_load_wait_get_model_not_ready(tmp_path: Path) -> None:
    host = FakeHost({"slow": MiB}, load_seconds=0.5)
    cache = make_cache(host, tmp_path, wait=0.05)
    with pytest.raises(ModelNotReady):
        invoke(cache, "slow")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            invoke(cache, "slow")
            break
        except ModelNotReady:
            time.sleep(0.05)
    assert host.events == [("load", "slow")], "the load went on and happened once"


def test_concurrent_first_calls_share_one_load(tmp_path: Path) -> None:
    host = FakeHost({"a": MiB}, load_seconds=0.2)
    cache = make_cache(host, tmp_path)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            invoke(cache, "a")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert host.events == [("load", "a")]


def test_a_load_overtaken_by_a_restart_is_undone_and_reported_retryable(tmp_path: Path) -> None:
    host = FakeHost({"a": MiB}, load_seconds=0.3)
    cache = make_cache(host, tmp_path)
    restart = threading.Timer(0.1, cache.forget_all)  # the model server restarts mid-load
    restart.start()
    with pytest.raises(ContainerError) as raised:
        invoke(cache, "a")
    restart.join()
    assert raised.value.status == 503 and "restarted" in raised.value.message
    assert host.loaded == [], "what the voided load put in the new server is unloaded"
    invoke(cache, "a")
    assert host.loaded == ["a"]


def test_forget_all_makes_every_model_load_again(tmp_path: Path) -> None:
    host = FakeHost({"a": MiB})
    cache = make_cache(host, tmp_path)
    invoke(cache, "a")
    cache.forget_all()  # the model server restarted empty
    assert cache.loaded() == []
    invoke(cache, "a")
    assert host.events == [("load", "a"), ("load", "a")]
