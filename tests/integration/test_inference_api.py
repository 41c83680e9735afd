"""The inference API end to end on the local stack, through a consumer's own Triton client
(``tritonclient.http``) pointed at the API: metadata, readiness, JSON and binary-tensor inference
of the example ensemble, every error with its status, token scopes, a canary, and a promotion
reaching requests within the route cache's TTL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from examples.build_examples import build_test_cases
from mmedeploy.local.stack import StackInfo
from testkit.http import call_api
from testkit.stack_process import mmedeploy
from testkit.tarballs import idcheck_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "kserve"
# the example's smoke-test cases (generated, like its binaries: not read from a file a clean clone lacks)
CASES = {name.removesuffix(".json"): json.loads(case) for name, case in build_test_cases().items()}


def features(case: str) -> np.ndarray:
    return np.array(CASES[case]["inputs"][0]["data"], dtype=np.float32).reshape(1, 16)


def expected_probabilities(case: str) -> np.ndarray:
    return np.array(CASES[case]["outputs"][0]["data"], dtype=np.float32).reshape(1, 4)


def v2_repo() -> dict[str, bytes | None]:
    """Version 2 answers "v2:<decision>", so which version served shows in the answer (its smoke
    tests would expect the old words: it goes without, the warm stage synthesises a request)."""
    files = {k: v for k, v in idcheck_repo("2").items() if not k.startswith("tests/")}
    post = files["idcheck_postprocessing/1/model.py"]
    assert post is not None
    files["idcheck_postprocessing/1/model.py"] = re.sub(rb'b"([a-z_]+)"', rb'b"v2:\1"', post)
    return files


class Api:
    """Raw HTTP against the API, for status codes and headers tritonclient does not show."""

    def __init__(self, info: StackInfo) -> None:
        self.info = info

    def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return call_api(self.info.api_url, method, path, sent, body)

    def infer(self, path: str, request: dict[str, Any], token: str | None = "invoke") -> tuple[int, dict[str, Any]]:
        status, _, body = self.call("POST", path, self.token(token), json.dumps(request).encode())
        return status, json.loads(body)

    def token(self, which: str | None) -> str | None:
        return {"invoke": self.info.api_token, "admin": self.info.admin_token}.get(which or "", which)


def reach(registry: ModelRegistry, version: str, statuses: set[Status], timeout: float = 120) -> ModelVersion:
    def probe() -> ModelVersion | None:
        record = registry.find(NAME, version)
        return record if record and record.status in statuses else None

    return wait_for(probe, timeout, f"{NAME} {version} to become one of {sorted(statuses)}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def registry(local_stack: StackInfo, aws: Callable[[str], Any]) -> ModelRegistry:
    return ModelRegistry(local_stack.registry_table, aws("dynamodb"))


@pytest.fixture(scope="module")
def api(local_stack: StackInfo) -> Api:
    return Api(local_stack)


@pytest.fixture(scope="module")
def production(local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry, api: Api) -> ModelVersion:
    """The example ensemble as model ``kserve`` version 1, pushed, approved by an admin, serving."""
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key=f"{NAME}_1.tar.gz", Body=pack(idcheck_repo("1")))
    awaiting = reach(registry, "1", {Status.AWAITING_APPROVAL, Status.FAILED, Status.REJECTED})
    assert awaiting.status is Status.AWAITING_APPROVAL, awaiting.reason
    status, _, body = api.call("POST", f"/models/{NAME}/versions/1/promote", local_stack.admin_token, b"{}")
    assert status == 202, body
    record = reach(registry, "1", {Status.PRODUCTION, Status.FAILED})
    assert record.status is Status.PRODUCTION, record.reason
    return record


@pytest.fixture(scope="module")
def client(local_stack: StackInfo) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=local_stack.api_url.removeprefix("http://"), network_timeout=60)


def auth(info: StackInfo) -> dict[str, str]:
    return {"Authorization": f"Bearer {info.api_token}"}


# -- a consumer's Triton client, unchanged ---------------------------------------------------------
def test_a_triton_client_reads_health_metadata_and_readiness(
    client: triton.InferenceServerClient, local_stack: StackInfo, production: ModelVersion
) -> None:
    # GIVEN kserve 1 in production / WHEN a Triton client asks the API as it would ask Triton
    assert client.is_server_live() and client.is_server_ready()  # no token needed
    assert client.is_model_ready(NAME, headers=auth(local_stack))
    assert client.is_model_ready(NAME, "1", headers=auth(local_stack))
    metadata = client.get_model_metadata(NAME, headers=auth(local_stack))
    # THEN the metadata is the served ensemble's, in KServe v2 terms
    assert (metadata["name"], metadata["platform"]) == (NAME, "ensemble")
    assert "1" in metadata["versions"]
    assert metadata["inputs"] == [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [-1, 16]}]
    assert {o["name"]: (o["datatype"], o["shape"]) for o in metadata["outputs"]} == {
        "PROBABILITIES": ("FP32", [-1, 4]),
        "DECISION": ("BYTES", [-1, 1]),
    }
    assert client.get_server_metadata(headers=auth(local_stack))["extensions"] == ["binary_tensor_data"]
    assert not client.is_model_ready("no-such-model", headers=auth(local_stack))


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-tensors"])
def test_a_triton_client_infers_the_ensemble(
    client: triton.InferenceServerClient, local_stack: StackInfo, production: ModelVersion, binary: bool
) -> None:
    for case in ("approved", "declined"):
        # GIVEN one of the example's test cases, sent as JSON or as binary tensors both ways
        data = triton.InferInput("RAW_FEATURES", [1, 16], "FP32")
        data.set_data_from_numpy(features(case), binary_data=binary)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("PROBABILITIES", "DECISION")]
        # WHEN it infers through the API
        result = client.infer(NAME, [data], outputs=outputs, headers=auth(local_stack))
        # THEN Triton's answer comes back, naming the model as called and the version that served
        response = result.get_response()
        assert (response["model_name"], response["model_version"]) == (NAME, "1")
        np.testing.assert_allclose(result.as_numpy("PROBABILITIES"), expected_probabilities(case), atol=2e-3)
        decisions = [d.decode() if isinstance(d, bytes) else d for d in result.as_numpy("DECISION").ravel()]
        assert decisions == [case]
        assert all(("binary_data_size" in o.get("parameters", {})) is binary for o in response["outputs"])


def test_a_pinned_version_is_served_and_named(
    client: triton.InferenceServerClient, local_stack: StackInfo, production: ModelVersion
) -> None:
    data = triton.InferInput("RAW_FEATURES", [1, 16], "FP32")
    data.set_data_from_numpy(features("approved"))
    result = client.infer(NAME, [data], model_version="1", headers=auth(local_stack))
    assert result.get_response()["model_version"] == "1"
    with pytest.raises(InferenceServerException, match="has no version 9"):
        client.infer(NAME, [data], model_version="9", headers=auth(local_stack))


# -- errors, each with its status and KServe's {"error": ...} ---------------------------------------
def test_each_error_has_its_status_and_a_kserve_body(api: Api, production: ModelVersion) -> None:
    good = {"inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [0.0] * 16}]}
    infer = f"/v2/models/{NAME}/infer"
    unknown_input = json.dumps({"inputs": [{**good["inputs"][0], "name": "X"}]}).encode()
    wrong_shape = json.dumps({"inputs": [{**good["inputs"][0], "shape": [1, 15]}]}).encode()
    past_the_body = {"Inference-Header-Content-Length": "99999"}
    canary = f"/models/{NAME}/canary"
    cases: list[tuple[str, int, str, bytes, dict[str, str], str | None]] = [
        ("unknown model", 404, "/v2/models/nobody/infer", json.dumps(good).encode(), {}, "invoke"),
        ("not JSON", 400, infer, b"{not json", {}, "invoke"),
        ("no inputs", 400, infer, b'{"outputs": []}', {}, "invoke"),
        ("unknown input", 400, infer, unknown_input, {}, "invoke"),
        ("wrong shape", 400, infer, wrong_shape, {}, "invoke"),
        ("header length past the body", 400, infer, json.dumps(good).encode(), past_the_body, "invoke"),
        ("over 6 MB", 413, infer, b"{" + b" " * (6 * 1024 * 1024) + b"}", {}, "invoke"),
        ("no token", 401, infer, json.dumps(good).encode(), {}, None),
        ("unknown token", 401, infer, json.dumps(good).encode(), {}, "mmd_not-a-token"),
        ("invoke token on an admin route", 403, canary, b'{"version": "1", "weight": 0.1}', {}, "invoke"),
    ]  # fmt: skip
    for what, expected, path, body, headers, token in cases:
        status, _, answer = api.call("POST", path, api.token(token), body, headers)
        assert status == expected, (what, answer[:300])
        error = json.loads(answer)["error"]
        assert isinstance(error, str) and error, what


def test_a_model_error_is_a_502_with_tritons_message(
    api: Api, local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry, production: ModelVersion
) -> None:
    # GIVEN a staged version whose post-processing fails on one input (it passes its smoke tests)
    files = idcheck_repo("3")
    post = files["idcheck_postprocessing/1/model.py"]
    assert post is not None
    files["idcheck_postprocessing/1/model.py"] = post.replace(
        b"    def execute(self, requests):\n",
        b"    def execute(self, requests):\n"
        b"        logits = [pb_utils.get_input_tensor_by_name(r, 'LOGITS').as_numpy() for r in requests]\n"
        b"        if not all(np.isfinite(x).all() for x in logits):\n"
        b"            raise pb_utils.TritonModelException('logits out of range')\n",
    )
    assert files["idcheck_postprocessing/1/model.py"] != post, "the example's execute() moved: update this test"
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key=f"{NAME}_3.tar.gz", Body=pack(files))
    staged = reach(registry, "3", {Status.AWAITING_APPROVAL, Status.FAILED, Status.REJECTED})
    assert staged.status is Status.AWAITING_APPROVAL, staged.reason
    # WHEN a pinned request makes it fail
    huge = {"inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [3e38] * 16}]}
    status, answer = api.infer(f"/v2/models/{NAME}/versions/3/infer", huge)
    # THEN 502, with Triton's words
    assert status == 502, answer
    assert "logits out of range" in answer["error"]


# -- tokens ---------------------------------------------------------------------------------------
def test_tokens_of_each_scope(api: Api, production: ModelVersion) -> None:
    for path in ("/health", "/v2/health/ready", "/v2/health/live"):
        assert api.call("GET", path, None)[0] == 200, path
    for path in ("/models", f"/models/{NAME}", f"/models/{NAME}/versions/1", f"/v2/models/{NAME}"):
        assert api.call("GET", path, None)[0] == 401, path
        assert api.call("GET", path, api.token("invoke"))[0] == 200, path
        assert api.call("GET", path, api.token("admin"))[0] == 200, path
    assert api.call("DELETE", f"/models/{NAME}/canary", api.token("invoke"))[0] == 403
    assert api.call("POST", f"/models/{NAME}/rollback", api.token("invoke"), b"{}")[0] == 403


def test_the_registry_routes_page_and_describe(api: Api, production: ModelVersion) -> None:
    names: list[str] = []
    token: str | None = None
    while True:
        query = "/models?limit=1" + (f"&next={token}" if token else "")
        status, _, body = api.call("GET", query, api.token("invoke"))
        assert status == 200, body
        page = json.loads(body)
        assert len(page["models"]) <= 1
        names += [m["name"] for m in page["models"]]
        token = page["next"]
        if not token:
            break
    assert NAME in names and names == sorted(names)
    model = json.loads(api.call("GET", f"/models/{NAME}", api.token("invoke"))[2])
    assert model["production"]["version"] == "1"
    version = json.loads(api.call("GET", f"/models/{NAME}/versions/1", api.token("invoke"))[2])
    assert version["status"] == "PRODUCTION" and version["history"][-1]["status"] == "PRODUCTION"
    assert api.call("GET", "/models?limit=0", api.token("invoke"))[0] == 400


def test_the_cli_invokes_and_lists_through_the_api(
    local_stack_dir: Path, tmp_path: Path, production: ModelVersion
) -> None:
    case = tmp_path / "approved.json"
    case.write_text(json.dumps(CASES["approved"]))
    state = ("--state-dir", str(local_stack_dir))
    invoked = mmedeploy("invoke", NAME, "--data", str(case), "--json", *state)
    assert invoked.returncode == 0, invoked.stderr
    answer = json.loads(invoked.stdout)
    assert (answer["served_version"], answer["route"], answer["http_status"]) == ("1", "production", 200)
    decision = next(o for o in answer["outputs"] if o["name"] == "DECISION")
    assert decision["data"] == ["approved"]
    missing = mmedeploy("invoke", "nobody", "--data", str(case), *state)
    assert missing.returncode == 1 and "404" in missing.stderr
    listed = mmedeploy("models", "--json", *state)
    assert listed.returncode == 0, listed.stderr
    assert NAME in [m["name"] for m in json.loads(listed.stdout)["models"]]


# -- canary and promotion --------------------------------------------------------------------------
def served_versions(api: Api, count: int) -> list[tuple[str, str]]:
    """(version header, DECISION) of ``count`` requests for the approved case."""
    request = {"inputs": [{**CASES["approved"]["inputs"][0]}]}
    seen = []
    for _ in range(count):
        status, headers, body = api.call(
            "POST", f"/v2/models/{NAME}/infer", api.token("invoke"), json.dumps(request).encode()
        )
        assert status == 200, body
        decision = next(o for o in json.loads(body)["outputs"] if o["name"] == "DECISION")["data"][0]
        seen.append((headers["Mmedeploy-Model-Version"], decision))
    return seen


def test_a_canary_splits_traffic_and_a_promotion_reaches_requests_within_the_ttl(
    api: Api,
    local_stack: StackInfo,
    local_stack_dir: Path,
    aws: Callable[[str], Any],
    registry: ModelRegistry,
    production: ModelVersion,
) -> None:
    # GIVEN version 2 staged and awaiting approval beside version 1 in production
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key=f"{NAME}_2.tar.gz", Body=pack(v2_repo()))
    assert reach(registry, "2", {Status.AWAITING_APPROVAL, Status.FAILED}).status is Status.AWAITING_APPROVAL
    # WHEN an admin sends half the traffic to it
    status, _, body = api.call("POST", f"/models/{NAME}/canary", api.token("admin"), b'{"version": "2", "weight": 0.5}')
    assert status == 200, body
    assert json.loads(body)["canary"]["weight"] == 0.5
    # THEN within the TTL both versions answer, each with its own behaviour
    wait_for(lambda: {v for v, _ in served_versions(api, 10)} == {"1", "2"}, 30, "both versions to serve")
    assert set(served_versions(api, 30)) <= {("1", "approved"), ("2", "v2:approved")}
    # AND the per-model metrics show both sides
    # (EMF lines in the API function's log, after the timestamp the local Lambda service adds)
    api_log = (local_stack_dir / "logs" / "mmedeploy-dev-APIHandler.log").read_text().splitlines()
    emf = [json.loads(line.split(" ", 1)[1]) for line in api_log if '"_aws"' in line]
    sides = {(m.get("Model"), m.get("Version")) for m in emf if "Invocations" in m}
    assert {(NAME, "1"), (NAME, "2")} <= sides
    # WHEN the canary ends, only production answers again
    assert api.call("DELETE", f"/models/{NAME}/canary", api.token("admin"))[0] == 200
    assert api.call("DELETE", f"/models/{NAME}/canary", api.token("admin"))[0] == 404
    wait_for(lambda: {v for v, _ in served_versions(api, 10)} == {"1"}, 30, "the canary to end")
    # WHEN version 2 is promoted, requests reach it within the TTL, with no client change
    assert api.call("POST", f"/models/{NAME}/versions/2/promote", api.token("admin"), b"{}")[0] == 202
    assert reach(registry, "2", {Status.PRODUCTION, Status.FAILED}).status is Status.PRODUCTION
    wait_for(lambda: {v for v, _ in served_versions(api, 5)} == {"2"}, 30, "the promotion to reach requests")
    assert registry.get(NAME, "1").status is Status.RETIRED
    # AND a pinned request still reaches the retired version
    status, answer = api.infer(f"/v2/models/{NAME}/versions/1/infer", {"inputs": CASES["approved"]["inputs"]})
    assert (status, answer["model_version"]) == (200, "1")
