"""ModelRegistry against DynamoDB in-process (moto), on a table built from infra/template.yaml:
conditional registration, lifecycle-checked optimistic transitions, append-only history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.errors import RegistryError, TransitionRefused, VersionExists, VersionNotFound
from chalicelib.domain.lifecycle import Status, may_move
from chalicelib.domain.records import ModelVersion
from tests.unit.builders import a_version
from tests.unit.registry_table import TABLE

S = Status
MAIN_PATH = [S.RECEIVED, S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL]


class TickingClock:
    """Each reading is one second after the previous one, so every write has its own time."""

    def __init__(self, start: datetime = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) -> None:
        self._next = start

    def __call__(self) -> datetime:
        now, self._next = self._next, self._next + timedelta(seconds=1)
        return now


@pytest.fixture
def registry(dynamodb: Any) -> ModelRegistry:
    return ModelRegistry(TABLE, dynamodb, clock=TickingClock())


def version_record(version: str = "1", name: str = "fraud", etag: str = "etag-1", **changes: Any) -> ModelVersion:
    """A fresh upload (RECEIVED, in the ``staging`` bucket, uploaded 2025-01-01T00:00:00.000Z)."""
    return a_version(version, name, etag=etag, **changes)


def walk(registry: ModelRegistry, version: str, path: list[Status], name: str = "fraud") -> None:
    for status in path:
        registry.transition(name, version, status, "pipeline/test", f"to {status.value}")


def item_count(client: Any) -> int:
    return int(client.scan(TableName=TABLE, Select="COUNT")["Count"])


def test_the_test_table_has_the_templates_keys(dynamodb: Any) -> None:
    schema = dynamodb.describe_table(TableName=TABLE)["Table"]["KeySchema"]
    assert {k["AttributeName"]: k["KeyType"] for k in schema} == {"pk": "HASH", "sk": "RANGE"}


# -- register ------------------------------------------------------------------------------------
def test_register_creates_revision_one_with_a_history_entry(registry: ModelRegistry) -> None:
    # GIVEN an empty registry / WHEN a version is registered
    created = registry.register(version_record(), "s3-upload", "uploaded")
    # THEN it is stored at revision 1, stamped by the injected clock, with one history entry
    stored = registry.get("fraud", "1", with_history=True)
    assert (created.revision, stored.revision, stored.status) == (1, 1, S.RECEIVED)
    assert stored.updated_at == "2025-01-02T03:04:05.000Z"
    assert [(h.status, h.actor, h.reason, h.revision, h.at) for h in stored.history] == [
        (S.RECEIVED, "s3-upload", "uploaded", 1, "2025-01-02T03:04:05.000Z")
    ]


def test_registering_a_registered_version_raises_version_exists_and_keeps_the_first(
    registry: ModelRegistry, dynamodb: Any
) -> None:
    # GIVEN a registered version
    registry.register(version_record(etag="first"), "s3-upload")
    items = item_count(dynamodb)
    # WHEN the same name and version is registered again (a redelivered event, a re-upload)
    with pytest.raises(VersionExists) as raised:
        registry.register(version_record(etag="second"), "s3-upload")
    # THEN the error carries the registered record, and nothing was written
    assert raised.value.existing.etag == "first"
    assert registry.get("fraud", "1").etag == "first"
    assert len(registry.history("fraud", "1")) == 1
    assert item_count(dynamodb) == items


def test_a_rejected_registration_records_its_reason_in_history(registry: ModelRegistry) -> None:
    registry.register(version_record(status=S.REJECTED, reason="NAME_INVALID: bad name"), "s3-upload")
    assert [(h.status, h.reason) for h in registry.history("fraud", "1")] == [(S.REJECTED, "NAME_INVALID: bad name")]


def test_reading_an_unknown_version(registry: ModelRegistry) -> None:
    assert registry.find("fraud", "9") is None
    with pytest.raises(VersionNotFound, match="no version 9 of model fraud"):
        registry.get("fraud", "9")
    with pytest.raises(VersionNotFound):
        registry.transition("fraud", "9", S.VALIDATING, "pipeline/test")


# -- transition ----------------------------------------------------------------------------------
def test_transitions_append_history_in_order_with_actor_and_reason(registry: ModelRegistry) -> None:
    # GIVEN a registered version
    registry.register(version_record(), "s3-upload", "uploaded")
    # WHEN it moves along the main path
    registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "validating")
    moved = registry.transition("fraud", "1", S.VALIDATED, "pipeline/validate", "valid (0 warning(s))")
    # THEN each move is a new revision with its own history entry, in order
    assert moved.changed and moved.record.status is S.VALIDATED and moved.record.revision == 3
    stored = registry.get("fraud", "1", with_history=True)
    assert (stored.status, stored.revision, stored.reason) == (S.VALIDATED, 3, "valid (0 warning(s))")
    assert [(h.revision, h.status, h.actor, h.reason) for h in stored.history] == [
        (1, S.RECEIVED, "s3-upload", "uploaded"),
        (2, S.VALIDATING, "pipeline/validate", "validating"),
        (3, S.VALIDATED, "pipeline/validate", "valid (0 warning(s))"),
    ]
    assert [h.at for h in stored.history] == sorted(h.at for h in stored.history)
    assert len({h.at for h in stored.history}) == 3


def test_a_transition_applies_its_changes_in_the_same_write(registry: ModelRegistry) -> None:
    registry.register(version_record(), "s3-upload")
    registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate")
    seen: list[Status] = []

    def evidence(current: ModelVersion) -> dict[str, Any]:
        seen.append(current.status)
        return {"sha256": "ab" * 32, "metrics": {**current.metrics, "validation_ms": 12.5}}

    registry.transition("fraud", "1", S.VALIDATED, "pipeline/validate", "valid", evidence)
    stored = registry.get("fraud", "1")
    assert seen == [S.VALIDATING]  # computed from the record it replaces
    assert (stored.sha256, stored.metrics) == ("ab" * 32, {"validation_ms": 12.5})


def test_repeating_a_transition_is_a_no_op(registry: ModelRegistry) -> None:
    # GIVEN a version that already moved to VALIDATING
    registry.register(version_record(), "s3-upload")
    registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "first")
    # WHEN the same move is made again (a retried step)
    again = registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "second", lambda _: {"size": 1})
    # THEN nothing changes and no history entry is added
    assert not again.changed
    stored = registry.get("fraud", "1", with_history=True)
    assert (stored.revision, stored.reason, stored.size) == (2, "first", None)
    assert [h.reason for h in stored.history] == ["", "first"]


def test_a_backwards_move_is_refused_and_writes_nothing(registry: ModelRegistry, dynamodb: Any) -> None:
    # GIVEN a version that is VALIDATED
    registry.register(version_record(), "s3-upload")
    walk(registry, "1", [S.VALIDATING, S.VALIDATED])
    before, items = registry.get("fraud", "1", with_history=True), item_count(dynamodb)
    # WHEN something tries to move it back to VALIDATING
    with pytest.raises(TransitionRefused) as refused:
        registry.transition("fraud", "1", S.VALIDATING, "pipeline/validate", "late retry", lambda _: {"size": 7})
    # THEN the error names both statuses, and the record and history are untouched
    assert (refused.value.record.status, refused.value.wanted) == (S.VALIDATED, S.VALIDATING)
    assert "VALIDATED" in str(refused.value) and "VALIDATING" in str(refused.value)
    after = registry.get("fraud", "1", with_history=True)
    assert after == before and after.history == before.history
    assert item_count(dynamodb) == items


def test_an_ended_version_accepts_no_further_move(registry: ModelRegistry) -> None:
    registry.register(version_record(), "s3-upload")
    walk(registry, "1", [S.VALIDATING, S.REJECTED])
    for target in (S.VALIDATED, S.FAILED, S.WARMING):
        with pytest.raises(TransitionRefused):
            registry.transition("fraud", "1", target, "pipeline/test")
    assert registry.get("fraud", "1").status is S.REJECTED


# -- concurrent writers --------------------------------------------------------------------------
class InterleavingClient:
    """The registry's DynamoDB client, with a hook run just before its next write: another writer
    gets in between this writer's read and its conditional write."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.before_next_write: Callable[[], None] | None = None
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        self.writes += 1
        hook, self.before_next_write = self.before_next_write, None
        if hook:
            hook()
        return self._client.transact_write_items(**request)


