"""The places where moto alone cannot run mmedeploy, adapted here and nowhere else.

Pinned to one moto version: these patch moto internals, so an upgrade must re-check them (the
tests in tests/unit/test_moto_seams.py and tests/integration/test_local_stack.py do) before
bumping ``MOTO_VERSION``.

1. Lambda: moto runs functions in Docker. Here ``LambdaFunction.invoke`` hands the invocation to
   the local Lambda service (:mod:`mmedeploy.local.lambdas`), which runs the code moto holds for
   the function under AWS's runtime client, in a process of its own; the answer comes back as
   Lambda's Invoke API gives it (payload, ``X-Amz-Function-Error``), so Step Functions Retry and
   Catch match on the error type. ``Event`` invocations run in the background.
2. EventBridge: moto delivers rule targets only to SQS, logs and buses. Here targets of type
   Lambda and Step Functions are delivered too, honouring ``Input``, ``InputPath`` and
   ``InputTransformer``, asynchronously as EventBridge does.
3. Step Functions: moto announces nothing when an execution ends. Here each ending (SUCCEEDED,
   FAILED, TIMED_OUT, ABORTED) is put on the default bus as the "Step Functions Execution Status
   Change" event AWS sends, so the rule that reconciles stopped executions works locally. And
   moto's StopExecution drops its error and cause, and leaves an execution that waits for a task
   token waiting (until the token is answered or the task times out, days later); interrupted,
   the interpreter would end it FAILED with States.Timeout. Here a stop keeps its error and
   cause, interrupts those waits, and the execution is ABORTED (and announced) at once, as on
   AWS, even while a task runs (moto's interpreter would wait for the task to return).
4. S3: moto keeps a bucket's ``EventBridgeConfiguration`` (and sends the events) but leaves it out
   of ``GetBucketNotificationConfiguration``. Here the answer has it, as S3's does, so ``mmedeploy
   doctor`` checks the local staging bucket as it checks one on AWS.
5. CloudWatch: moto computes no percentiles: GetMetricData with ``Stat: "p99"`` fails (500) and
   GetMetricStatistics ignores ``ExtendedStatistics``. The rollout gates judge p99 latency per
   version, so here both answer percentiles as CloudWatch does, nearest-rank over the raw values
   moto keeps for the period (:func:`percentile`); a period with no value to rank has no datapoint.
6. DynamoDB: moto's TransactWriteItems copies every table it touches when it starts and, when a
   condition fails, puts the copies back, undoing whatever other requests wrote to those tables
   meanwhile (two reconcilers ending one rollout at once resurrected the canary item the first had
   deleted). Here every read and write of a table runs one at a time (:func:`dynamodb_seams`), so
   a transaction is isolated from the others and its rollback undoes only its own writes, as on
   AWS (the local stack's load is small: one request at a time costs it nothing it notices).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import moto
from moto.awslambda.models import LambdaFunction
from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatum, MetricDatumBase, Statistics
from moto.cloudwatch.responses import CloudWatchResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import Rule
from moto.s3.responses import S3Response
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.arns import parse_arn

from mmedeploy.local.lambdas.function import FunctionConfig, Invocation

MOTO_VERSION = "5.2.5"
log = logging.getLogger("mmedeploy.local.seams")

# (function, its code, the event) -> what Lambda returned
RunFunction = Callable[[FunctionConfig, Callable[[], bytes], bytes], Invocation]
ClientFactory = Callable[[str, str], Any]  # (service, region) -> a client of this emulator


def invoke_function(function: LambdaFunction, run: RunFunction, payload: bytes) -> Invocation:
    """One invocation of what moto holds for ``function``."""
    return run(FunctionConfig.from_moto(function), lambda: function.code_bytes, payload or b"{}")


def _invoke(run: RunFunction) -> Callable[..., str | bytes]:
    def invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
        payload = body.encode() if isinstance(body, str) else bytes(body or b"")
        kind = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if kind == "DryRun":
            return ""
        if kind == "Event":
            threading.Thread(
                target=invoke_function, args=(self, run, payload), daemon=True, name=f"event-{self.function_name}"
            ).start()
            return ""
        answer = invoke_function(self, run, payload)
        if answer.function_error:
            response_headers["x-amz-function-error"] = answer.function_error
        return answer.payload

    return invoke


# -- EventBridge ----------------------------------------------------------------------------


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """The payload EventBridge hands a target: Input, InputPath, InputTransformer or the event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _json_path(event, target["InputPath"])
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return transform_input(
            transformer.get("InputTemplate", "<aws.events.event.json>"), transformer.get("InputPathsMap", {}), event
        )
    return event


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def transform_input(template: str, paths: dict[str, str], event: dict[str, Any]) -> Any:
    """EventBridge's InputTransformer. In a JSON template a placeholder outside a string takes the
    value as JSON (strings get quotes), one inside a string its text; other templates are text.
    (moto's own EventTemplateParser does not quote strings, so JSON templates break there.)"""
    values = {name: _json_path(event, path) for name, path in paths.items()}
    values["aws.events.event.json"] = event
    values["aws.events.event.ingestion-time"] = event.get("ingestion-time", event.get("time"))
    is_json = template.lstrip().startswith(("{", "["))

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if not is_json:
            return value if isinstance(value, str) else json.dumps(value)
        before = template[: match.start()]
        inside_string = (before.count('"') - before.count('\\"')) % 2 == 1
        if inside_string:
            return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)
        return json.dumps(value)

    text = _PLACEHOLDER.sub(replace, template)
    return json.loads(text) if is_json else text


