"""Which TargetModels one endpoint has loaded, and the rules SageMaker's MME applies to them:
load lazily on first invoke (one load per model however many callers wait), answer
ModelNotReadyException to callers that wait longer than the configured time while the load goes
on, and unload the least recently used idle models when a new one needs the memory.

Triton, S3 and CloudWatch are injected (``ModelHost``, ``fetch``, ``metric``) so the rules are
testable apart from them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mmedeploy.local.mme.errors import ContainerError, ModelNotReady
from mmedeploy.local.mme.staging import StagedModel

log = logging.getLogger("mmedeploy.local.mme")

MiB = 1 << 20
ROOM_WAIT_S = 60.0  # how long a load waits for busy models to make room before 507


class ModelHost(Protocol):
    """What the cache needs from the server that runs the models (Triton)."""

    def stage(self, tarball: Path, target: str) -> StagedModel: ...
    def load(self, staged: StagedModel) -> None: ...
    def unload(self, staged: StagedModel) -> None: ...


Fetch = Callable[[str, Path], None]  # (target, destination file); ContainerError(404) if absent
Metric = Callable[[str, float, str], None]  # (name, value, unit)


@dataclass
class _Entry:
    target: str
    state: str = "loading"  # loading -> ready -> unloading; removed when gone or failed
    settled: threading.Event = field(default_factory=threading.Event)
    error: ContainerError | None = None
    staged: StagedModel | None = None
    reserved_bytes: int = 0
    in_flight: int = 0
    last_used: float = 0.0


@dataclass(frozen=True)
class LoadedModel:
    target: str
    footprint_bytes: int
    in_flight: int
    last_used: float


class ModelCache:
    def __init__(
        self,
        host: ModelHost,
        fetch: Fetch,
        downloads: Path,
        memory_budget_bytes: int,
        load_wait_s: float,
        metric: Metric = lambda name, value, unit: None,
        endpoint: str = "",
        room_wait_s: float = ROOM_WAIT_S,
    ) -> None:
        self.host, self.fetch, self.downloads = host, fetch, downloads
        self.budget = memory_budget_bytes
        self.load_wait_s = load_wait_s
        self.room_wait_s = room_wait_s
        self.metric = metric
        self.endpoint = endpoint
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # entries settled or freed
        self._loader = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"mme-load-{endpoint}")
        self._generation = 0  # bumped when the model server restarts empty

    # -- the invoke path ---------------------------------------------------------------------
    @contextmanager
    def use(self, target: str) -> Iterator[None]:
        """Hold ``target`` loaded while the body runs (it cannot be evicted meanwhile)."""
        entry = self._acquire(target)
        try:
            yield
        finally:
            with self._lock:
                entry.in_flight -= 1
                entry.last_used = time.monotonic()
                if entry.in_flight == 0:
                    self._changed.notify_all()  # a load may be waiting for room

    def _acquire(self, target: str) -> _Entry:
        started = time.monotonic()
        waited = False
        while True:
            with self._lock:
                entry = self._entries.get(target)
                if entry is not None and entry.state == "ready":
                    entry.in_flight += 1
                    entry.last_used = time.monotonic()
                    break
                if entry is None:
                    entry = self._entries[target] = _Entry(target)
                    self._loader.submit(self._load, entry)
            waited = True
            remaining = self.load_wait_s - (time.monotonic() - started)
            if not entry.settled.wait(max(remaining, 0)):
                raise ModelNotReady(
                    f"Model {target} is still loading on endpoint {self.endpoint}; the load continues, "
                    "retry with backoff (SageMaker keeps loading for up to 360 s)."
                )
            if entry.error is not None:  # a fresh exception per waiting caller
                raise ContainerError(entry.error.status, entry.error.message)
            # ready: take it on the next pass; unloading: wait for it to go, then load again
        self.metric("ModelCacheHit", 0.0 if waited else 1.0, "Count")
        if waited:
            self.metric("ModelLoadingWaitTime", (time.monotonic() - started) * 1e6, "Microseconds")
        return entry

    # -- loading and unloading ---------------------------------------------------------------
    def _load(self, entry: _Entry) -> None:
        with self._lock:
            generation = self._generation  # as the load starts: a restart after this voids it
        download = self.downloads / f"{threading.get_ident()}-{time.monotonic_ns()}.tar.gz"
        try:
            started = time.monotonic()
            self.fetch(entry.target, download)
            self.metric("ModelDownloadingTime", (time.monotonic() - started) * 1e6, "Microseconds")
            staged = self.host.stage(download, entry.target)
            # staged: the download is no longer needed (gone before the load settles, so no caller
            # that waited on it ever sees it)
            download.unlink(missing_ok=True)
            entry.staged = staged
            for note in staged.notes:
                log.info("local MME %s: %s", self.endpoint, note)
            self._make_room(entry, staged.footprint_bytes)
            started = time.monotonic()
            self.host.load(staged)
            self.metric("ModelLoadingTime", (time.monotonic() - started) * 1e6, "Microseconds")
        except ContainerError as exc:
            self._forget(entry, self._restart_error(generation) or exc)
        except Exception as exc:  # every load ends settled, with a reason
            log.exception("local MME %s: loading %s failed", self.endpoint, entry.target)
            self._forget(entry, self._restart_error(generation) or ContainerError(500, f"loading failed: {exc}"))
        else:
            with self._lock:
                current = generation == self._generation
                if current:
                    entry.state = "ready"
                    entry.last_used = time.monotonic()
                    count = self._loaded_count()
                    self._changed.notify_all()
            if not current:  # the model server restarted meanwhile: what this load did is gone
                self._forget(entry, self._restart_error(generation) or ContainerError(503, "restarted"))
                return
            entry.settled.set()
            self.metric("LoadedModelCount", count, "Count")
            log.info("local MME %s: loaded %s (%.0f MiB)", self.endpoint, entry.target, entry.reserved_bytes / MiB)
        finally:
            download.unlink(missing_ok=True)

    def _restart_error(self, generation: int) -> ContainerError | None:
        with self._lock:
            if generation == self._generation:
                return None
        return ContainerError(503, "the model server restarted while the model was loading; retry")

    def _forget(self, entry: _Entry, error: ContainerError) -> None:
        if entry.staged is not None:
            try:
                self.host.unload(entry.staged)
            except Exception:  # best effort; the error below is what matters
                log.exception("local MME %s: cleaning up %s failed", self.endpoint, entry.target)
        with self._lock:
            entry.error = error
            if self._entries.get(entry.target) is entry:
                del self._entries[entry.target]
            self._changed.notify_all()
        entry.settled.set()
        log.warning(
            "local MME %s: %s failed to load (%s): %s", self.endpoint, entry.target, error.status, error.message
        )

    def _make_room(self, entry: _Entry, footprint: int) -> None:
        """Reserve ``footprint`` bytes, unloading idle models least recently used first.

        Only a model larger than the whole budget is refused at once (507). Otherwise, while
        other models are loading, unloading or serving, wait for them to settle: they may free
        enough. 507 if they have not within ``room_wait_s``.
        """
        if footprint > self.budget:
            raise ContainerError(
                507,
                f"Out of memory: {entry.target} needs about {footprint / MiB:.0f} MiB and the endpoint's "
                f"memory budget is {self.budget / MiB:.0f} MiB",
            )
        deadline = time.monotonic() + self.room_wait_s
        with self._lock:
            while True:
                others = [e for e in self._entries.values() if e is not entry]
                used = sum(e.reserved_bytes for e in others)
                idle = sorted((e for e in others if e.state == "ready" and e.in_flight == 0), key=lambda e: e.last_used)
                victims: list[_Entry] = []
                while used + footprint > self.budget and idle:
                    victim = idle.pop(0)
                    victims.append(victim)
                    used -= victim.reserved_bytes
                if used + footprint <= self.budget:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ContainerError(
                        507,
                        f"Out of memory: {entry.target} needs about {footprint / MiB:.0f} MiB and the models "
                        f"in use leave {max(self.budget - used, 0) / MiB:.0f} MiB of the {self.budget / MiB:.0f} "
                        "MiB budget",
                    )
                self._changed.wait(remaining)  # a load, unload or request finished: look again
            for victim in victims:
                victim.state = "unloading"
                victim.settled = threading.Event()  # callers now wait for it to go
            entry.reserved_bytes = footprint
        for victim in victims:
            self._unload(victim, reason=f"to make room for {entry.target}")

    def _unload(self, entry: _Entry, reason: str) -> None:
        started = time.monotonic()
        try:
            if entry.staged is not None:
                self.host.unload(entry.staged)
        except Exception:  # the model is gone from the cache either way
            log.exception("local MME %s: unloading %s failed", self.endpoint, entry.target)
        self.metric("ModelUnloadingTime", (time.monotonic() - started) * 1e6, "Microseconds")
        with self._lock:
            if self._entries.get(entry.target) is entry:
                del self._entries[entry.target]
            count = self._loaded_count()
            self._changed.notify_all()
        entry.settled.set()
        self.metric("LoadedModelCount", count, "Count")
        log.info("local MME %s: unloaded %s %s", self.endpoint, entry.target, reason)

    def _loaded_count(self) -> int:
        return sum(1 for e in self._entries.values() if e.state == "ready")

    # -- housekeeping ------------------------------------------------------------------------
    def forget_all(self) -> None:
        """The model server restarted empty: every model loads again on its next invoke.

        Loads under way fail as restarted (their generation is stale); unloads under way finish
        on their own, so a new load of the same model cannot race them."""
        with self._lock:
            self._generation += 1
            gone = [e for e in self._entries.values() if e.state == "ready"]
            for entry in gone:
                del self._entries[entry.target]
                entry.settled.set()
            self._changed.notify_all()

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return [
                LoadedModel(e.target, e.reserved_bytes, e.in_flight, e.last_used)
                for e in sorted(self._entries.values(), key=lambda e: e.last_used)
                if e.state == "ready"
            ]

    def close(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
        with self._lock:  # loads that will never run: their callers get an answer now
            for entry in list(self._entries.values()):
                if entry.state == "loading" and entry.staged is None:
                    entry.error = ContainerError(503, "the local MME is stopping")
                    entry.settled.set()


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event
