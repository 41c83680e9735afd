"""Embedded Metric Format, locally: what CloudWatch Logs does with a function's EMF lines.

On AWS, CloudWatch Logs reads each log event of a Lambda function that is a JSON object with an
``_aws.CloudWatchMetrics`` directive and turns it into metric data; the function never calls
PutMetricData. The API's per-version metrics (:mod:`chalicelib.inference.model_metrics`) and the
stage Lambdas' Powertools metrics reach CloudWatch only that way, so locally
:class:`~mmedeploy.local.lambdas.logs.FunctionLogs` hands every line it ships to
:class:`EmbeddedMetrics`, which puts the same data into the emulator's CloudWatch: one datum per
metric per dimension set, with the line's timestamp and unit, arrays as ``Values``/``Counts``.

A line CloudWatch would refuse (not JSON, a directive that breaks the specification, a value that
is not a finite number, a unit CloudWatch does not know) yields no metric, as on AWS, where it only
counts in ``AWS/Logs EMFValidationErrors``; here the first of each kind is logged at debug.
Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("mmedeploy.local.lambda.emf")

# PutMetricData takes at most 1,000 datums a call
BATCH = 1000
# the specification's limits (an array's 100 values fit one datum: PutMetricData takes 150)
MAX_DIMENSION_KEYS = 30
MAX_METRICS = 100
MAX_ARRAY_VALUES = 100
# CloudWatch refuses values beyond 2^360 in magnitude
LARGEST = 2.0**360
# CloudWatch's StandardUnit (botocore's cloudwatch model; tests/unit/test_local_emf.py compares)
UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)

Datum = tuple[str, dict[str, Any]]  # (namespace, a PutMetricData MetricDatum)


class MalformedEmf(ValueError):
    """An EMF document CloudWatch would not extract metrics from; the message says why."""


def metric_data(message: str) -> list[Datum]:
    """The metric data CloudWatch Logs extracts from one log event: none for a line that is not
    EMF. Raises :class:`MalformedEmf` for an EMF line it would refuse (all of it, not a part)."""
    text = message.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return []  # the cheap test: most lines are not JSON objects, most JSON lines not EMF
    try:
        root = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEmf(f"not a JSON object: {exc.msg}") from None
    except ValueError:  # an integer of more digits than int() converts
        raise MalformedEmf("not a JSON object CloudWatch reads") from None
    if not isinstance(root, dict) or "_aws" not in root:
        return []  # a JSON log line that only mentions "_aws"
    metadata = root["_aws"]
    if not isinstance(metadata, dict):
        raise MalformedEmf("_aws is not an object")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise MalformedEmf("_aws.CloudWatchMetrics is not an array")
    at = _timestamp(metadata.get("Timestamp"))
    data: list[Datum] = []
    for directive in directives:
        data.extend(_directive(directive, root, at))
    return data


def _timestamp(value: Any) -> datetime.datetime:
    if not _is_number(value) or value < 0:
        raise MalformedEmf("_aws.Timestamp is not a number of milliseconds since the epoch")
    try:
        return datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEmf("_aws.Timestamp is out of range") from None


def _directive(directive: Any, root: dict[str, Any], at: datetime.datetime) -> list[Datum]:
    if not isinstance(directive, dict):
        raise MalformedEmf("a CloudWatchMetrics entry is not an object")
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255 or namespace.startswith("AWS/"):
        raise MalformedEmf("Namespace is missing, too long or reserved (AWS/)")
    dimension_sets = [_dimensions(keys, root) for keys in _array(directive, "Dimensions")]
    metrics = _array(directive, "Metrics")
    if len(metrics) > MAX_METRICS:
        raise MalformedEmf(f"a directive has more than {MAX_METRICS} metrics")
    data: list[Datum] = []
    for definition in metrics:
        datum = _definition(definition, root, at)
        if datum is not None:
            data.extend((namespace, {**datum, "Dimensions": dimensions}) for dimensions in dimension_sets)
    return data


def _array(directive: dict[str, Any], key: str) -> list[Any]:
    value = directive.get(key)
    if not isinstance(value, list):
        raise MalformedEmf(f"{key} is not an array")
    return value


def _dimensions(keys: Any, root: dict[str, Any]) -> list[dict[str, str]]:
    if not isinstance(keys, list) or len(keys) > MAX_DIMENSION_KEYS:
        raise MalformedEmf(f"a dimension set is not an array of at most {MAX_DIMENSION_KEYS} keys")
    dimensions = []
    for key in keys:
        value = root.get(key) if isinstance(key, str) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise MalformedEmf("a dimension key is not a string of 1 to 255 characters")
        if not isinstance(value, str) or not 1 <= len(value) <= 1024:
            raise MalformedEmf(f"dimension {key!r} has no string value of 1 to 1,024 characters")
        dimensions.append({"Name": key, "Value": value})
    return dimensions


def _definition(definition: Any, root: dict[str, Any], at: datetime.datetime) -> dict[str, Any] | None:
    """One metric's datum without its dimensions; ``None`` for an empty array (no value)."""
    if not isinstance(definition, dict):
        raise MalformedEmf("a Metrics entry is not an object")
    name = definition.get("Name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise MalformedEmf("a metric Name is not a string of 1 to 255 characters")
    shape: dict[str, Any] = {"MetricName": name, "Timestamp": at}
    unit = definition.get("Unit")
    if unit is not None:
        if unit not in UNITS:
            raise MalformedEmf(f"metric {name!r} has a unit CloudWatch does not know: {unit!r}")
        shape["Unit"] = unit
    resolution = definition.get("StorageResolution")
    if resolution is not None:
        if resolution not in (1, 60) or isinstance(resolution, bool):
            raise MalformedEmf(f"metric {name!r} has a StorageResolution other than 1 or 60")
        shape["StorageResolution"] = resolution
    if name not in root:
        raise MalformedEmf(f"metric {name!r} has no value")
    value = root[name]
    if isinstance(value, list):
        if len(value) > MAX_ARRAY_VALUES:
            raise MalformedEmf(f"metric {name!r} has more than {MAX_ARRAY_VALUES} values")
        for item in value:
            _check_value(name, item)
        if not value:
            return None  # PutMetricData would read an empty Values as the value 0
        counted = Counter(float(item) for item in value)  # first-seen order
        return {**shape, "Values": list(counted), "Counts": [float(c) for c in counted.values()]}
    _check_value(name, value)
    return {**shape, "Value": float(value)}


def _check_value(name: str, value: Any) -> None:
    # the magnitude first: an integer too large for a float fails math.isfinite with OverflowError
    if not _is_number(value) or abs(value) > LARGEST or not math.isfinite(value):
        raise MalformedEmf(f"metric {name!r} has a value that is not a finite number")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class EmbeddedMetrics:
    """Puts the metric data of the EMF lines it is given into CloudWatch, batched per namespace.
    Called on the log shipping thread: nothing here runs on an invocation's path, and nothing
    raises into the log path (a refused call is logged, as the log shipping does)."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._reported: set[tuple[str, str]] = set()

    def publish(self, events: Iterable[tuple[str, str]]) -> int:
        """``events``: (log group, message). Returns how many datums went to CloudWatch."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for group, message in events:
            try:
                data = metric_data(message)
            except MalformedEmf as exc:
                self._report(group, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a line must never break the log path
                self._report(group, f"unreadable: {exc!r}")
                continue
            for namespace, datum in data:
                by_namespace.setdefault(namespace, []).append(datum)
        sent = 0
        for namespace, datums in by_namespace.items():
            for start in range(0, len(datums), BATCH):
                batch = datums[start : start + BATCH]
                try:
                    self._client().put_metric_data(Namespace=namespace, MetricData=batch)
                    sent += len(batch)
                except Exception as exc:  # noqa: BLE001 - the log lines are kept; metrics are best effort
                    log.warning("could not put %d EMF datums of %s into CloudWatch: %s", len(batch), namespace, exc)
        return sent

    def _report(self, group: str, reason: str) -> None:
        # once per function and reason: a function that writes a bad line writes it on every request
        if (group, reason) not in self._reported:
            self._reported.add((group, reason))
            log.debug("ignored a malformed EMF line in %s (as CloudWatch does): %s", group, reason)
