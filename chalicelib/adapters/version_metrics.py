"""A model version's figures over a window, read back from CloudWatch: the per-version metrics the
API writes as EMF (``chalicelib/domain/metrics.py``), for the rollout's gates.

One GetMetricData call per version and window: the Sum of ``Invocations`` and of ``Errors`` and
the p99 of ``Latency``, under the dimensions ``Model`` and ``Version``, with one period that
covers the whole window (a percentile cannot be combined across periods).

CloudWatch rounds a start time within the last 15 days down to its minute and takes periods of
whole minutes (the EMF metrics are standard resolution), so the window is read from the start's
minute to its end and the figures say so (their ``start``). Should CloudWatch answer more than one
period all the same, the sums add up and the p99 is the highest of them (the gate errs towards
the slower).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import MetricsUnavailable
from chalicelib.domain.metrics import (
    ERRORS,
    INVOCATIONS,
    LATENCY,
    MODEL_DIMENSION,
    NAMESPACE,
    VERSION_DIMENSION,
)
from chalicelib.domain.rollout.figures import VersionFigures

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

SERVICE = "CloudWatch"
P99 = "p99"
# the query ids: GetMetricData wants them to start with a lower-case letter
_INVOCATIONS_ID, _ERRORS_ID, _P99_ID = "invocations", "errors", "latencyp99"


class VersionMetrics:
    def __init__(self, cloudwatch: CloudWatchClient, namespace: str = NAMESPACE) -> None:
        self._cloudwatch = cloudwatch
        self._namespace = namespace

    def figures(self, name: str, version: str, start: datetime, end: datetime) -> VersionFigures:
        """``name`` ``version``'s requests, errors and p99 latency from ``start``'s minute to ``end``
        (timezone-aware). Raises :class:`MetricsUnavailable` when CloudWatch refuses or fails."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        aligned = start.replace(second=0, microsecond=0)
        if end <= aligned:
            raise ValueError(f"the window ends ({end.isoformat()}) before it starts ({aligned.isoformat()})")
        period = max(60, math.ceil((end - aligned).total_seconds() / 60) * 60)
        values = self._values(self.queries(name, version, period), aligned, end)
        p99s = values[_P99_ID]
        return VersionFigures(
            name=name,
            version=version,
            start=aligned,
            end=end,
            invocations=round(sum(values[_INVOCATIONS_ID])),
            errors=round(sum(values[_ERRORS_ID])),
            p99_latency_ms=max(p99s) if p99s else None,
        )

    def queries(self, name: str, version: str, period: int) -> list[MetricDataQueryTypeDef]:
        """The request's three queries for one version and one period of ``period`` seconds."""
        return [
            self._query(_INVOCATIONS_ID, INVOCATIONS, "Sum", name, version, period),
            self._query(_ERRORS_ID, ERRORS, "Sum", name, version, period),
            self._query(_P99_ID, LATENCY, P99, name, version, period),
        ]

    def _query(
        self, query_id: str, metric: str, stat: str, name: str, version: str, period: int
    ) -> MetricDataQueryTypeDef:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self._namespace,
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": MODEL_DIMENSION, "Value": name},
                        {"Name": VERSION_DIMENSION, "Value": version},
                    ],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    def _values(self, queries: list[MetricDataQueryTypeDef], start: datetime, end: datetime) -> dict[str, list[float]]:
        values: dict[str, list[float]] = {query["Id"]: [] for query in queries}
        token: str | None = None
        try:
            while True:
                answer = (
                    self._cloudwatch.get_metric_data(
                        MetricDataQueries=queries, StartTime=start, EndTime=end, NextToken=token
                    )
                    if token
                    else self._cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
                )
                for result in answer.get("MetricDataResults", []):
                    status = result.get("StatusCode", "Complete")
                    if status in ("Forbidden", "InternalError"):
                        said = "; ".join(m.get("Value", "") for m in result.get("Messages", [])) or "no detail"
                        raise MetricsUnavailable(SERVICE, status, f"query {result.get('Id')}: {said}")
                    values.setdefault(result.get("Id", ""), []).extend(result.get("Values", []))
                token = answer.get("NextToken")
                if not token:
                    return values
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise MetricsUnavailable(SERVICE, error.get("Code", ""), error.get("Message", "")) from exc
        except BotoCoreError as exc:  # could not reach CloudWatch (connection, timeout)
            raise MetricsUnavailable(SERVICE, type(exc).__name__, str(exc)) from exc
