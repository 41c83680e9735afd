"""EMF on the local stack: requests through the API become the per-version metrics CloudWatch Logs
extracts from the API function's log on AWS (mmedeploy/local/lambdas/emf.py), readable from the
emulator's CloudWatch by Model and Version within seconds, p99 latency included (the percentile
seam in mmedeploy/local/moto_seams.py)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import Status
from mmedeploy.local.stack import StackInfo
from testkit.http import call_api
from testkit.tarballs import echo_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME, VERSION = "emfmetrics", "1"
REQUESTS = 5
DIMENSIONS = [{"Name": "Model", "Value": NAME}, {"Name": "Version", "Value": VERSION}]


@pytest.fixture(scope="module")
def staged(local_stack: StackInfo, aws: Callable[[str], Any]) -> None:
    """An echo model pushed and warm on staging: a pinned request serves it (no promotion needed)."""
    aws("s3").put_object(
        Bucket=local_stack.staging_bucket, Key=f"{NAME}_{VERSION}.tar.gz", Body=pack(echo_repo(NAME, VERSION))
    )
    registry = ModelRegistry(local_stack.registry_table, aws("dynamodb"))

    def settled() -> Any:
        record = registry.find(NAME, VERSION)
        done = {Status.AWAITING_APPROVAL, Status.FAILED, Status.REJECTED}
        return record if record and record.status in done else None

    record = wait_for(settled, 120, f"{NAME} {VERSION} to await approval")
    assert record.status is Status.AWAITING_APPROVAL, record.reason


def test_requests_become_per_version_metrics_with_p99(
    local_stack: StackInfo, aws: Callable[[str], Any], staged: None
) -> None:
    # GIVEN a few requests to the version through the API
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(seconds=1)
    body = json.dumps({"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    headers = {"Authorization": f"Bearer {local_stack.api_token}", "Content-Type": "application/json"}
    for _ in range(REQUESTS):
        status, _, answer = call_api(
            local_stack.api_url, "POST", f"/v2/models/{NAME}/versions/{VERSION}/infer", headers, body.encode()
        )
        assert status == 200, answer
    cloudwatch = aws("cloudwatch")
    window = {"StartTime": started, "EndTime": started + datetime.timedelta(minutes=5)}

    def query(query_id: str, name: str, stat: str) -> dict[str, Any]:
        metric = {"Namespace": "mmedeploy", "MetricName": name, "Dimensions": DIMENSIONS}
        return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": 300, "Stat": stat}}

    def counted() -> dict[str, list[float]] | None:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[
                query("calls", "Invocations", "Sum"),
                query("errors", "Errors", "Sum"),
                query("p99", "Latency", "p99"),
                query("slowest", "Latency", "Maximum"),
            ],
            **window,
        )
        values = {result["Id"]: result["Values"] for result in answer["MetricDataResults"]}
        return values if values["calls"] == [float(REQUESTS)] else None

    # WHEN the emulator's CloudWatch is asked by Model and Version, within seconds
    values = wait_for(counted, 10, f"{REQUESTS} invocations of {NAME} {VERSION} in CloudWatch")
    # THEN every request counted, none failed, and p99 of five latencies is the slowest (nearest rank)
    assert values["errors"] == [0.0]
    assert values["p99"] == values["slowest"] and 0 < values["p99"][0] < 29_000
    # AND GetMetricStatistics answers the same p99 as an extended statistic
    statistics = cloudwatch.get_metric_statistics(
        Namespace="mmedeploy",
        MetricName="Latency",
        Dimensions=DIMENSIONS,
        Period=300,
        Statistics=["SampleCount"],
        ExtendedStatistics=["p99"],
        Unit="Milliseconds",
        **window,
    )
    (datapoint,) = statistics["Datapoints"]
    assert datapoint["SampleCount"] == REQUESTS
    assert datapoint["ExtendedStatistics"] == {"p99": values["p99"][0]}


def test_a_burst_of_requests_is_counted_whole(local_stack: StackInfo, aws: Callable[[str], Any], staged: None) -> None:
    # GIVEN a burst through the API: its EMF lines ship in batches whose PutMetricData body is over
    # the 10 KiB botocore gzips (moto checks the signature over the decompressed body, so a
    # compressed batch was refused and lost: mmedeploy/local/iam.py emulator_client_config)
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(seconds=1)
    body = json.dumps({"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    headers = {"Authorization": f"Bearer {local_stack.api_token}", "Content-Type": "application/json"}
    burst = 160
    cloudwatch = aws("cloudwatch")
    metric = {"Namespace": "mmedeploy", "MetricName": "Invocations", "Dimensions": DIMENSIONS}

    def total() -> float:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "calls", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Sum"}}],
            StartTime=started - datetime.timedelta(minutes=30),
            EndTime=started + datetime.timedelta(minutes=5),
        )
        return float(sum(answer["MetricDataResults"][0]["Values"]))

    before = total()  # the module's other requests

    def send(_: int) -> int:
        path = f"/v2/models/{NAME}/versions/{VERSION}/infer"
        return call_api(local_stack.api_url, "POST", path, headers, body.encode())[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(send, range(burst))) == {200}

    def counted() -> float | None:
        now = total()
        return now if now >= before + burst else None

    # THEN every request of it is counted, once
    assert wait_for(counted, 15, f"{burst} more invocations in CloudWatch") == before + burst
