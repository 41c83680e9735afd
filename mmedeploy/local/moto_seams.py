"""The two places where moto alone cannot run mmedeploy, adapted here and nowhere else.

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
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import moto
from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule
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
    _installed = True
