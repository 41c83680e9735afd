"""EMF locally: the lines Powertools writes become the metric data CloudWatch Logs would extract
(one datum per metric per dimension set, arrays as Values/Counts, metadata keys left out),
malformed lines yield nothing and never break the log path, FunctionLogs feeds them to the
emulator's CloudWatch in batches; and the percentile seam answers p99 as CloudWatch does
(CloudWatch in-process with moto)."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from moto import mock_aws

from chalicelib.inference.model_metrics import ModelMetrics
from mmedeploy.local import moto_seams
from mmedeploy.local.lambdas import emf
from mmedeploy.local.lambdas.emf import EmbeddedMetrics, MalformedEmf, metric_data
from mmedeploy.local.lambdas.logs import FunctionLogs

GROUP = "/aws/lambda/mmedeploy-dev-APIHandler"
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
PERIOD = 7200  # one period spans the window: every datum of a test falls in it


def window() -> dict[str, datetime.datetime]:
    """Two hours around the time of the call, not of the import: a full suite reaches these tests
    long after it collected them (NOW, the percentile tests' timestamp, stays inside)."""
    now = datetime.datetime.now(datetime.UTC)
    return {"StartTime": now - datetime.timedelta(hours=1), "EndTime": now + datetime.timedelta(hours=1)}


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line]


def emf_line(root: dict[str, Any], directives: list[dict[str, Any]], at_ms: int = 1_700_000_000_000) -> str:
    return json.dumps({"_aws": {"Timestamp": at_ms, "CloudWatchMetrics": directives}, **root})


# -- extraction ---------------------------------------------------------------------------


