"""VersionMetrics: one version's figures over a window from CloudWatch. The sums on in-process
moto (the metrics as the API's EMF lines become them); the request's shape and the parsing of a
p99 answer with botocore's Stubber (moto computes no percentiles); CloudWatch's refusals as
MetricsUnavailable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from moto.cloudwatch.models import Statistics

from chalicelib.adapters.version_metrics import VersionMetrics
from chalicelib.domain.errors import MetricsUnavailable, ServiceError
from chalicelib.domain.metrics import NAMESPACE

START = datetime(2026, 12, 6, 19, 0, 30, tzinfo=UTC)
END = START + timedelta(minutes=10)


def client() -> Any:
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


# moto computes no percentile (its GetMetricData fails on "p99"; the local stack emulates them in
# mmedeploy/local/moto_seams.py): here the p99 query gets this stand-in, so the sums can be read
STAND_IN_P99 = 42.0


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    original = Statistics.get_statistics_for_type

    def with_stand_in(self: Statistics, stat: str) -> Any:
        return STAND_IN_P99 if stat == "p99" else original(self, stat)

    monkeypatch.setattr(Statistics, "get_statistics_for_type", with_stand_in)
    with mock_aws():
        yield client()


def request(cloudwatch: Any, model: str, version: str, at: datetime, status: int, latency_ms: float) -> None:
    """One request as the API meters it (chalicelib/inference/model_metrics.py), put directly."""
    dimensions = [{"Name": "Model", "Value": model}, {"Name": "Version", "Value": version}]
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value, "Unit": unit}
            for name, value, unit in (
                ("Invocations", 1, "Count"),
                ("Errors", int(status >= 500), "Count"),
                ("ClientErrors", int(400 <= status < 500), "Count"),
                ("Latency", latency_ms, "Milliseconds"),
            )
        ],
    )


def test_the_sums_of_one_version_in_the_window(cloudwatch: Any) -> None:
    for second in range(0, 540, 6):  # 90 requests in the window, every tenth a 502
        request(cloudwatch, "idcheck", "2", START + timedelta(seconds=second), 502 if second % 60 == 0 else 200, 20)
    request(cloudwatch, "idcheck", "2", START + timedelta(seconds=10), 400, 5)  # a client's error: not an error
    request(cloudwatch, "idcheck", "1", START + timedelta(seconds=10), 500, 5)  # the other version
    request(cloudwatch, "other", "2", START + timedelta(seconds=10), 500, 5)  # another model
    request(cloudwatch, "idcheck", "2", END + timedelta(seconds=1), 500, 5)  # after the window
    request(cloudwatch, "idcheck", "2", START - timedelta(minutes=5), 500, 5)  # before it

    figures = VersionMetrics(cloudwatch).figures("idcheck", "2", START, END)

    assert (figures.name, figures.version) == ("idcheck", "2")
    assert figures.invocations == 91
    assert figures.errors == 9
    assert figures.error_rate == pytest.approx(9 / 91)
    assert figures.p99_latency_ms == STAND_IN_P99
    assert figures.start == START.replace(second=0)  # read from the start's minute, as CloudWatch does
    assert figures.end == END


def test_a_version_without_requests_has_none(cloudwatch: Any) -> None:
    figures = VersionMetrics(cloudwatch).figures("idcheck", "9", START, END)
    assert (figures.invocations, figures.errors, figures.p99_latency_ms) == (0, 0, None)


def stubbed(responses: list[dict[str, Any]], expected: list[dict[str, Any]] | None = None) -> tuple[Any, Stubber]:
    cw = client()
    stubber = Stubber(cw)
    for index, response in enumerate(responses):
        stubber.add_response("get_metric_data", response, expected[index] if expected else None)
    stubber.activate()
    return cw, stubber


def query(query_id: str, metric: str, stat: str, period: int) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": "mmedeploy",
                "MetricName": metric,
                "Dimensions": [{"Name": "Model", "Value": "idcheck"}, {"Name": "Version", "Value": "2"}],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def results(invocations: list[float], errors: list[float], p99: list[float]) -> dict[str, Any]:
    return {
        "MetricDataResults": [
            {"Id": "invocations", "Label": "Invocations", "Values": invocations, "StatusCode": "Complete"},
            {"Id": "errors", "Label": "Errors", "Values": errors, "StatusCode": "Complete"},
            {"Id": "latencyp99", "Label": "Latency", "Values": p99, "StatusCode": "Complete"},
        ]
    }


def test_the_request_asks_sums_and_the_p99_over_one_period_covering_the_window() -> None:
    # 19:00:30 to 19:10:30, read from 19:00: one period of 11 minutes covers it all
    expected = {
        "MetricDataQueries": [
            query("invocations", "Invocations", "Sum", 660),
            query("errors", "Errors", "Sum", 660),
            query("latencyp99", "Latency", "p99", 660),
        ],
        "StartTime": START.replace(second=0),
        "EndTime": END,
    }
    cw, stubber = stubbed([results([1200.0], [3.0], [87.25])], [expected])
    figures = VersionMetrics(cw).figures("idcheck", "2", START, END)
    stubber.assert_no_pending_responses()
    assert (figures.invocations, figures.errors, figures.p99_latency_ms) == (1200, 3, 87.25)


def test_a_short_window_still_asks_a_whole_minute() -> None:
    start = datetime(2026, 12, 6, 19, 0, 0, tzinfo=UTC)
    expected = {
        "MetricDataQueries": [
            query("invocations", "Invocations", "Sum", 60),
            query("errors", "Errors", "Sum", 60),
            query("latencyp99", "Latency", "p99", 60),
        ],
        "StartTime": start,
        "EndTime": start + timedelta(seconds=5),
    }
    cw, stubber = stubbed([results([], [], [])], [expected])
    figures = VersionMetrics(cw).figures("idcheck", "2", start, start + timedelta(seconds=5))
    stubber.assert_no_pending_responses()
    assert (figures.invocations, figures.errors, figures.p99_latency_ms) == (0, 0, None)


def test_pages_and_periods_add_up_and_the_slowest_p99_is_kept() -> None:
    first = {**results([100.0], [1.0], [40.0]), "NextToken": "more"}
    cw, stubber = stubbed([first, results([50.0], [2.0], [55.5])])
    figures = VersionMetrics(cw).figures("idcheck", "2", START, END)
    stubber.assert_no_pending_responses()
    assert (figures.invocations, figures.errors, figures.p99_latency_ms) == (150, 3, 55.5)


def test_a_refusal_is_metrics_unavailable() -> None:
    cw = client()
    stubber = Stubber(cw)
    stubber.add_client_error("get_metric_data", "AccessDenied", "not authorized to perform cloudwatch:GetMetricData")
    stubber.activate()
    with pytest.raises(MetricsUnavailable) as refused:
        VersionMetrics(cw).figures("idcheck", "2", START, END)
    assert isinstance(refused.value, ServiceError)
    assert refused.value.code == "AccessDenied"
    assert "CloudWatch answered AccessDenied: not authorized" in refused.value.message


def test_a_query_cloudwatch_could_not_answer_is_metrics_unavailable() -> None:
    answer = results([1.0], [0.0], [])
    answer["MetricDataResults"][2].update(StatusCode="InternalError", Messages=[{"Code": "x", "Value": "try again"}])
    cw, _ = stubbed([answer])
    with pytest.raises(MetricsUnavailable, match="InternalError: query latencyp99: try again"):
        VersionMetrics(cw).figures("idcheck", "2", START, END)


def test_cloudwatch_out_of_reach_is_metrics_unavailable() -> None:
    cw = client()

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://monitoring.us-east-1.amazonaws.com")

    cw.meta.events.register("before-call.cloudwatch.GetMetricData", unreachable)
    with pytest.raises(MetricsUnavailable, match="EndpointConnectionError"):
        VersionMetrics(cw).figures("idcheck", "2", START, END)


def test_a_window_must_be_timezone_aware_and_forward() -> None:
    metrics = VersionMetrics(client())
    with pytest.raises(ValueError, match="timezone-aware"):
        metrics.figures("idcheck", "2", START.replace(tzinfo=None), END)
    with pytest.raises(ValueError, match="before it starts"):
        metrics.figures("idcheck", "2", END, START)
