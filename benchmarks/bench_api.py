"""Issue 15's API figure: the local API, as a consumer's keep-alive clients see it, against the
same inference sent straight to the local MME. Goal: API p50 <= 1.5x the MME's, per client.

One run: ``mmedeploy up --detach`` starts a fresh local stack (its own port range and a temporary
state directory; the artifacts in build/dev are built or reused first, outside every clock). The
example ensemble is deployed as ``idcheck`` 1 the way ``mmedeploy demo`` does it: packaged and
validated, pushed to the staging bucket, followed to AWAITING_APPROVAL, approved with a signed
Slack interaction, followed to PRODUCTION. Then the example's ``approved`` test case, as KServe v2
JSON, goes sequentially over one keep-alive connection per client:

  (a) ``tritonclient.http.InferenceServerClient`` at the API's base URL, with the bearer token;
  (b) ``requests.Session`` POSTing the JSON to ``/v2/models/idcheck/infer`` with the bearer token;
  (c) ``requests.Session`` POSTing the same JSON straight to the local MME
      (``/endpoints/<production endpoint>/invocations``, ``X-Amzn-SageMaker-Target-Model``);
  (d) boto3's ``sagemaker-runtime`` InvokeEndpoint to the local MME (what the API function does).

After ``--warmup`` rounds, ``--requests`` rounds each, the four interleaved (each round in a
rotated order), every answer checked for HTTP 200. Ratios: (a) and (b) over (c) at p50, the goal
printed beside them. Where the API's time goes comes from the API function's own lines for the
timed window in CloudWatch Logs: ``REPORT`` (Duration: the invocation inside its awslambdaric
process) and its EMF line (ModelLatency: its InvokeEndpoint call). The stack is stopped at the
end, also on an error or Ctrl-C. Loopback only; a few minutes on a 2-core machine.

    .venv/bin/python benchmarks/bench_api.py [--requests 300] [--warmup 50]    (or: make bench-api)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import requests
import tritonclient.http as triton
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import (
    EXAMPLE,
    LOG_SHIP_WAIT_S,
    MODEL,
    BenchError,
    RunningStack,
    approve_until_production,
    ensure_artifacts,
    example_tarball,
    guarded,
    log_events,
    median,
    parse_report,
    percentile,
    push_until_awaiting,
    running_stack,
    verdict,
)

GOAL = 1.5  # API p50 / MME p50
VERSION = "1"
ROUTE_WAIT_S = 30.0  # the API's route cache sees the promotion within its TTL
API_CLIENTS = ("API  tritonclient.http", "API  requests.Session")
MME_REQUESTS, MME_BOTO3 = "MME  requests.Session", "MME  boto3 sagemaker-runtime"


def kserve_request() -> dict[str, Any]:
    case = json.loads((EXAMPLE / "tests" / "approved.json").read_text())
    return {"inputs": case["inputs"], "outputs": [{"name": output["name"]} for output in case["outputs"]]}


class Clients:
    """One keep-alive connection per client; each call sends one inference and checks its answer."""

    def __init__(self, stack: RunningStack) -> None:
        info = stack.info
        self.body = json.dumps(kserve_request()).encode()
        self.auth = {"Authorization": f"Bearer {info.api_token}"}
        self.api_infer = f"{info.api_url}/v2/models/{MODEL}/infer"
        self.mme_invoke = f"{info.mme_url}/endpoints/{info.production_endpoint}/invocations"
        self.target_model = f"{MODEL}_{VERSION}.tar.gz"
        self.endpoint = info.production_endpoint
        self.api_session = requests.Session()
        self.mme_session = requests.Session()
        self.triton = triton.InferenceServerClient(url=info.api_url.removeprefix("http://"), network_timeout=30)
        request = kserve_request()
        spec = request["inputs"][0]
        tensor = triton.InferInput(spec["name"], spec["shape"], spec["datatype"])
        tensor.set_data_from_numpy(
            np.array(spec["data"], dtype=np.float32).reshape(spec["shape"]), binary_data=False
        )  # JSON, as (b) sends
        self.triton_inputs = [tensor]
        self.triton_outputs = [triton.InferRequestedOutput(o["name"], binary_data=False) for o in request["outputs"]]
        self.runtime = boto3.session.Session(
            aws_access_key_id=info.aws_access_key_id,
            aws_secret_access_key=info.aws_secret_access_key,
            region_name=info.region,
        ).client(
            "sagemaker-runtime",
            endpoint_url=info.mme_url,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
        )

    def calls(self) -> dict[str, Callable[[], None]]:
        return {
            API_CLIENTS[0]: self.api_triton,
            API_CLIENTS[1]: self.api_requests,
            MME_REQUESTS: self.mme_requests,
            MME_BOTO3: self.mme_boto3,
        }

    def api_triton(self) -> None:
        self.triton.infer(MODEL, self.triton_inputs, outputs=self.triton_outputs, headers=self.auth)

    def api_requests(self) -> None:
        answer = self.api_session.post(
            self.api_infer, data=self.body, headers={**self.auth, "Content-Type": "application/json"}, timeout=30
        )
        if answer.status_code != 200:
            raise BenchError(f"the API answered {answer.status_code}: {answer.text[:300]}")

    def mme_requests(self) -> None:
        answer = self.mme_session.post(
            self.mme_invoke,
            data=self.body,
            headers={"X-Amzn-SageMaker-Target-Model": self.target_model, "Content-Type": "application/json"},
            timeout=30,
        )
        if answer.status_code != 200:
            raise BenchError(f"the MME answered {answer.status_code}: {answer.text[:300]}")

    def mme_boto3(self) -> None:
        answer = self.runtime.invoke_endpoint(
            EndpointName=self.endpoint, TargetModel=self.target_model, ContentType="application/json", Body=self.body
        )
        answer["Body"].read()

    def wait_for_route(self) -> None:
        """Until the API serves the version just promoted (its route cache refreshes within its TTL)."""
        deadline = time.monotonic() + ROUTE_WAIT_S
        while True:
            answer = self.api_session.post(
                self.api_infer, data=self.body, headers={**self.auth, "Content-Type": "application/json"}, timeout=30
            )
            if answer.status_code == 200 and answer.json().get("model_version") == VERSION:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the API did not serve {MODEL} {VERSION} within {ROUTE_WAIT_S:.0f} s: {answer.text}")
            time.sleep(0.5)

    def close(self) -> None:
        self.triton.close()
        self.api_session.close()
        self.mme_session.close()


def measure(
    calls: dict[str, Callable[[], None]], warmup: int, count: int
) -> tuple[dict[str, list[float]], tuple[float, float]]:
    """Each client's timings (ms) and the timed window (epoch seconds, after the warm-up)."""
    order = list(calls)
    for _ in range(warmup):
        for name in order:
            calls[name]()
    timings: dict[str, list[float]] = {name: [] for name in order}
    window_start = time.time()
    for index in range(count):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            started = time.perf_counter()
            calls[name]()
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings, (window_start, time.time())