def _json_path(event: dict[str, Any], path: str) -> Any:
    """The ``$.a.b`` subset of JSONPath that InputPath uses in practice."""
    if path in ("$", ""):
        return event
    value: Any = event
    for part in path.removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class Deliverer:
    """Sends events to Lambda and Step Functions targets through this moto server's own API, as
    the local administrator (on AWS, EventBridge invokes with the rule's role or the function's
    resource policy; see docs/local-stack.md, "What differs from AWS, and why")."""

    def __init__(self, client: ClientFactory) -> None:
        self._client = client

    def deliver(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        arn = parse_arn(target["Arn"])
        try:
            payload = json.dumps(target_input(target, event))
            if arn.service == "lambda":
                self._client("lambda", arn.region).invoke(
                    FunctionName=target["Arn"], InvocationType="Event", Payload=payload.encode()
                )
            else:
                # EventBridge names each execution itself; without a name moto calls every one
                # "None", so the second event would be refused as ExecutionAlreadyExists.
                self._client("stepfunctions", arn.region).start_execution(
                    stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=payload
                )
        except Exception as exc:  # noqa: BLE001 - EventBridge retries and then drops; we log
            log.warning("delivering %s to %s failed: %s", event.get("detail-type"), target["Arn"], exc)


_OURS = ("lambda", "states")


def _send_to_targets(deliverer: Deliverer, original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in _OURS]
        for target in ours:
            event = copy.deepcopy(original_event)
            threading.Thread(target=deliverer.deliver, args=(target, event), daemon=True).start()
        if len(ours) < len(self.targets):
            rest = copy.copy(self)  # moto's own delivery for SQS, logs and buses, without ours
            rest.targets = [t for t in self.targets if t not in ours]
            original(rest, original_event, transform_input)

    return send_to_targets


_installed = False


# -- Step Functions ------------------------------------------------------------------------

STATUS_CHANGE = "Step Functions Execution Status Change"


def status_change_entry(execution: Execution) -> dict[str, Any]:
    """The PutEvents entry of AWS's event for an execution that ended."""
    described = execution.to_describe_output()
    detail: dict[str, Any] = {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described["name"],
        "status": getattr(described["status"], "value", described["status"]),  # the enum's value
        "startDate": _epoch_ms(described.get("startDate")),
        "stopDate": _epoch_ms(described.get("stopDate")),
        "input": described.get("input"),
        "output": described.get("output"),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True},
        "error": described.get("error"),
        "cause": described.get("cause"),
    }
    return {
        "Source": "aws.states",
        "DetailType": STATUS_CHANGE,
        "Resources": [described["executionArn"]],
        "Detail": json.dumps(detail),
    }


def _epoch_ms(at: Any) -> int | None:
    return int(at.timestamp() * 1000) if at is not None else None


