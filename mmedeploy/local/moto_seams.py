"""The two places where moto alone cannot run mmedeploy, adapted here and nowhere else.

Pinned to one moto version: these patch moto internals, so an upgrade must re-check them (the
tests in tests/integration/test_moto_seams.py do) before bumping ``MOTO_VERSION``.

1. Lambda: moto runs functions in Docker. Here ``LambdaFunction.invoke`` runs the function's real
   handler in this process: the handler string (``functions.validate.handler``) is imported from
   the working tree, called with the event and a Lambda-like context under the function's
   environment variables; ``Event`` invocations run in a background thread. An exception is
   reported as Lambda reports it (``FunctionError`` + ``errorType``/``errorMessage``), so Step
   Functions Retry and Catch match on the exception's class name.
2. EventBridge: moto delivers rule targets only to SQS, logs and buses. Here targets of type
   Lambda and Step Functions are delivered too, honouring ``Input``, ``InputPath`` and
   ``InputTransformer``, asynchronously as EventBridge does.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import moto
from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule
from moto.utilities.arns import parse_arn

MOTO_VERSION = "5.2.5"
log = logging.getLogger("mmedeploy.local.seams")

Handler = Callable[[Any, Any], Any]


class EnvironmentConflict(RuntimeError):
    """Two functions need different values for one environment variable in this one process."""


@dataclass
class LambdaContext:
    """The attributes of AWS's Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


class _Environment:
    """Applies function environments to this process's ``os.environ``.

    All functions share one process, so a variable two functions set must have one value (the
    template gives every function the same table and bucket names); a clash is an error rather
    than a silent race.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: dict[str, str] = {}

    def apply(self, function_name: str, variables: dict[str, str]) -> None:
        with self._lock:
            for key, value in variables.items():
                owner = self._owner.get(key)
                if owner and owner != function_name and os.environ.get(key) != value:
                    raise EnvironmentConflict(
                        f"functions {owner} and {function_name} set {key} to different values; "
                        "the local stack runs them in one process, so give them one value"
                    )
                os.environ[key] = value
                self._owner.setdefault(key, function_name)


_environment = _Environment()
_handlers: dict[str, Handler] = {}


def resolve_handler(handler: str) -> Handler:
    """``package.module.attribute`` -> the callable, imported from the working tree."""
    if handler not in _handlers:
        module_name, _, attribute = handler.rpartition(".")
        if not module_name:
            raise ImportError(f"handler '{handler}' is not of the form module.function")
        _handlers[handler] = getattr(importlib.import_module(module_name), attribute)
    return _handlers[handler]


def run_handler(function: LambdaFunction, event: Any) -> tuple[str, bool]:
    """Run one invocation: (payload JSON, errored)."""
    context = LambdaContext(
        function_name=function.function_name,
        memory_limit_in_mb=int(function.memory_size or 128),
        timeout_s=int(function.timeout or 3),
        invoked_function_arn=function.function_arn,
    )
    try:
        _environment.apply(function.function_name, dict(function.environment_vars or {}))
        result = resolve_handler(function.handler)(event, context)
        return json.dumps(result), False
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as Lambda reports errors
        log.warning("function %s raised %s: %s", function.function_name, type(exc).__name__, exc)
        payload = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-8:],
            "requestId": context.aws_request_id,
        }
        return json.dumps(payload), True


def _invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    event = json.loads(body) if body else {}
    if request_headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
        threading.Thread(
            target=run_handler, args=(self, event), daemon=True, name=f"lambda-{self.function_name}"
        ).start()
        return ""
    payload, errored = run_handler(self, event)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload.encode()


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
    """Sends events to Lambda and Step Functions targets through this moto server's own API."""

    def __init__(self, endpoint_url: str) -> None:
        self._endpoint_url = endpoint_url

    def _client(self, service: str, region: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self._endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

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
    def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
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


def install(endpoint_url: str) -> None:
    """Patch moto in this process. ``endpoint_url`` is this process's moto server."""
    global _installed
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"the local stack's moto seams are written for moto {MOTO_VERSION}, found {moto.__version__}; "
            "re-check mmedeploy/local/moto_seams.py against the new version and run its tests"
        )
    if _installed:
        return
    LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
    Rule.send_to_targets = _send_to_targets(Deliverer(endpoint_url), Rule.send_to_targets)  # type: ignore[method-assign]
    _installed = True
