"""Issue 7's figures: what the inference API's handler adds to a request over invoking the MME
directly, and how many registry reads a request costs in steady state.

One run: a fresh local stack serves the example ensemble (model ``bench``, promoted to
production). Then, in this process, the same request is sent alternately (a) straight to the
local MME with boto3's InvokeEndpoint, and (b) through the Chalice app's Lambda handler with the
API Gateway proxy event API Gateway would send (base64 body, as binaryMediaTypes */* makes it;
the authorizer's answer is cached by API Gateway, so it is not part of the handler). Added
latency is (b) - (a) at the same percentile, for JSON and for binary tensors. Registry reads are
counted on the registry's DynamoDB client.

    .venv/bin/python benchmarks/bench_api.py [--requests 2000]    (or: make bench-api)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.lifecycle import Status  # noqa: E402
from chalicelib.registry import ModelRegistry  # noqa: E402
from tests.stack_process import start_stack, stop_stack  # noqa: E402
from tests.tarballs import idcheck_repo, pack  # noqa: E402

NAME = "bench"
TARGET_P50_MS, TARGET_P99_MS = 2.0, 5.0
FEATURES = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)


def wait(registry: ModelRegistry, version: str, statuses: set[Status], timeout: float = 180) -> Status:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = registry.find(NAME, version)
        if record and record.status in statuses:
            return record.status
        time.sleep(0.05)
    raise TimeoutError(f"{NAME} {version} did not reach {sorted(statuses)}")


def json_request() -> tuple[bytes, dict[str, str]]:
    body = {
        "inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": FEATURES.ravel().tolist()}],
        "outputs": [{"name": "PROBABILITIES"}, {"name": "DECISION"}],
    }
    return json.dumps(body).encode(), {}


def binary_request() -> tuple[bytes, dict[str, str]]:
    """Triton's binary tensor extension, as tritonclient.http builds it."""
    tensor = FEATURES.tobytes()
    header = {
        "inputs": [
            {
                "name": "RAW_FEATURES",
                "datatype": "FP32",
                "shape": [1, 16],
                "parameters": {"binary_data_size": len(tensor)},
            }
        ],
        "outputs": [
            {"name": "PROBABILITIES", "parameters": {"binary_data": True}},
            {"name": "DECISION", "parameters": {"binary_data": True}},
        ],
    }
    head = json.dumps(header).encode()
    return head + tensor, {"Inference-Header-Content-Length": str(len(head))}


