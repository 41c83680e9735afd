"""The registry's model index, version pages, routes and canary on DynamoDB in-process (moto), and
the API's readers of them: CanaryRequests (start/stop a canary) and ModelCatalog (model list, a
model's versions, KServe metadata and readiness)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.errors import Conflict, InvalidRequest, NotFound
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import Flip, ModelEntry
from chalicelib.domain.signature import ModelSummary, TensorSpec
from chalicelib.inference.api_contract import MAX_PAGE
from chalicelib.inference.canary import CanaryRequest, CanaryRequests
from chalicelib.inference.catalog import ModelCatalog, decode_token, encode_token, page_limit
from chalicelib.inference.routing import Router
from tests.unit.http_answers import http_status
from tests.unit.registry_table import TABLE
from tests.unit.test_registry import MAIN_PATH, TickingClock, version_record, walk

S = Status
TO_PROMOTING = [*MAIN_PATH, S.APPROVED, S.PROMOTING]  # RECEIVED -> ... -> PROMOTING


def served(version: str, input_type: str = "TYPE_FP32") -> ModelSummary:
    return ModelSummary(
        name=f"fraud_{version}.tar.gz",
        platform="ensemble",
        served=True,
        max_batch_size=8,
        inputs=[
            TensorSpec(name="IMAGE", data_type=input_type, dims=[3, -1]),
            TensorSpec(name="TEXT", data_type="TYPE_STRING", dims=[1]),
        ],
        outputs=[TensorSpec(name="SCORE", data_type="TYPE_FP64", dims=[2])],
    )


MEMBER = ModelSummary(name="preprocess", backend="python", served=False, max_batch_size=8)


@pytest.fixture
def registry(dynamodb: Any) -> ModelRegistry:
    return ModelRegistry(TABLE, dynamodb, clock=TickingClock())


def register(registry: ModelRegistry, version: str, path: list[Status], name: str = "fraud", **fields: Any) -> None:
    """Register a version (with its served model's signature) and walk it along ``path``."""
    fields.setdefault("models", [MEMBER, served(version)])
    registry.register(version_record(version, name=name, **fields), "s3-upload", "uploaded")
    walk(registry, version, path, name)


def promote(registry: ModelRegistry, version: str, name: str = "fraud") -> Flip:
    """Walk a registered version to PROMOTING (if it is not yet) and flip production to it."""
    current = registry.get(name, version).status
    walk(registry, version, TO_PROMOTING[TO_PROMOTING.index(current) + 1 :], name)
    alias = registry.find_alias(name)
    return registry.flip_production(name, version, alias.revision if alias else 0, "promotion/test", "promoted")


def index_entry(registry: ModelRegistry, name: str) -> ModelEntry:
    entries = {entry.name: entry for entry in registry.list_models(MAX_PAGE).models}
    return entries[name]


# -- the model index -----------------------------------------------------------------------------
def test_registering_creates_the_models_index_entry(registry: ModelRegistry) -> None:
    # GIVEN an empty registry / WHEN a model's first version is registered
    register(registry, "1", [])
    # THEN the index lists it, with the version as its latest, and nothing serving yet
    assert registry.list_models().models == [
        ModelEntry(name="fraud", latest_version="1", updated_at="2025-01-02T03:04:05.000Z")
    ]
    # AND a later version becomes the latest, without a second entry
    register(registry, "2", [S.VALIDATING])
    assert [(m.name, m.latest_version) for m in registry.list_models().models] == [("fraud", "2")]


def test_the_model_list_pages_in_name_order(registry: ModelRegistry) -> None:
    # GIVEN five models registered in no particular order (each with history items)
    names = ["echo", "alpha", "delta", "charlie", "bravo"]
    for name in names:
        register(registry, "1", [S.VALIDATING], name=name)
    # WHEN they are listed two at a time
    pages, after = [], None
    for _ in range(5):
        page = registry.list_models(2, after)
        pages.append(([m.name for m in page.models], page.next))
        after = page.next
        if after is None:
            break
    # THEN pages of 2, 2 and 1 in name order, each naming the last to continue after, None at the end
    assert pages == [(["alpha", "bravo"], "bravo"), (["charlie", "delta"], "delta"), (["echo"], None)]


def test_the_model_list_is_not_mixed_with_versions_or_approvals(registry: ModelRegistry) -> None:
    register(registry, "1", [S.VALIDATING, S.VALIDATED])
    registry.put_approval("fraud", "1", "token")
    page = registry.list_models(10)
    assert ([m.name for m in page.models], page.next) == (["fraud"], None)


class DynamoDbLimit:
    """The registry's client with DynamoDB's Query paging as AWS documents it: a Query that stops
    at its Limit returns a LastEvaluatedKey even when no item follows (moto omits it then)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **request: Any) -> Any:
        page = self._client.query(**request)
        if "Limit" in request and page["ScannedCount"] == request["Limit"] and "LastEvaluatedKey" not in page:
            last = page["Items"][-1]
            page["LastEvaluatedKey"] = {"pk": last["pk"], "sk": last["sk"]}
        return page


def test_a_model_list_ending_on_a_full_page_has_no_next(dynamodb: Any) -> None:
    # GIVEN four models, on DynamoDB's paging
    registry = ModelRegistry(TABLE, DynamoDbLimit(dynamodb), TickingClock())
    for name in ("a", "b", "c", "d"):
        register(registry, "1", [], name=name)
    # WHEN the second page of two is read / THEN it says it is the last
    first = registry.list_models(2)
    assert registry.list_models(2, first.next).next is None


# -- a model's versions --------------------------------------------------------------------------
@pytest.fixture
def five_versions(registry: ModelRegistry) -> list[str]:
    """Versions 1, 2, 3, 10, 11 of fraud, each with several history entries; key order is
    1, 10, 11, 2, 3. Another model, 'fraud2', sorts right after in its own partition."""
    for version, path in [
        ("1", [S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED]),
        ("2", [S.VALIDATING, S.REJECTED]),
        ("3", MAIN_PATH[1:]),
        ("10", [S.VALIDATING, S.VALIDATED]),
        ("11", [S.VALIDATING, S.VALIDATED, S.WARMING, S.FAILED]),
    ]:
        register(registry, version, path)
    register(registry, "1", [S.VALIDATING], name="fraud2")
    return ["1", "10", "11", "2", "3"]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 100])
def test_versions_page_through_records_only_with_an_exact_next(
    registry: ModelRegistry, five_versions: list[str], limit: int
) -> None:
    # WHEN fraud's versions are read page by page
    pages: list[tuple[list[str], str | None]] = []
    after = None
    while True:
        page = registry.versions_page("fraud", limit, after)
        assert all(record.history == [] for record in page.versions)
        pages.append(([record.version for record in page.versions], page.next))
        after = page.next
        if after is None or len(pages) > 10:
            break
    # THEN every version comes once, in key order, `limit` at a time; `next` is the last one
    # listed on every page but the last, where it is None
    expected = [five_versions[i : i + limit] for i in range(0, len(five_versions), limit)]
    assert [versions for versions, _ in pages] == expected
    assert [next_ for _, next_ in pages] == [chunk[-1] for chunk in expected[:-1]] + [None]


def test_versions_page_carries_each_versions_status(registry: ModelRegistry, five_versions: list[str]) -> None:
    page = registry.versions_page("fraud", 10)
    assert {r.version: r.status for r in page.versions} == {
        "1": S.STAGED,
        "2": S.REJECTED,
        "3": S.AWAITING_APPROVAL,
        "10": S.VALIDATED,
        "11": S.FAILED,
    }


def test_versions_page_of_an_unknown_model_is_empty(registry: ModelRegistry, five_versions: list[str]) -> None:
    assert (registry.versions_page("nosuch", 5).versions, registry.versions_page("nosuch", 5).next) == ([], None)
    assert registry.versions_page("fraud", 5, after="3").versions == []


class CountingQueries:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **request: Any) -> Any:
        self.queries += 1
        return self._client.query(**request)


def test_a_page_of_versions_costs_a_bounded_number_of_queries(dynamodb: Any) -> None:
    # GIVEN thirty versions of a model
    counting = CountingQueries(dynamodb)
    registry = ModelRegistry(TABLE, counting, TickingClock())
    for version in range(1, 31):
        register(registry, str(version), [S.VALIDATING])
    # WHEN the first page of two is read
    counting.queries = 0
    page = registry.versions_page("fraud", 2)
    # THEN it took a query for the page and at most two more to know whether more follow
    assert [r.version for r in page.versions] == ["1", "10"] and page.next == "10"
    assert counting.queries <= 3


# -- routes, canary, flip ------------------------------------------------------------------------
def test_routes_read_production_and_canary_together(registry: ModelRegistry) -> None:
    # GIVEN production version 1 and a canary of staged version 2
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    registry.put_canary("fraud", "2", 0.1, "admin@example.com")
    # WHEN the routes are read / THEN both come back
    routes = registry.routes("fraud")
    assert routes.production is not None and routes.canary is not None
    assert (routes.production.version, routes.production.revision) == ("1", 1)
    assert (routes.canary.version, routes.canary.weight, routes.canary.actor) == ("2", 0.1, "admin@example.com")
    # AND a model with neither has empty routes
    assert (registry.routes("nosuch").production, registry.routes("nosuch").canary) == (None, None)


def test_put_and_delete_canary_keep_the_index(registry: ModelRegistry) -> None:
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    register(registry, "3", MAIN_PATH[1:])
    # WHEN a canary starts / THEN the index names it
    registry.put_canary("fraud", "2", 0.1, "admin")
    assert (index_entry(registry, "fraud").production_version, index_entry(registry, "fraud").canary_version) == (
        "1",
        "2",
    )
    # AND re-pointing it replaces it
    registry.put_canary("fraud", "3", 0.3, "admin")
    routes = registry.routes("fraud")
    assert routes.canary is not None and (routes.canary.version, routes.canary.weight) == ("3", 0.3)
    assert index_entry(registry, "fraud").canary_version == "3"
    # WHEN it is deleted / THEN it is returned, the routes and the index drop it, and a second delete finds none
    ended = registry.delete_canary("fraud")
    assert ended is not None and ended.version == "3"
    assert registry.routes("fraud").canary is None
    assert index_entry(registry, "fraud").canary_version is None
    assert index_entry(registry, "fraud").production_version == "1"
    assert registry.delete_canary("fraud") is None


def test_promoting_the_canarys_version_ends_the_canary(registry: ModelRegistry) -> None:
    # GIVEN production version 1 and a canary of version 2, awaiting approval
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    registry.put_canary("fraud", "2", 0.25, "admin")
    # WHEN version 2 is promoted
    flip = promote(registry, "2")
    # THEN it serves all the traffic: no canary, and the index says so
    assert (flip.alias.version, flip.alias.previous) == ("2", "1")
    assert flip.retired is not None and flip.retired.version == "1"
    routes = registry.routes("fraud")
    assert routes.canary is None and routes.production is not None and routes.production.version == "2"
    entry = index_entry(registry, "fraud")
    assert (entry.production_version, entry.canary_version, entry.latest_version) == ("2", None, "2")


def test_promoting_another_version_keeps_the_canary(registry: ModelRegistry) -> None:
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    register(registry, "3", MAIN_PATH[1:])
    registry.put_canary("fraud", "2", 0.25, "admin")
    promote(registry, "3")
    routes = registry.routes("fraud")
    assert routes.canary is not None and routes.canary.version == "2"
    assert routes.production is not None and routes.production.version == "3"
    entry = index_entry(registry, "fraud")
    assert (entry.production_version, entry.canary_version) == ("3", "2")


def test_the_first_promotion_sets_the_indexs_production_version(registry: ModelRegistry) -> None:
    register(registry, "1", [])
    assert index_entry(registry, "fraud").production_version is None
    promote(registry, "1")
    assert index_entry(registry, "fraud").production_version == "1"


# -- CanaryRequests ------------------------------------------------------------------------------
@pytest.fixture
def canaries(registry: ModelRegistry) -> CanaryRequests:
    """fraud: 1 PRODUCTION, 2 AWAITING_APPROVAL, 3 REJECTED, 4 STAGED; fresh: 1 STAGED (no production)."""
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    register(registry, "3", [S.VALIDATING, S.REJECTED])
    register(registry, "4", MAIN_PATH[1:-1])
    register(registry, "1", MAIN_PATH[1:-1], name="fresh")
    return CanaryRequests(registry)


def test_a_canary_needs_a_production_version(canaries: CanaryRequests) -> None:
    with pytest.raises(NotFound, match="fresh has no production version") as raised:
        canaries.start("fresh", CanaryRequest(version="1", weight=0.1), "admin")
    assert http_status(raised.value) == 404


def test_a_canary_of_an_unknown_version_is_not_found(canaries: CanaryRequests) -> None:
    with pytest.raises(NotFound, match="fraud has no version 9"):
        canaries.start("fraud", CanaryRequest(version="9", weight=0.1), "admin")
    with pytest.raises(NotFound):
        canaries.start("nosuch", CanaryRequest(version="1", weight=0.1), "admin")


@pytest.mark.parametrize(("version", "words"), [("1", "already serves all the traffic"), ("3", "is REJECTED")])
def test_a_canary_of_production_or_a_rejected_version_conflicts(
    canaries: CanaryRequests, registry: ModelRegistry, version: str, words: str
) -> None:
    with pytest.raises(Conflict, match=words) as raised:
        canaries.start("fraud", CanaryRequest(version=version, weight=0.1), "admin")
    assert http_status(raised.value) == 409
    assert registry.routes("fraud").canary is None


def test_a_canary_of_a_retired_version_conflicts(canaries: CanaryRequests, registry: ModelRegistry) -> None:
    # GIVEN version 2 promoted, so 1 is RETIRED and 2 is PRODUCTION
    promote(registry, "2")
    assert registry.get("fraud", "1").status is S.RETIRED
    for version in ("1", "2"):
        with pytest.raises(Conflict):
            canaries.start("fraud", CanaryRequest(version=version, weight=0.1), "admin")


def test_a_canary_starts_for_a_staged_candidate_and_is_recorded(
    canaries: CanaryRequests, registry: ModelRegistry
) -> None:
    # WHEN an admin starts a canary of version 2 (AWAITING_APPROVAL) at 25%
    before = registry.get("fraud", "2")
    answer = canaries.start("fraud", CanaryRequest(version="2", weight=0.25), "admin@example.com")
    # THEN the answer names production and the canary, which the routes now carry
    assert (answer.name, answer.production, answer.action) == ("fraud", "1", "canary started")
    assert answer.canary is not None and (answer.canary.version, answer.canary.weight) == ("2", 0.25)
    assert registry.routes("fraud").canary == answer.canary
    assert index_entry(registry, "fraud").canary_version == "2"
    # AND version 2's history says so, its status unchanged
    after = registry.get("fraud", "2", with_history=True)
    assert after.status is before.status is S.AWAITING_APPROVAL
    assert (after.history[-1].actor, after.history[-1].reason) == (
        "admin@example.com",
        "canary: 25.0% of fraud's traffic",
    )


def test_a_staged_version_may_be_a_canary(canaries: CanaryRequests) -> None:
    answer = canaries.start("fraud", CanaryRequest(version="4", weight=0.5), "admin")
    assert answer.canary is not None and answer.canary.version == "4"


def test_stopping_a_canary_returns_it_and_a_second_stop_is_not_found(
    canaries: CanaryRequests, registry: ModelRegistry
) -> None:
    canaries.start("fraud", CanaryRequest(version="2", weight=0.25), "admin")
    # WHEN it is stopped / THEN the ended canary comes back, and it is gone
    answer = canaries.stop("fraud", "oncall@example.com")
    assert (answer.production, answer.action) == ("1", "canary ended")
    assert answer.canary is not None and answer.canary.version == "2"
    assert registry.routes("fraud").canary is None
    assert registry.history("fraud", "2")[-1].reason == "canary ended"
    assert registry.history("fraud", "2")[-1].actor == "oncall@example.com"
    with pytest.raises(NotFound, match="fraud has no canary"):
        canaries.stop("fraud", "oncall@example.com")


@pytest.mark.parametrize("weight", [0, 1, -0.1, 1.5])
def test_a_canary_weight_is_a_share_strictly_between_nothing_and_all(weight: float) -> None:
    with pytest.raises(ValidationError):
        CanaryRequest(version="2", weight=weight)


# -- ModelCatalog --------------------------------------------------------------------------------
@pytest.fixture
def catalog(registry: ModelRegistry) -> ModelCatalog:
    return ModelCatalog(registry, Router(registry, "staging", "production", ttl_s=0), registry)


@pytest.mark.parametrize("value", ["fraud", "a_b-c", "x" * 63, "1.2.10", "ünïcode"])
def test_page_tokens_round_trip_and_are_query_string_safe(value: str) -> None:
    token = encode_token(value)
    assert token is not None and decode_token(token) == value
    assert all(c.isalnum() or c in "-_=" for c in token)


def test_an_empty_token_means_the_first_page() -> None:
    assert (encode_token(None), encode_token(""), decode_token(None), decode_token("")) == (None, None, None, None)


@pytest.mark.parametrize("token", ["abc", "__4=", "Zm9vYmE"])
def test_a_garbage_token_is_a_bad_request(token: str) -> None:
    # "abc" and "Zm9vYmE" are not padded base64, "__4=" decodes to bytes that are not UTF-8
    with pytest.raises(InvalidRequest, match="not a page token") as raised:
        decode_token(token)
    assert http_status(raised.value) == 400


@pytest.mark.parametrize("token", ["!!!!", "%%%", "Zm9v!"])
def test_a_token_with_characters_outside_base64_is_a_bad_request(token: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_token(token)


def test_models_pages_round_trip_their_tokens(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    # GIVEN five models
    for name in ("m1", "m2", "m3", "m4", "m5"):
        register(registry, "1", [], name=name)
    # WHEN the API's pages are followed by their tokens
    seen: list[list[str]] = []
    token = None
    for _ in range(5):
        view = catalog.models(2, token)
        seen.append([m.name for m in view.models])
        token = view.next
        if token is None:
            break
        assert decode_token(token) == seen[-1][-1]  # the token is opaque, but is the last name
    # THEN every model comes once, in order, and the last page has no token
    assert seen == [["m1", "m2"], ["m3", "m4"], ["m5"]]


def test_models_refuses_a_garbage_token(catalog: ModelCatalog) -> None:
    with pytest.raises(InvalidRequest):
        catalog.models(10, "abc")


@pytest.mark.parametrize(("value", "limit"), [(None, 100), ("1", 1), ("42", 42), (str(MAX_PAGE), MAX_PAGE)])
def test_page_limit_takes_a_number_in_bounds(value: str | None, limit: int) -> None:
    assert page_limit(value) == limit


@pytest.mark.parametrize("value", ["0", str(MAX_PAGE + 1), "-1", "abc", "", "1.5", " 5", "1e3"])
def test_page_limit_refuses_anything_else(value: str) -> None:
    with pytest.raises(InvalidRequest, match="limit must be a number from 1 to 1000"):
        page_limit(value)


def test_page_limit_refuses_superscript_digits() -> None:
    with pytest.raises(InvalidRequest):
        page_limit("²")


def test_model_lists_versions_with_aliases_and_pages(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    # GIVEN production version 1, a canary of 2 and a rejected 3
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    register(registry, "3", [S.VALIDATING, S.REJECTED])
    registry.put_canary("fraud", "2", 0.2, "admin")
    # WHEN the model is read two versions at a time
    first = catalog.model("fraud", 2, None)
    second = catalog.model("fraud", 2, first.next)
    # THEN the aliases come with each page, and the versions page through with their statuses
    assert first.production is not None and first.production.version == "1"
    assert first.canary is not None and first.canary.version == "2"
    assert [(v.version, v.status) for v in first.versions] == [("1", "PRODUCTION"), ("2", "AWAITING_APPROVAL")]
    assert first.next is not None and decode_token(first.next) == "2"
    assert [(v.version, v.status, v.reason) for v in second.versions] == [("3", "REJECTED", "to REJECTED")]
    assert second.next is None


def test_an_unknown_model_is_not_found(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    register(registry, "1", [])
    with pytest.raises(NotFound, match="unknown model nosuch") as raised:
        catalog.model("nosuch", 10, None)
    assert http_status(raised.value) == 404


def test_a_version_is_read_with_its_history(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    register(registry, "1", [S.VALIDATING, S.VALIDATED])
    view = catalog.version("fraud", "1")
    assert (view["version"], view["status"]) == ("1", "VALIDATED")
    assert [h["status"] for h in view["history"]] == ["RECEIVED", "VALIDATING", "VALIDATED"]
    assert view["models"][1]["inputs"][0]["name"] == "IMAGE"
    with pytest.raises(NotFound, match="no version 2"):
        catalog.version("fraud", "2")


def test_a_models_version_lines_carry_upload_time_and_revision(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    # what `mmedeploy status NAME` shows (oldest upload first) and promote's baseline revision
    register(registry, "1", [S.VALIDATING, S.VALIDATED])
    [line] = catalog.model("fraud", 10, None).versions
    record = registry.get("fraud", "1")
    assert (line.uploaded_at, line.revision) == (record.uploaded_at, record.revision) and line.revision == 3


def test_a_versions_approval_is_read_without_its_task_token(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    # GIVEN a version awaiting approval, whose request was posted in Slack
    register(registry, "1", [])
    approval = registry.put_approval("fraud", "1", "the-task-token")
    registry.set_approval_message(approval.approval_id, "C0APPROVALS", "1700000000.000100")
    registry.transition("fraud", "1", S.VALIDATING, "t")
    registry.transition("fraud", "1", S.VALIDATED, "t")
    registry.transition("fraud", "1", S.WARMING, "t")
    registry.transition("fraud", "1", S.STAGED, "t")
    registry.transition(
        "fraud", "1", S.AWAITING_APPROVAL, "t", "asked", lambda _: {"approval_id": approval.approval_id}
    )
    # WHEN its approval is read / THEN where the message is, and never the task token
    view = catalog.approval("fraud", "1")
    assert (view["approval_id"], view["slack_channel"], view["slack_ts"]) == (
        approval.approval_id,
        "C0APPROVALS",
        "1700000000.000100",
    )
    assert "task_token" not in view and "the-task-token" not in json.dumps(view) and view["decision"] is None
    # AND a version never asked, or unknown, is not found
    register(registry, "2", [])
    with pytest.raises(NotFound, match="no approval was requested for fraud 2; it is RECEIVED") as raised:
        catalog.approval("fraud", "2")
    assert http_status(raised.value) == 404
    with pytest.raises(NotFound, match="no version 3"):
        catalog.approval("fraud", "3")


def test_kserve_metadata_of_the_production_version(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    # GIVEN production 1, a staged 2 and a rejected 3
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:-1])
    register(registry, "3", [S.VALIDATING, S.REJECTED])
    # WHEN the model's metadata is read
    metadata = catalog.kserve_metadata("fraud")
    # THEN it lists the versions that serve, the platform, and the served model's tensors as KServe
    # names them, with the batch dimension first
    assert metadata == {
        "name": "fraud",
        "versions": ["1", "2"],
        "platform": "ensemble",
        "inputs": [
            {"name": "IMAGE", "datatype": "FP32", "shape": [-1, 3, -1]},
            {"name": "TEXT", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [{"name": "SCORE", "datatype": "FP64", "shape": [-1, 2]}],
    }


def test_kserve_metadata_of_a_pinned_version(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:], models=[served("2", "TYPE_INT8")])
    metadata = catalog.kserve_metadata("fraud", "2")
    assert metadata["versions"] == ["2"]
    assert metadata["inputs"][0] == {"name": "IMAGE", "datatype": "INT8", "shape": [-1, 3, -1]}
    register(registry, "3", [S.VALIDATING, S.REJECTED])
    with pytest.raises(NotFound, match="is REJECTED"):
        catalog.kserve_metadata("fraud", "3")


def test_kserve_metadata_without_a_recorded_signature_is_not_found(
    catalog: ModelCatalog, registry: ModelRegistry
) -> None:
    register(registry, "1", [], models=[])
    promote(registry, "1")
    with pytest.raises(NotFound, match="no recorded signature"):
        catalog.kserve_metadata("fraud")
    with pytest.raises(NotFound, match="unknown model nosuch"):
        catalog.kserve_metadata("nosuch")


def test_kserve_metadata_of_a_model_with_a_canary_is_productions(registry: ModelRegistry) -> None:
    # GIVEN production 1 (FP32 input) and a canary of 2 whose input is INT8
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:], models=[served("2", "TYPE_INT8")])
    registry.put_canary("fraud", "2", 0.5, "admin")
    catalog = ModelCatalog(registry, Router(registry, "staging", "production", ttl_s=0, chance=lambda: 0.0), registry)
    # WHEN the model's metadata and readiness are read / THEN they describe production, not the canary
    assert catalog.kserve_metadata("fraud")["inputs"][0]["datatype"] == "FP32"
    assert catalog.ready("fraud")["version"] == "1"


def test_ready_names_the_version_a_request_would_get(catalog: ModelCatalog, registry: ModelRegistry) -> None:
    register(registry, "1", [])
    promote(registry, "1")
    register(registry, "2", MAIN_PATH[1:])
    register(registry, "3", [S.VALIDATING, S.REJECTED])
    assert catalog.ready("fraud") == {"name": "fraud", "version": "1", "ready": True}
    assert catalog.ready("fraud", "2") == {"name": "fraud", "version": "2", "ready": True}
    for name, version in (("fraud", "3"), ("fraud", "9"), ("nosuch", None)):
        with pytest.raises(NotFound):
            catalog.ready(name, version)


def test_random_tokens_never_crash_decoding() -> None:
    # GIVEN arbitrary strings as tokens / THEN each is a value or a InvalidRequest, never another error
    rng = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/!%\u00e9"
    for _ in range(500):
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))
        try:
            decoded = decode_token(token)
        except InvalidRequest:
            continue
        assert decoded is None or isinstance(decoded, str)