def _announce(client: ClientFactory, execution: Execution) -> None:
    """Put the execution's status-change event on the default bus, once."""
    if getattr(execution, _ANNOUNCED, False):
        return
    setattr(execution, _ANNOUNCED, True)
    entry = status_change_entry(execution)

    def put() -> None:
        try:
            client("events", execution.region_name).put_events(Entries=[entry])
        except Exception as exc:  # noqa: BLE001 - as on AWS, a lost event is the sweeper's to catch
            log.warning("announcing the end of %s failed: %s", execution.exec_arn, exc)

    # not on the execution's worker thread, which the emulator may still hold a lock for
    threading.Thread(target=put, daemon=True, name="sfn-status-change").start()


def _abort(execution: Execution, stopped: _Stop) -> None:
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = stopped.at
    execution.error, execution.cause = stopped.error, stopped.cause


def _announce_ending(client: ClientFactory, original: Callable[..., None]) -> Callable[..., None]:
    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        execution = self.execution
        stopped: _Stop | None = getattr(execution, _STOPPED, None)
        if stopped is not None:  # whatever the interrupted wait made of it: ABORTED, as StopExecution says
            _abort(execution, stopped)
        _announce(client, execution)

    return terminated


@dataclass(frozen=True)
class _Stop:
    at: Any
    error: str | None
    cause: str | None


_STOPPED = "_mmedeploy_stopped"
_ANNOUNCED = "_mmedeploy_announced"
_stop_request = threading.local()  # the StopExecution request's error and cause, for its backend call


def _stop_keeping_cause(original: Callable[..., Any]) -> Callable[..., Any]:
    def stop_execution(self: StepFunctionResponse) -> Any:
        _stop_request.error, _stop_request.cause = self._get_param("error"), self._get_param("cause")
        try:
            return original(self)
        finally:
            _stop_request.error = _stop_request.cause = None

    return stop_execution


def _interrupting_waits(client: ClientFactory, original: Callable[..., None]) -> Callable[..., None]:
    def stop(self: Execution, stop_date: Any, error: str | None, cause: str | None) -> None:
        error = error or getattr(_stop_request, "error", None) or None
        cause = cause or getattr(_stop_request, "cause", None) or None
        stopped = _Stop(stop_date, error, cause)
        setattr(self, _STOPPED, stopped)
        original(self, stop_date=stop_date, error=error, cause=cause)
        worker = self.exec_worker
        if worker is not None and worker.env is not None:
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()
        # ABORTED now, as on AWS: moto's interpreter ends only once a running task returns (the
        # Lambda invocation itself runs on, on AWS too; its late registry write is refused or moot)
        _abort(self, stopped)
        _announce(client, self)

    return stop


def _answering_eventbridge(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_bucket_notification(self: Any) -> Any:
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if configuration is None or getattr(configuration, "event_bridge", None) is None:
            return original(self)
        serialize = self.serialized

        def with_eventbridge(result: Any) -> Any:
            if isinstance(getattr(result, "result", None), dict):
                result.result["EventBridgeConfiguration"] = {}
            return serialize(result)

        self.serialized = with_eventbridge
        try:
            return original(self)
        finally:
            del self.serialized

    return get_bucket_notification


# -- CloudWatch percentiles ---------------------------------------------------------------

_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d+)?)")


def percentile_level(stat: str) -> float | None:
    """The level of a percentile statistic (``p99`` -> 99.0, ``p99.9``), ``None`` for any other."""
    match = _PERCENTILE.fullmatch(stat)
    level = float(match.group(1)) if match else None
    return level if level is not None and level <= 100 else None


def percentile(data: Sequence[MetricDatumBase], level: float) -> float | None:
    """CloudWatch's percentile of a period's data: nearest rank over its values. ``None`` where
    CloudWatch has none: no values, a negative value, or a statistic set whose values are unknown
    (one with Minimum == Maximum counts as SampleCount copies of that value)."""
    counted: list[tuple[float, float]] = []  # (value, how many times): a set's count may be huge
    for datum in data:
        if isinstance(datum, MetricDatum):
            counted.append((datum.value, 1))
        elif isinstance(datum, MetricAggregatedDatum) and datum.min == datum.max:
            counted.append((datum.min, datum.sample_count))
        else:
            return None
    if not counted or min(value for value, _ in counted) < 0:
        return None
    rank = max(1, math.ceil(level / 100 * sum(count for _, count in counted)))
    seen = 0.0
    for value, count in sorted(counted):
        seen += count
        if seen >= rank:
            return value
    return max(counted)[0]  # only where float counts round below the rank


