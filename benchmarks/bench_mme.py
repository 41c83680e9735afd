"""The local MME's two figures (issue 4), on a real Triton:

1. cold first invoke of the example ensemble (fetch from S3, stage, load 3 models) against the
   p50 of the next 50 warm invokes: the ratio says what "warm first" buys;
2. the MME's overhead: p50 of InvokeEndpoint through the local MME against p50 of the same
   request sent straight to that endpoint's Triton (``/v2/models/{name}/infer``), both over one
   keep-alive HTTP connection, interleaved so drift hits both alike. Target: <= 1.3x.

Also reported, for information: the same invoke through boto3's sagemaker-runtime client.

    .venv/bin/python benchmarks/bench_mme.py [--requests 400]    (or: make bench-mme)
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.build_examples import MODELS, build  # noqa: E402
from mmedeploy.local.stack import StackInfo  # noqa: E402
from mmedeploy.packaging import package  # noqa: E402
from testkit.mme import create_mme_endpoint, idcheck_body, runtime_client  # noqa: E402
from testkit.stack_process import start_stack, stop_stack  # noqa: E402

TARGET = "idcheck_1.tar.gz"


def post(connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:300]!r}")
    return elapsed


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(info: StackInfo, requests: int) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id=info.aws_access_key_id,
        aws_secret_access_key=info.aws_secret_access_key,
        region_name=info.region,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=info.aws_endpoint_url)  # type: ignore[call-overload]

    endpoint = create_mme_endpoint(client, "bench", "bench-models")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = package(MODELS / "idcheck", "idcheck", "1", Path(tmp)).path
        client("s3").put_object(Bucket="bench-models", Key=f"models/{TARGET}", Body=tarball.read_bytes())

    body = idcheck_body(np.random.default_rng(1).normal(size=(1, 16)).astype(np.float32))
    mme = urllib.parse.urlparse(info.mme_url)
    to_mme = http.client.HTTPConnection(mme.hostname, mme.port, timeout=120)
    invoke_path = f"/endpoints/{endpoint}/invocations"
    invoke_headers = {"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": TARGET}

    cold = post(to_mme, invoke_path, body, invoke_headers)  # the load wait (30 s) covers the cold load
    warm = [post(to_mme, invoke_path, body, invoke_headers) for _ in range(50)]

    with urllib.request.urlopen(f"{info.mme_url}/ping", timeout=10) as response:
        triton_port = json.loads(response.read())["tritons"][endpoint]["port"]
    to_triton = http.client.HTTPConnection("127.0.0.1", triton_port, timeout=60)
    triton_path, triton_headers = f"/v2/models/{TARGET}/infer", {"Content-Type": "application/json"}
    for _ in range(20):  # warm both paths' connections and caches
        post(to_triton, triton_path, body, triton_headers)
        post(to_mme, invoke_path, body, invoke_headers)
    direct, through_mme = [], []
    for _ in range(requests):
        direct.append(post(to_triton, triton_path, body, triton_headers))
        through_mme.append(post(to_mme, invoke_path, body, invoke_headers))

    runtime = runtime_client(info)
    boto = []
    for _ in range(min(requests, 200)):
        started = time.perf_counter()
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=TARGET, Body=body, ContentType="application/json")[
            "Body"
        ].read()
        boto.append(time.perf_counter() - started)
    return {
        "cold_first_invoke_s": round(cold, 3),
        "warm_p50_ms": round(p50_ms(warm), 3),
        "cold_over_warm_p50": round(cold / statistics.median(warm), 1),
        "triton_direct_p50_ms": round(p50_ms(direct), 3),
        "mme_p50_ms": round(p50_ms(through_mme), 3),
        "mme_over_triton_p50": round(statistics.median(through_mme) / statistics.median(direct), 3),
        "mme_added_p50_ms": round(p50_ms(through_mme) - p50_ms(direct), 3),
        "boto3_invoke_endpoint_p50_ms": round(p50_ms(boto), 3),
        "requests": requests,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="interleaved pairs for the overhead figure")
    args = parser.parse_args()
    build()
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / ".mmedeploy"
        info = start_stack(state_dir)
        try:
            result = run(info, args.requests)
        finally:
            stop_stack(state_dir)
    print(json.dumps(result, indent=2))
    print(
        f"cold first invoke {result['cold_first_invoke_s']:.2f} s = {result['cold_over_warm_p50']:.0f}x the warm p50 "
        f"({result['warm_p50_ms']:.2f} ms); local MME p50 {result['mme_p50_ms']:.2f} ms vs Triton direct "
        f"{result['triton_direct_p50_ms']:.2f} ms = {result['mme_over_triton_p50']:.2f}x (target <= 1.3x)"
    )
    return 0 if result["mme_over_triton_p50"] <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