def test_a_stale_writer_re_reads_and_is_refused_when_the_version_moved_on(dynamodb: Any) -> None:
    # GIVEN a VALIDATING version and two validators that both read it
    clock = TickingClock()
    client = InterleavingClient(dynamodb)
    slow, fast = ModelRegistry(TABLE, client, clock), ModelRegistry(TABLE, dynamodb, clock)
    slow.register(version_record(), "s3-upload")
    slow.transition("fraud", "1", S.VALIDATING, "pipeline/validate")
    # WHEN the fast one rejects it between the slow one's read and write of VALIDATED
    client.before_next_write = lambda: fast.transition("fraud", "1", S.REJECTED, "fast", "bad bytes")
    with pytest.raises(TransitionRefused):
        slow.transition("fraud", "1", S.VALIDATED, "slow", "valid")
    # THEN the slow write did not land: REJECTED stays, and history has no VALIDATED
    stored = slow.get("fraud", "1", with_history=True)
    assert stored.status is S.REJECTED
    assert [(h.revision, h.status) for h in stored.history] == [(1, S.RECEIVED), (2, S.VALIDATING), (3, S.REJECTED)]


def test_a_stale_writer_of_the_same_move_becomes_a_no_op(dynamodb: Any) -> None:
    # GIVEN two deliveries of the same step racing on one version
    clock = TickingClock()
    client = InterleavingClient(dynamodb)
    slow, fast = ModelRegistry(TABLE, client, clock), ModelRegistry(TABLE, dynamodb, clock)
    slow.register(version_record(), "s3-upload")
    client.before_next_write = lambda: fast.transition("fraud", "1", S.VALIDATING, "fast")
    # WHEN the slow one writes after the fast one made the same move
    moved = slow.transition("fraud", "1", S.VALIDATING, "slow")
    # THEN the slow one reports no change and wrote one history entry less than it tried
    assert not moved.changed and moved.record.revision == 2
    assert [(h.status, h.actor) for h in slow.history("fraud", "1")] == [
        (S.RECEIVED, "s3-upload"),
        (S.VALIDATING, "fast"),
    ]