def _with_percentiles(original: Callable[[Statistics, str], Any]) -> Callable[[Statistics, str], Any]:
    def get_statistics_for_type(self: Statistics, stat: str) -> Any:
        level = percentile_level(stat)
        return original(self, stat) if level is None else percentile(self.metric_data, level)

    return get_statistics_for_type


Handler = Callable[[CloudWatchResponse], Any]


def _answering_extended_statistics(original: Handler) -> Handler:
    def get_metric_statistics(self: CloudWatchResponse) -> Any:
        answer = original(self)
        requested = self._get_param("ExtendedStatistics") or []
        for datapoint in answer.result["Datapoints"] if requested else ():
            found = {stat: datapoint.get_statistics_for_type(stat) for stat in requested}
            # serialized as the Datapoint's ExtendedStatistics map
            datapoint.extended_statistics = {stat: value for stat, value in found.items() if value is not None}
        return answer

    return get_metric_statistics


def _leaving_out_missing_values(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    def get_metric_data(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        results = original(self, *args, **kwargs)
        for result in results:
            # a period without a percentile has no datapoint, as in CloudWatch (moto answered None)
            kept = [(v, t) for v, t in zip(result["values"], result["timestamps"], strict=True) if v is not None]
            result["values"], result["timestamps"] = [v for v, _ in kept], [t for _, t in kept]
        return results

    return get_metric_data


def percentile_seams() -> list[tuple[type, str, Callable[..., Any]]]:
    """(class, attribute, replacement) for CloudWatch's percentiles; install() applies them."""
    return [
        (Statistics, "get_statistics_for_type", _with_percentiles(Statistics.get_statistics_for_type)),
        (
            CloudWatchResponse,
            "get_metric_statistics",
            _answering_extended_statistics(CloudWatchResponse.get_metric_statistics),
        ),
        (CloudWatchBackend, "get_metric_data", _leaving_out_missing_values(CloudWatchBackend.get_metric_data)),
    ]


# -- DynamoDB: one request at a time ---------------------------------------------------------------
_DYNAMODB = threading.RLock()  # re-entrant: a transaction's own writes call put_item and the like
_DYNAMODB_OPERATIONS = ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items")


def _one_at_a_time(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB:
            return original(*args, **kwargs)

    return serialized


def dynamodb_seams() -> list[tuple[type, str, Callable[..., Any]]]:
    """(class, attribute, replacement) serializing moto's DynamoDB reads and writes; install() applies them."""
    return [(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name))) for name in _DYNAMODB_OPERATIONS]


def install(run: RunFunction, client: ClientFactory) -> None:
    """Patch moto in this process: invocations go to ``run`` (the local Lambda service), rule
    targets are delivered through ``client`` (this emulator, as the local administrator)."""
    global _installed
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"the local stack's moto seams are written for moto {MOTO_VERSION}, found {moto.__version__}; "
            "re-check mmedeploy/local/moto_seams.py against the new version and run its tests"
        )
    if _installed:
        return
    LambdaFunction.invoke = _invoke(run)  # type: ignore[method-assign]
    Rule.send_to_targets = _send_to_targets(Deliverer(client), Rule.send_to_targets)  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = _announce_ending(  # type: ignore[method-assign]
        client, BaseExecutionWorkerCommunication.terminated
    )
    Execution.stop = _interrupting_waits(client, Execution.stop)  # type: ignore[method-assign]
    StepFunctionResponse.stop_execution = _stop_keeping_cause(  # type: ignore[method-assign]
        StepFunctionResponse.stop_execution
    )
    S3Response.get_bucket_notification = _answering_eventbridge(  # type: ignore[method-assign]
        S3Response.get_bucket_notification
    )
    for owner, attribute, replacement in (*percentile_seams(), *dynamodb_seams()):
        setattr(owner, attribute, replacement)
    _installed = True