def test_the_apis_per_version_line_becomes_one_datum_per_metric(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the line the API writes for one request (Powertools' EphemeralMetrics, metadata included),
    # with the environment the template gives every function
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mmedeploy")
    ModelMetrics().record("idcheck", "2", "production", 502, 12.5, 3.25)
    (line,) = printed(capsys)
    # WHEN CloudWatch Logs would read it
    data = metric_data(line)
    # THEN each metric is a datum of namespace mmedeploy with the Model and Version dimensions alone
    # (no "service": CloudWatch matches dimension sets exactly, the gates query by these two)
    assert {namespace for namespace, _ in data} == {"mmedeploy"}
    by_name = {datum["MetricName"]: datum for _, datum in data}
    assert sorted(by_name) == ["ClientErrors", "Errors", "Invocations", "Latency", "ModelLatency"]
    for datum in by_name.values():
        assert datum["Dimensions"] == [{"Name": "Model", "Value": "idcheck"}, {"Name": "Version", "Value": "2"}]
        assert abs(datum["Timestamp"] - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(seconds=5)
    assert (by_name["Errors"]["Values"], by_name["Errors"]["Counts"], by_name["Errors"]["Unit"]) == (
        [1.0],
        [1.0],
        "Count",
    )
    assert (by_name["Latency"]["Values"], by_name["Latency"]["Unit"]) == ([12.5], "Milliseconds")
    assert by_name["ModelLatency"]["Values"] == [3.25]
    # the metadata (route, status) is log content, not a metric or a dimension
    assert not any(d["Name"] in ("route", "status") for _, datum in data for d in datum["Dimensions"])


def test_several_dimension_sets_and_arrays(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a Powertools line with two dimension sets, a repeated metric and a high-resolution one
    metrics = EphemeralMetrics(namespace="shop")
    metrics.add_dimension(name="Model", value="m")
    metrics.add_dimensions(Model="m", Version="3")
    for value in (5, 7, 5, 9):
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=value)
    metrics.add_metric(name="Hits", unit=MetricUnit.Count, value=2, resolution=1)
    metrics.add_metadata(key="request", value="r-1")
    metrics.flush_metrics()
    (line,) = printed(capsys)
    data = sorted((datum for _, datum in metric_data(line)), key=lambda d: (d["MetricName"], len(d["Dimensions"])))
    # THEN one datum per metric per dimension set; repeated values counted, in first-seen order
    assert [(d["MetricName"], [x["Name"] for x in d["Dimensions"]]) for d in data] == [
        ("Hits", ["Model"]),
        ("Hits", ["Model", "Version"]),
        ("Latency", ["Model"]),
        ("Latency", ["Model", "Version"]),
    ]
    assert (data[2]["Values"], data[2]["Counts"]) == ([5.0, 7.0, 9.0], [2.0, 1.0, 1.0])
    assert data[0]["StorageResolution"] == 1 and "StorageResolution" not in data[2]
    assert data[3]["Dimensions"] == [{"Name": "Model", "Value": "m"}, {"Name": "Version", "Value": "3"}]


def test_a_hand_written_line_with_scalars_two_directives_and_no_unit() -> None:
    line = emf_line(
        {"Fn": "a", "Stage": "dev", "Requests": 3, "Queue": [1, 2], "note": "kept in the log only"},
        [
            {"Namespace": "one", "Dimensions": [["Fn"], ["Fn", "Stage"]], "Metrics": [{"Name": "Requests"}]},
            {"Namespace": "two", "Dimensions": [[]], "Metrics": [{"Name": "Queue", "Unit": "Count"}]},
        ],
    )
    data = metric_data(line)
    at = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
    assert data == [
        (
            "one",
            {"MetricName": "Requests", "Timestamp": at, "Value": 3.0, "Dimensions": [{"Name": "Fn", "Value": "a"}]},
        ),
        (
            "one",
            {
                "MetricName": "Requests",
                "Timestamp": at,
                "Value": 3.0,
                "Dimensions": [{"Name": "Fn", "Value": "a"}, {"Name": "Stage", "Value": "dev"}],
            },
        ),
        (
            "two",
            {
                "MetricName": "Queue",
                "Timestamp": at,
                "Unit": "Count",
                "Values": [1.0, 2.0],
                "Counts": [1.0, 1.0],
                "Dimensions": [],
            },
        ),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 1 Version: $LATEST",
        '{"level": "INFO", "message": "not EMF"}',
        '{"message": "mentions \\"_aws\\" in text"}',
        "[1, 2]",
    ],
)
def test_lines_that_are_not_emf_yield_nothing(line: str) -> None:
    assert metric_data(line) == []


OK_DIRECTIVE = {"Namespace": "n", "Dimensions": [["D"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}
OK_ROOT = {"D": "d", "M": 1}


def _with(directive: dict[str, Any] | None = None, **root: Any) -> str:
    return emf_line({**OK_ROOT, **root}, [{**OK_DIRECTIVE, **(directive or {})}])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [', "not a JSON object"),
        ('{"_aws": [], "M": 1}', "_aws is not an object"),
        ('{"_aws": {"Timestamp": 1}, "M": 1}', "CloudWatchMetrics is not an array"),
        (json.dumps({"_aws": {"CloudWatchMetrics": [OK_DIRECTIVE]}, **OK_ROOT}), "Timestamp"),
        (json.dumps({"_aws": {"Timestamp": "now", "CloudWatchMetrics": [OK_DIRECTIVE]}, **OK_ROOT}), "Timestamp"),
        (json.dumps({"_aws": {"Timestamp": 1e300, "CloudWatchMetrics": [OK_DIRECTIVE]}, **OK_ROOT}), "out of range"),
        (_with({"Namespace": ""}), "Namespace"),
        (_with({"Namespace": "AWS/Lambda"}), "Namespace"),
        (_with({"Dimensions": "D"}), "Dimensions is not an array"),
        (_with({"Dimensions": [["Missing"]]}), "dimension 'Missing'"),
        (_with(D=3), "dimension 'D'"),
        (_with({"Dimensions": [[f"k{i}" for i in range(31)]]}), "at most 30"),
        (_with({"Metrics": [{"Name": "Absent"}]}), "metric 'Absent' has no value"),
        (_with({"Metrics": [{"Name": "M", "Unit": "Furlongs"}]}), "unit"),
        (_with({"Metrics": [{"Name": "M", "StorageResolution": 5}]}), "StorageResolution"),
        (_with({"Metrics": [{"Name": f"m{i}"} for i in range(101)]}), "more than 100 metrics"),
        (_with(M="12"), "not a finite number"),
        (_with(M=True), "not a finite number"),
        (_with(M=[1, None]), "not a finite number"),
        (_with(M=list(range(101))), "more than 100 values"),
        (
            '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], '
            '"Metrics": [{"Name": "M"}]}]}, "M": NaN}',
            "not a finite number",
        ),
        (
            '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], '
            '"Metrics": [{"Name": "M"}]}]}, "M": 1' + "0" * 400 + "}",
            "not a finite number",
        ),
    ],
)
def test_malformed_emf_is_refused_whole(line: str, reason: str) -> None:
    with pytest.raises(MalformedEmf, match=reason):
        metric_data(line)


def test_the_units_are_cloudwatchs() -> None:
    model = botocore.session.get_session().get_service_model("cloudwatch")
    assert set(model.shape_for("StandardUnit").enum) == emf.UNITS  # type: ignore[attr-defined]


# -- into the emulator's CloudWatch -------------------------------------------------------


class _Recording:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **call: Any) -> None:
        self.calls.append(call)


def test_datums_go_out_per_namespace_in_batches_of_1000() -> None:
    client = _Recording()
    lines = [(GROUP, _with(M=i)) for i in range(1500)] + [(GROUP, _with({"Namespace": "other"}))]
    assert EmbeddedMetrics(lambda: client).publish(lines) == 1501
    assert [(c["Namespace"], len(c["MetricData"])) for c in client.calls] == [("n", 1000), ("n", 500), ("other", 1)]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_malformed_lines_are_skipped_logged_once_at_debug_and_never_raise() -> None:
    client = _Recording()
    logger, kept = logging.getLogger("mmedeploy.local.lambda.emf"), _Kept()
    level = logger.level
    logger.addHandler(kept)  # on the logger itself: the stack's loggers need not propagate
    logger.setLevel(logging.DEBUG)
    try:
        bad = (GROUP, _with(M="slow"))
        sent = EmbeddedMetrics(lambda: client).publish([bad, (GROUP, _with(M=4)), bad, (GROUP, "plain text")])
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    assert sent == 1 and client.calls[0]["MetricData"][0]["Value"] == 4.0
    (ignored,) = kept.records
    assert ignored.levelno == logging.DEBUG
    assert GROUP in ignored.getMessage() and "'M'" in ignored.getMessage()


def test_a_refused_put_is_logged_not_raised() -> None:
    class Refusing:
        def put_metric_data(self, **call: Any) -> None:
            raise RuntimeError("emulator gone")

    assert EmbeddedMetrics(lambda: Refusing()).publish([(GROUP, _with())]) == 0


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")


@pytest.fixture
def percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, attribute, replacement in moto_seams.percentile_seams():
        monkeypatch.setattr(owner, attribute, replacement)


def test_function_logs_ship_the_apis_lines_as_metrics(
    tmp_path: Path, aws: boto3.session.Session, percentiles: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN FunctionLogs wired as the stack wires it, and five requests' lines from the API
    cloudwatch: Any = aws.client("cloudwatch")
    logs = FunctionLogs(tmp_path, lambda: aws.client("logs"), EmbeddedMetrics(lambda: cloudwatch))
    try:
        for latency in (10.0, 40.0, 20.0, 50.0, 30.0):
            ModelMetrics().record("idcheck", "2", "pinned", 200, latency, latency / 2)
        ModelMetrics().record("idcheck", "1", "production", 200, 99.0, 1.0)
        for line in printed(capsys):
            logs.write("mmedeploy-dev-APIHandler", "stream", line)
        logs.write("mmedeploy-dev-APIHandler", "stream", _with(M="not a number"))
        # WHEN they are shipped
        logs.flush()
    finally:
        logs.stop()
    # THEN CloudWatch answers per version: invocations, and p99 latency (nearest rank: the highest of five)
    version_2 = [{"Name": "Model", "Value": "idcheck"}, {"Name": "Version", "Value": "2"}]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            _query("calls", "Invocations", version_2, "Sum"),
            _query("p99", "Latency", version_2, "p99"),
            _query("p50", "Latency", version_2, "p50"),
        ],
        **window(),
    )
    values = {result["Id"]: result["Values"] for result in answer["MetricDataResults"]}
    assert values == {"calls": [5.0], "p99": [50.0], "p50": [30.0]}
    # and the lines are in the log, the malformed one too
    events = aws.client("logs").get_log_events(logGroupName=GROUP, logStreamName="stream")["events"]
    assert len(events) == 7


def _query(query_id: str, name: str, dimensions: list[dict[str, str]], stat: str) -> dict[str, Any]:
    metric = {"Namespace": "mmedeploy", "MetricName": name, "Dimensions": dimensions}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": PERIOD, "Stat": stat}}


# -- the percentile seam ------------------------------------------------------------------

DIMENSIONS = [{"Name": "Model", "Value": "m"}, {"Name": "Version", "Value": "1"}]


def _put(cloudwatch: Any, **datum: Any) -> None:
    cloudwatch.put_metric_data(
        Namespace="mmedeploy",
        MetricData=[{"MetricName": "Latency", "Dimensions": DIMENSIONS, "Timestamp": NOW, **datum}],
    )


def _stat(cloudwatch: Any, stat: str) -> list[float]:
    answer = cloudwatch.get_metric_data(MetricDataQueries=[_query("q", "Latency", DIMENSIONS, stat)], **window())
    return answer["MetricDataResults"][0]["Values"]  # type: ignore[no-any-return]


def _datapoint(cloudwatch: Any, extended: list[str], statistics: list[str] | None = None) -> dict[str, Any]:
    """The one datapoint GetMetricStatistics answers over the window."""
    answer = cloudwatch.get_metric_statistics(
        Namespace="mmedeploy",
        MetricName="Latency",
        Dimensions=DIMENSIONS,
        Period=PERIOD,
        ExtendedStatistics=extended,
        **({"Statistics": statistics} if statistics else {}),
        **window(),
    )
    (datapoint,) = answer["Datapoints"]
    return datapoint  # type: ignore[no-any-return]


def test_moto_has_no_percentiles_of_its_own(aws: boto3.session.Session) -> None:
    # if this fails, moto computes them: drop the seam (moto_seams.percentile_seams) for its own
    cloudwatch: Any = aws.client("cloudwatch")
    _put(cloudwatch, Value=1.0)
    with pytest.raises(Exception):  # noqa: B017 - moto fails on it (a 500 from its server)
        _stat(cloudwatch, "p99")
    assert "ExtendedStatistics" not in _datapoint(cloudwatch, ["p99"])


def test_percentiles_are_nearest_rank_over_the_raw_values(aws: boto3.session.Session, percentiles: None) -> None:
    # GIVEN the values 1..100, sent as Values/Counts in shuffled order, and one more value 100
    cloudwatch: Any = aws.client("cloudwatch")
    values = [float(v) for v in range(100, 0, -1)]
    _put(cloudwatch, Values=values[:50], Counts=[1.0] * 50)
    _put(cloudwatch, Values=values[50:])
    _put(cloudwatch, Value=100.0)
    # THEN of 101 values, rank ceil(p/100 * 101)
    assert _stat(cloudwatch, "p99") == [100.0]  # rank 100: the first 100
    assert _stat(cloudwatch, "p50") == [51.0]  # rank 51
    assert _stat(cloudwatch, "p90") == [91.0]  # rank 91
    assert _stat(cloudwatch, "p99.9") == [100.0]
    assert _stat(cloudwatch, "p0") == [1.0]
    assert _stat(cloudwatch, "p100") == [100.0]
    assert _stat(cloudwatch, "Sum") == [5150.0]  # other statistics as moto answers them
    # AND GetMetricStatistics answers ExtendedStatistics beside Statistics
    datapoint = _datapoint(cloudwatch, ["p99", "p50", "p10"], ["SampleCount"])
    assert datapoint["SampleCount"] == 101.0
    assert datapoint["ExtendedStatistics"] == {"p99": 100.0, "p50": 51.0, "p10": 11.0}


def test_counts_repeat_values_and_small_samples_take_the_highest(aws: boto3.session.Session, percentiles: None) -> None:
    cloudwatch: Any = aws.client("cloudwatch")
    _put(cloudwatch, Values=[10.0, 20.0, 30.0], Counts=[8.0, 1.0, 1.0])
    assert _stat(cloudwatch, "p80") == [10.0]  # rank 8 of 10
    assert _stat(cloudwatch, "p90") == [20.0]
    assert _stat(cloudwatch, "p99") == [30.0]


def test_no_percentile_where_cloudwatch_has_none(aws: boto3.session.Session, percentiles: None) -> None:
    cloudwatch: Any = aws.client("cloudwatch")
    # a statistic set of unknown spread: no percentile, no datapoint (moto would answer a 500)
    _put(cloudwatch, StatisticValues={"SampleCount": 2, "Sum": 3, "Minimum": 1, "Maximum": 2})
    assert _stat(cloudwatch, "p99") == []
    assert _stat(cloudwatch, "Maximum") == [2.0]


def test_a_statistic_set_of_one_value_counts_its_samples(aws: boto3.session.Session, percentiles: None) -> None:
    cloudwatch: Any = aws.client("cloudwatch")
    _put(cloudwatch, StatisticValues={"SampleCount": 9, "Sum": 45, "Minimum": 5, "Maximum": 5})
    _put(cloudwatch, Value=7.0)
    assert _stat(cloudwatch, "p90") == [5.0]  # rank 9 of 10
    assert _stat(cloudwatch, "p95") == [7.0]


def test_negative_values_have_no_percentile(aws: boto3.session.Session, percentiles: None) -> None:
    cloudwatch: Any = aws.client("cloudwatch")
    _put(cloudwatch, Values=[-1.0, 3.0])
    assert _stat(cloudwatch, "p50") == []


@pytest.mark.parametrize(("stat", "level"), [("p99", 99.0), ("p99.9", 99.9), ("p0", 0.0), ("p100", 100.0)])
def test_percentile_names(stat: str, level: float) -> None:
    assert moto_seams.percentile_level(stat) == level


@pytest.mark.parametrize("stat", ["p101", "P99", "tm99", "Sum", "p", "p-1"])
def test_other_statistics_are_not_percentiles(stat: str) -> None:
    assert moto_seams.percentile_level(stat) is None