def test_a_stale_writer_still_fails_a_version_that_moved_forward(dynamodb: Any) -> None:
    # GIVEN a WARMING version whose warm-up times out while the warm stage finishes it
    clock = TickingClock()
    client = InterleavingClient(dynamodb)
    slow, fast = ModelRegistry(TABLE, client, clock), ModelRegistry(TABLE, dynamodb, clock)
    slow.register(version_record(), "s3-upload")
    walk(slow, "1", [S.VALIDATING, S.VALIDATED, S.WARMING])
    client.before_next_write = lambda: fast.transition("fraud", "1", S.STAGED, "warm")
    # WHEN FAILED is written from a stale read of WARMING
    moved = slow.transition("fraud", "1", S.FAILED, "outcome", "timed out")
    # THEN it is re-checked against STAGED (FAILED is allowed there) and written after it
    assert moved.changed
    assert [h.status for h in slow.history("fraud", "1")][-2:] == [S.STAGED, S.FAILED]
    assert slow.get("fraud", "1").revision == 6


class SerialisedClient:
    """DynamoDB serialises the writes to one item; moto's in-process backend does not guard its
    check-then-write against threads, so each call is made atomic here as it is on AWS."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in ("exceptions", "get_paginator") or not callable(attribute):
            return attribute

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return atomic


def run_threads(workers: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(worker: Callable[[], None]) -> None:
        start.wait()
        try:
            worker()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_concurrent_writers_never_move_a_status_backwards(dynamodb: Any) -> None:
    # GIVEN a registered version and eight writers that each walk the whole main path
    registry = ModelRegistry(TABLE, SerialisedClient(dynamodb), TickingClock())
    registry.register(version_record(), "s3-upload")

    def walker() -> None:
        for status in MAIN_PATH[1:]:
            try:
                registry.transition("fraud", "1", status, threading.current_thread().name)
            except TransitionRefused as refused:
                # only refused because another writer already went further along the path
                assert MAIN_PATH.index(refused.record.status) > MAIN_PATH.index(status)

    # WHEN they run at once
    run_threads([walker] * 8)
    # THEN every status was entered exactly once, in order, with contiguous revisions
    stored = registry.get("fraud", "1", with_history=True)
    assert stored.status is S.AWAITING_APPROVAL
    assert [h.status for h in stored.history] == MAIN_PATH
    assert [h.revision for h in stored.history] == list(range(1, len(MAIN_PATH) + 1))
    assert stored.revision == len(MAIN_PATH)


def test_concurrent_walkers_and_failers_leave_a_history_of_allowed_moves(dynamodb: Any) -> None:
    # GIVEN walkers of the main path racing with writers that fail the version
    registry = ModelRegistry(TABLE, SerialisedClient(dynamodb), TickingClock())
    registry.register(version_record(), "s3-upload")

    def walker() -> None:
        for status in MAIN_PATH[1:]:
            try:
                registry.transition("fraud", "1", status, "walker")
            except RegistryError:
                return

    def failer() -> None:
        with suppress(RegistryError):
            registry.transition("fraud", "1", S.FAILED, "failer", "stage error")

    # WHEN they run at once
    run_threads([walker, failer, walker, walker, failer, walker])
    # THEN history is a chain of allowed moves with unique, contiguous revisions, ending FAILED
    stored = registry.get("fraud", "1", with_history=True)
    statuses = [h.status for h in stored.history]
    assert all(may_move(a, b) for a, b in pairwise(statuses)), statuses
    assert [h.revision for h in stored.history] == list(range(1, len(statuses) + 1))
    assert stored.revision == len(statuses)
    assert stored.status is S.FAILED and statuses.count(S.FAILED) == 1


# -- annotate ------------------------------------------------------------------------------------
def test_annotate_keeps_the_status_and_appends_history(registry: ModelRegistry) -> None:
    # GIVEN a VALIDATED version
    registry.register(version_record(), "s3-upload")
    walk(registry, "1", [S.VALIDATING, S.VALIDATED])
    # WHEN something is recorded about it
    noted = registry.annotate("fraud", "1", "pipeline/validate", "a later upload was refused", lambda _: {"size": 99})
    # THEN the status stays, the change is stored, and history has a new entry with the same status
    stored = registry.get("fraud", "1", with_history=True)
    assert (noted.status, stored.status, stored.size, stored.revision) == (S.VALIDATED, S.VALIDATED, 99, 4)
    assert [(h.revision, h.status, h.actor, h.reason) for h in stored.history][-1] == (
        4,
        S.VALIDATED,
        "pipeline/validate",
        "a later upload was refused",
    )


def test_annotate_after_a_concurrent_move_keeps_the_newer_status(dynamodb: Any) -> None:
    # GIVEN an annotation computed from a VALIDATING read, while the version becomes VALIDATED
    clock = TickingClock()
    client = InterleavingClient(dynamodb)
    slow, fast = ModelRegistry(TABLE, client, clock), ModelRegistry(TABLE, dynamodb, clock)
    slow.register(version_record(), "s3-upload")
    slow.transition("fraud", "1", S.VALIDATING, "pipeline/validate")
    client.before_next_write = lambda: fast.transition("fraud", "1", S.VALIDATED, "pipeline/validate")
    # WHEN the annotation is written
    slow.annotate("fraud", "1", "note", "noted", lambda _: {"size": 5})
    # THEN it did not put the old status back
    stored = slow.get("fraud", "1", with_history=True)
    assert (stored.status, stored.size) == (S.VALIDATED, 5)
    assert [h.status for h in stored.history] == [S.RECEIVED, S.VALIDATING, S.VALIDATED, S.VALIDATED]


# -- versions, keys and approvals ----------------------------------------------------------------
def test_versions_lists_records_only_oldest_upload_first(registry: ModelRegistry) -> None:
    # GIVEN two versions of a model, each with several history entries, and another model
    registry.register(version_record("2", uploaded_at="2025-01-03T00:00:00.000Z"), "s3-upload")
    registry.register(version_record("1", uploaded_at="2025-01-01T00:00:00.000Z"), "s3-upload")
    registry.register(version_record("1", name="other"), "s3-upload")
    walk(registry, "1", [S.VALIDATING, S.VALIDATED, S.WARMING])
    walk(registry, "2", [S.VALIDATING, S.REJECTED])
    # WHEN its versions are listed
    listed = registry.versions("fraud")
    # THEN the history items are not among them
    assert [(v.version, v.status) for v in listed] == [("1", S.WARMING), ("2", S.REJECTED)]
    assert all(v.history == [] for v in listed)
    assert registry.versions("nosuchmodel") == []


def test_versions_one_and_one_point_zero_keep_their_own_histories(registry: ModelRegistry) -> None:
    # GIVEN versions "1", "1.0" and "10" of one model (keys that share prefixes)
    for version in ("1", "1.0", "10"):
        registry.register(version_record(version), "s3-upload", f"uploaded {version}")
    walk(registry, "1", [S.VALIDATING, S.VALIDATED])
    walk(registry, "1.0", [S.VALIDATING, S.REJECTED])
    # WHEN their histories are read / THEN neither contains the other's entries
    assert [(h.status, h.reason) for h in registry.history("fraud", "1")] == [
        (S.RECEIVED, "uploaded 1"),
        (S.VALIDATING, "to VALIDATING"),
        (S.VALIDATED, "to VALIDATED"),
    ]
    assert [h.status for h in registry.history("fraud", "1.0")] == [S.RECEIVED, S.VALIDATING, S.REJECTED]
    assert [(h.status, h.reason) for h in registry.history("fraud", "10")] == [(S.RECEIVED, "uploaded 10")]
    assert {v.version: v.status for v in registry.versions("fraud")} == {
        "1": S.VALIDATED,
        "1.0": S.REJECTED,
        "10": S.RECEIVED,
    }


def test_an_approval_round_trips_and_its_id_is_short(registry: ModelRegistry) -> None:
    # GIVEN a pending approval with its Step Functions task token
    pending = registry.put_approval("fraud", "1", "task-token-" + "x" * 500)
    other = registry.put_approval("fraud", "1", "another-token")
    # WHEN it is looked up by its id / THEN the token comes back, stamped by the clock
    assert registry.find_approval(pending.approval_id) == pending
    assert pending.task_token == "task-token-" + "x" * 500
    assert pending.requested_at == "2025-01-02T03:04:05.000Z"
    assert pending.approval_id.startswith("apv_") and len(pending.approval_id) == 20
    assert other.approval_id != pending.approval_id
    assert registry.find_approval("apv_0000000000000000") is None


def test_approvals_are_not_versions(registry: ModelRegistry) -> None:
    registry.register(version_record(), "s3-upload")
    registry.put_approval("fraud", "1", "token")
    assert [v.version for v in registry.versions("fraud")] == ["1"]