def api_function_lines(stack: RunningStack, start: float, end: float) -> tuple[list[float], list[float], int, int]:
    """The API function's REPORT Durations and EMF ModelLatency for the window, its cold starts,
    and the authorizer's invocations (API Gateway caches its answer for the TTL)."""
    target = stack.target
    names = [f["FunctionName"] for f in target.client("lambda").list_functions()["Functions"]]
    api = next((name for name in names if name.endswith("APIHandler")), None)
    authorizer = next((name for name in names if name.endswith("BearerToken")), None)
    durations: list[float] = []
    model_ms: list[float] = []
    colds = authorized = 0
    time.sleep(max(0.0, end + LOG_SHIP_WAIT_S - time.time()))
    for event in log_events(target, f"/aws/lambda/{api}", int(start * 1000), int(end * 1000)) if api else []:
        report = parse_report(f"/aws/lambda/{api}", event)
        if report is not None:
            durations.append(report.duration_ms)
            colds += report.init_ms is not None
        elif event["message"].startswith('{"_aws"') and "ModelLatency" in event["message"]:
            model_ms.append(float(json.loads(event["message"])["ModelLatency"][0]))
    if authorizer:
        events = log_events(target, f"/aws/lambda/{authorizer}", int(start * 1000), int(end * 1000))
        authorized = sum(1 for event in events if event["message"].startswith("REPORT "))
    return durations, model_ms, colds, authorized