def proxy_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The Lambda proxy event API Gateway sends for POST /v2/models/bench/infer."""
    return {
        "resource": "/v2/models/{name}/infer",
        "path": f"/v2/models/{NAME}/infer",
        "httpMethod": "POST",
        "headers": {"Authorization": "Bearer (checked by the cached authorizer)", **headers},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"name": NAME},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/v2/models/{name}/infer",
            "httpMethod": "POST",
            "path": f"/api/v2/models/{NAME}/infer",
            "authorizer": {"principalId": "bench", "scopes": "invoke"},
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def lambda_context() -> Any:
    return SimpleNamespace(
        function_name="mmedeploy-dev",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:mmedeploy-dev",
        aws_request_id="bench",
        get_remaining_time_in_millis=lambda: 29_000,
    )


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per path and format")
    count = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / ".mmedeploy"
        info = start_stack(state)
        try:
            return measure(info, count)
        finally:
            stop_stack(state)


def measure(info: Any, count: int) -> int:
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=info.region)
    aws = session.client("lambda", endpoint_url=info.aws_endpoint_url)
    registry = ModelRegistry(info.registry_table, session.client("dynamodb", endpoint_url=info.aws_endpoint_url))
    session.client("s3", endpoint_url=info.aws_endpoint_url).put_object(
        Bucket=info.staging_bucket, Key=f"{NAME}_1.tar.gz", Body=pack(idcheck_repo("1"))
    )
    assert wait(registry, "1", {Status.AWAITING_APPROVAL, Status.FAILED, Status.REJECTED}) is Status.AWAITING_APPROVAL
    promote = urllib.request.Request(
        f"{info.api_url}/models/{NAME}/versions/1/promote",
        data=b"{}",
        headers={"Authorization": f"Bearer {info.admin_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(promote, timeout=10) as answer:
        assert answer.status == 202
    assert wait(registry, "1", {Status.PRODUCTION, Status.FAILED}) is Status.PRODUCTION
    print(f"{NAME} 1 serves in production on {info.production_endpoint}")

    # The API's own environment: the template's Globals (as the stack gave its functions), with
    # only the endpoint URLs and credentials of the local stack, as everywhere.
    function = aws.list_functions()["Functions"][0]["FunctionName"]
    os.environ.update(aws.get_function_configuration(FunctionName=function)["Environment"]["Variables"])
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": info.aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": info.mme_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": info.region,
        }
    )
    import app as api  # after the environment: app.py reads its settings at import
    from chalicelib import composition
    from chalicelib.composition import API_RUNTIME_CONFIG

    reads = {"count": 0}

    def count_read(**_: Any) -> None:
        reads["count"] += 1

    composition.registry()._db.meta.events.register("before-call.dynamodb", count_read)
    runtime = boto3.client("sagemaker-runtime", config=API_RUNTIME_CONFIG)
    context = lambda_context()
    ttl = composition.settings().route_cache_ttl_s

    results = []
    for label, build in (("JSON", json_request), ("binary tensors", binary_request)):
        body, headers = build()
        content_type = (
            f"application/vnd.sagemaker-triton.binary+json;json-header-size={headers['Inference-Header-Content-Length']}"
            if headers
            else "application/json"
        )
        event = proxy_event(body, headers)

        def direct(body: bytes = body, content_type: str = content_type) -> None:
            answer = runtime.invoke_endpoint(
                EndpointName=info.production_endpoint,
                TargetModel=f"{NAME}_1.tar.gz",
                ContentType=content_type,
                Body=body,
            )
            answer["Body"].read()

        def handler(event: dict[str, Any] = event) -> None:
            answer = api.app(event, context)
            assert answer["statusCode"] == 200, answer

        sink = io.StringIO()  # the handler's EMF lines: written, as in Lambda, but not shown
        with contextlib.redirect_stdout(sink):
            for _ in range(100):  # warm both paths (connections, caches, Triton)
                direct()
                handler()
            reads["count"] = 0
            started = time.monotonic()
            direct_s, handler_s = timed_pairs(direct, handler, count)
            seconds = time.monotonic() - started
        added_p50 = (percentile(handler_s, 50) - percentile(direct_s, 50)) * 1000
        added_p99 = (percentile(handler_s, 99) - percentile(direct_s, 99)) * 1000
        results.append((label, added_p50, added_p99, reads["count"] / count))
        print(
            f"\n{label}: {count} requests each, interleaved\n"
            f"  direct InvokeEndpoint  p50 {percentile(direct_s, 50) * 1000:.2f} ms  "
            f"p99 {percentile(direct_s, 99) * 1000:.2f} ms\n"
            f"  through the handler    p50 {percentile(handler_s, 50) * 1000:.2f} ms  "
            f"p99 {percentile(handler_s, 99) * 1000:.2f} ms\n"
            f"  added                  p50 {added_p50:.2f} ms = {added_p50 / TARGET_P50_MS:.2f}x the "
            f"{TARGET_P50_MS:.0f} ms target, p99 {added_p99:.2f} ms = {added_p99 / TARGET_P99_MS:.2f}x the "
            f"{TARGET_P99_MS:.0f} ms target\n"
            f"  registry reads         {reads['count']} over {count} requests in {seconds:.1f} s "
            f"({reads['count'] / count:.4f} per request): the route cache's refreshes, one Query and one "
            f"GetItem per {ttl:.0f} s TTL"
        )
    worst_p50 = max(r[1] for r in results)
    worst_p99 = max(r[2] for r in results)
    print(
        f"\nworst added p50 {worst_p50:.2f} ms = {worst_p50 / TARGET_P50_MS:.2f}x target, "
        f"worst added p99 {worst_p99:.2f} ms = {worst_p99 / TARGET_P99_MS:.2f}x target; "
        f"registry reads per request at most {max(r[3] for r in results):.4f}"
    )
    return 0


def timed_pairs(direct: Callable[[], None], handler: Callable[[], None], count: int) -> tuple[list[float], list[float]]:
    direct_s: list[float] = []
    handler_s: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        direct()
        between = time.perf_counter()
        handler()
        ended = time.perf_counter()
        direct_s.append(between - started)
        handler_s.append(ended - between)
    return direct_s, handler_s


if __name__ == "__main__":
    raise SystemExit(main())
