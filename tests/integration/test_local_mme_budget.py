"""The local MME under a tight memory budget and a short load wait (its own stack: both are
``mmedeploy up`` options): least-recently-used eviction, reload on demand, ModelNotReadyException
while loading (and the inference API's 503 with Retry-After for it), and ``mmedeploy down``
stopping every Triton."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import SETTLED, Status
from examples.build_examples import MODELS
from mmedeploy.local.stack import StackInfo, process_alive
from mmedeploy.packaging import package
from testkit.http import call_api
from testkit.mme import (
    create_mme_endpoint,
    invoke_when_ready,
    loaded_models,
    outputs,
    runtime_client,
    textstats_body,
    triton_pids,
)
from testkit.slack import click
from testkit.stack_process import start_stack, stop_stack
from testkit.tarballs import echo_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One Python model is budgeted at ~40 MiB (staging.PYTHON_INSTANCE_BYTES): 60 MiB holds one, not two.
BUDGET_MB = 60
LOAD_WAIT_S = 0.2  # a Python model takes ~1.4 s to load, so first calls see ModelNotReadyException
APPROVAL_TIMEOUT_S = 3  # the pipeline's Slack wait, short enough to watch it expire


@pytest.fixture(scope="module")
def tight_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackInfo, Path]]:
    state_dir = tmp_path_factory.mktemp("tight") / ".mmedeploy"
    info = start_stack(
        state_dir,
        extra=(
            "--mme-memory-mb",
            str(BUDGET_MB),
            "--mme-load-wait",
            str(LOAD_WAIT_S),
            "--approval-timeout",
            str(APPROVAL_TIMEOUT_S),
        ),
    )
    try:
        yield info, state_dir
    finally:
        stop_stack(state_dir)


@pytest.fixture(scope="module")
def client(tight_stack: tuple[StackInfo, Path]) -> Callable[[str], Any]:
    info, _ = tight_stack
    session = boto3.session.Session(
        aws_access_key_id=info.aws_access_key_id,
        aws_secret_access_key=info.aws_secret_access_key,
        region_name=info.region,
    )
    return lambda service: session.client(service, endpoint_url=info.aws_endpoint_url)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def endpoint(client: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    name = create_mme_endpoint(client, "tight", "tight-models")
    tarball = package(MODELS / "textstats", "textstats", "1.0", tmp_path_factory.mktemp("dist")).path.read_bytes()
    for target in ("first_1.tar.gz", "second_1.tar.gz"):
        client("s3").put_object(Bucket="tight-models", Key=f"models/{target}", Body=tarball)
    return name


def test_a_loading_model_answers_model_not_ready_and_then_serves(
    tight_stack: tuple[StackInfo, Path], endpoint: str
) -> None:
    info, _ = tight_stack
    runtime = runtime_client(info)
    with pytest.raises(runtime.exceptions.ModelNotReadyException) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="first_1.tar.gz", Body=textstats_body("a b"))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    response, _ = invoke_when_ready(
        runtime, EndpointName=endpoint, TargetModel="first_1.tar.gz", Body=textstats_body("a b")
    )
    assert outputs(response) == {"CHARACTERS": [3], "WORDS": [2]}


def test_a_budget_smaller_than_two_models_evicts_the_least_recently_used_and_reloads_it(
    tight_stack: tuple[StackInfo, Path], endpoint: str, client: Callable[[str], Any]
) -> None:
    info, _ = tight_stack
    runtime = runtime_client(info)

    def call(target: str) -> int:
        response, retries = invoke_when_ready(
            runtime, EndpointName=endpoint, TargetModel=target, Body=textstats_body("one two three")
        )
        assert outputs(response) == {"CHARACTERS": [13], "WORDS": [3]}
        return retries

    call("first_1.tar.gz")
    assert loaded_models(info, endpoint) == ["first_1.tar.gz"]
    assert call("first_1.tar.gz") == 0, "a loaded model answers at once"
    call("second_1.tar.gz")
    assert loaded_models(info, endpoint) == ["second_1.tar.gz"], "the older model made room"
    assert call("first_1.tar.gz") > 0, "the evicted model loads again on demand"
    assert loaded_models(info, endpoint) == ["first_1.tar.gz"]

    cloudwatch = client("cloudwatch")

    def unloads_published() -> bool:
        metrics = cloudwatch.list_metrics(
            Namespace="AWS/SageMaker",
            MetricName="ModelUnloadingTime",
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
        )["Metrics"]
        return bool(metrics)

    wait_for(unloads_published, timeout=15, what="ModelUnloadingTime")


def test_a_staged_version_without_a_decision_expires_after_the_approval_timeout(
    tight_stack: tuple[StackInfo, Path], client: Callable[[str], Any]
) -> None:
    info, _ = tight_stack
    registry = ModelRegistry(info.registry_table, client("dynamodb"))
    client("s3").put_object(Bucket=info.staging_bucket, Key="waiting_1.tar.gz", Body=pack(echo_repo("waiting", "1")))
    # The warm-up meets ModelNotReadyException here (0.2 s load wait) and retries through it.
    waiting = wait_for(
        lambda: (r := registry.find("waiting", "1")) and r.status in SETTLED and r, timeout=60, what="staging"
    )
    assert waiting.status is Status.AWAITING_APPROVAL, waiting.reason
    expired = wait_for(
        lambda: (r := registry.find("waiting", "1")) and r.status is Status.EXPIRED and r,
        timeout=APPROVAL_TIMEOUT_S + 20,
        what="the approval to expire",
    )
    assert "approval timeout" in expired.reason
    history = registry.history("waiting", "1")
    assert [h.status for h in history][-2:] == [Status.AWAITING_APPROVAL, Status.EXPIRED]

    # WHEN the approver clicks Approve after the timeout: told so, and nothing changes
    status, answer = click(info, str(expired.approval_id))
    assert (status, answer["outcome"]) == (200, "expired")
    assert "expired" in answer["text"] and "nothing changed" in answer["text"]
    assert registry.history("waiting", "1") == history
    assert "Contents" not in client("s3").list_objects_v2(Bucket=info.production_bucket, Prefix="waiting_")


def test_the_api_answers_503_with_retry_after_while_the_mme_loads_an_evicted_model(
    tight_stack: tuple[StackInfo, Path], client: Callable[[str], Any]
) -> None:
    info, _ = tight_stack
    registry = ModelRegistry(info.registry_table, client("dynamodb"))
    admin = {"Authorization": f"Bearer {info.admin_token}"}

    def to_production(name: str) -> None:
        client("s3").put_object(Bucket=info.staging_bucket, Key=f"{name}_1.tar.gz", Body=pack(echo_repo(name, "1")))
        # approved at once: this stack's approval wait is 3 s
        wait_for(lambda: (r := registry.find(name, "1")) and r.status in SETTLED, timeout=60, what=f"{name} staged")
        assert api(info, "POST", f"/models/{name}/versions/1/promote", admin)[0] == 202
        promoted = wait_for(
            lambda: (r := registry.find(name, "1")) and r.status in {Status.PRODUCTION, Status.FAILED} and r,
            timeout=60,
            what=f"{name} promoted",
        )
        assert promoted.status is Status.PRODUCTION, promoted.reason

    # GIVEN two models in production on an endpoint with room for one: the second evicted the first
    to_production("coldone")
    to_production("evictor")
    assert loaded_models(info, info.production_endpoint) == ["evictor_1.tar.gz"]
    # WHEN a consumer calls the evicted one through the API
    invoke = {"Authorization": f"Bearer {info.api_token}"}
    request = b'{"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}'
    status, headers, body = api(info, "POST", "/v2/models/coldone/infer", invoke, request)
    # THEN 503 with Retry-After (the API never waits out a load), and the load goes on
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0 and "loading" in json.loads(body)["error"]
    answered = wait_for(
        lambda: (a := api(info, "POST", "/v2/models/coldone/infer", invoke, request))[0] == 200 and a,
        timeout=30,
        what="the model to serve after its load",
    )
    assert json.loads(answered[2])["model_version"] == "1"


def api(
    info: StackInfo, method: str, path: str, headers: dict[str, str], body: bytes = b"{}"
) -> tuple[int, dict[str, str], bytes]:
    return call_api(info.api_url, method, path, headers, body)


def test_down_stops_every_triton(tight_stack: tuple[StackInfo, Path], endpoint: str) -> None:
    info, state_dir = tight_stack
    pids = triton_pids(info)
    assert endpoint in pids and info.staging_endpoint in pids and info.production_endpoint in pids
    assert stop_stack(state_dir).returncode == 0
    wait_for(lambda: not any(process_alive(pid) for pid in pids.values()), timeout=15, what="every Triton to exit")