def report(timings: dict[str, list[float]], stack: RunningStack, window: tuple[float, float], count: int) -> bool:
    base = percentile(timings[MME_REQUESTS], 50)
    boto_base = percentile(timings[MME_BOTO3], 50)
    print(
        f"\n{count} sequential requests per client over keep-alive connections, the four interleaved "
        f"(example case 'approved', KServe v2 JSON, {MODEL} {VERSION} in production)"
    )
    print(f"{'client':34}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'/ MME req p50':>15}{'/ MME boto3':>13}   goal")
    met = True
    for name, samples in timings.items():
        p50, p90, p99 = (percentile(samples, q) for q in (50, 90, 99))
        ratio = f"{p50 / base:14.2f}x{p50 / boto_base:12.2f}x"
        goal = ""
        if name in API_CLIENTS:
            goal = f"   {verdict(p50 / base, GOAL)}"
            met = met and p50 / base <= GOAL
        print(f"{name:34}{p50:8.2f}{p90:8.2f}{p99:8.2f}{ratio}{goal}")

    durations, model_ms, colds, authorized = api_function_lines(stack, *window)
    api_p50 = percentile(timings[API_CLIENTS[1]], 50)
    if durations:
        duration, model = median(durations), median(model_ms)
        print(
            f"\nwhere an API request's time goes (medians; the API function's REPORT and EMF lines for the timed "
            f"window: {len(durations)} invocations for {2 * count} API requests, {colds} cold):"
        )
        rows = (
            ("API round trip, requests.Session", api_p50),
            ("  local API Gateway + Runtime API + awslambdaric, both ways", api_p50 - duration),
            ("  the invocation in the API function's process (REPORT Duration)", duration),
            ("    outside its MME call (awslambdaric, Chalice routing, route cache, JSON)", duration - model),
            ("    its InvokeEndpoint to the MME (EMF ModelLatency, boto3 in the function)", model),
            ("the same request straight to the MME, boto3 here", boto_base),
            ("the same request straight to the MME, requests.Session", base),
        )
        for label, value in rows:
            print(f"  {label:78}{value:7.2f} ms")
        print(
            f"  authorizer invocations in the window: {authorized} "
            "(API Gateway caches its answer for the authorizer's TTL)"
        )
        # the API function's own call to the MME is part of every API request: no gateway, runtime
        # or handler work removed can bring the ratio below it
        print(f"  floor: the function's InvokeEndpoint alone / MME requests p50 = {model / base:.2f}x")
    else:
        print("\n(no REPORT lines of the API function in CloudWatch Logs for the window: no breakdown)")
    print(f"\nAPI p50 / MME p50, goal <= {GOAL}x: {'met by every client' if met else 'MISSED'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per client")
    parser.add_argument("--warmup", type=int, default=50, help="untimed rounds of every client first")
    args = parser.parse_args()
    if not 1 <= args.requests <= 20_000 or not 0 <= args.warmup <= 5_000:
        parser.error("--requests must be 1..20000 and --warmup 0..5000")
    return guarded("bench-api", lambda: run(args.requests, args.warmup))


def run(count: int, warmup: int) -> int:
    print(ensure_artifacts())
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        tarball = example_tarball(VERSION, Path(tmp))
        with running_stack(Path(tmp) / ".mmedeploy") as stack:
            info = stack.info
            print(f"stack ready in {info.ready_seconds:.1f} s; API {info.api_url}, MME {info.mme_url}")
            started = time.monotonic()
            push_until_awaiting(stack.target, tarball, VERSION)
            approve_until_production(stack.target, VERSION)
            clients = Clients(stack)
            try:
                clients.wait_for_route()
                took = time.monotonic() - started
                print(f"{MODEL} {VERSION} pushed, approved in Slack, serving in production ({took:.1f} s)")
                timings, window = measure(clients.calls(), warmup, count)
            finally:
                clients.close()
            met = report(timings, stack, window, count)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
