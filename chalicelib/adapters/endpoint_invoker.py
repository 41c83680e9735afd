"""Invoking a model on a SageMaker multi-model endpoint, with MME's loading rules.

While an MME loads a model it answers ModelNotReadyException (HTTP 429) and keeps loading for up
to 360 s. botocore's retry modes do not retry it, so this does, with capped exponential backoff,
until ``load_timeout_s``. ModelError carries Triton's own status: 400 is a load failure or a
refused request, 404 an absent artifact, 507 out of memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

JSON = "application/json"


class InvocationError(Exception):
    """Base of what an invocation can end in, besides an answer."""


class ModelLoadFailed(InvocationError):
    """Triton refused to load the model (or refused the request): ModelError with status 400."""


class ModelOutOfMemory(InvocationError):
    """The endpoint has no room for the model: ModelError with status 507."""


class ModelArtifactNotFound(InvocationError):
    """The endpoint found no artifact under the TargetModel: ModelError with status 404."""


class ModelLoadTimedOut(InvocationError):
    """Still ModelNotReady after the load timeout."""


class ModelInvocationFailed(InvocationError):
    """Any other error answer."""


class Invocation(BaseModel):
    body: dict[str, Any]
    seconds: float  # wall time of the answered call
    waited_seconds: float  # time spent retrying ModelNotReady before it
    not_ready_answers: int


class EndpointInvoker:
    def __init__(
        self,
        client: SageMakerRuntimeClient,
        endpoint: str,
        load_timeout_s: float = 360.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runtime = client
        self._endpoint = endpoint
        self._load_timeout_s = load_timeout_s
        self._sleep = sleep
        self._clock = clock

    def invoke(self, target_model: str, request: dict[str, Any]) -> Invocation:
        started = self._clock()
        delay, not_ready = 0.25, 0
        body = json.dumps(request).encode()
        while True:
            attempt = self._clock()
            try:
                response = self._runtime.invoke_endpoint(
                    EndpointName=self._endpoint,
                    TargetModel=target_model,
                    ContentType=JSON,
                    Accept=JSON,
                    Body=body,
                )
            except self._runtime.exceptions.ModelNotReadyException as exc:
                not_ready += 1
                waited = self._clock() - started
                if waited >= self._load_timeout_s:
                    raise ModelLoadTimedOut(
                        f"{target_model} was still loading on {self._endpoint} after {waited:.0f} s"
                    ) from exc
                self._sleep(min(delay, max(0.0, self._load_timeout_s - waited)))
                delay = min(delay * 2, 10.0)
                continue
            except self._runtime.exceptions.ModelError as exc:
                raise _model_error(target_model, exc.response) from exc
            except self._runtime.exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                raise ModelInvocationFailed(
                    f"{self._endpoint} refused {target_model}: {error.get('Code')}: {error.get('Message')}"
                ) from exc
            answered = self._clock()
            payload = json.loads(response["Body"].read())
            return Invocation(
                body=payload, seconds=answered - attempt, waited_seconds=attempt - started, not_ready_answers=not_ready
            )


def model_error_parts(response: Mapping[str, Any]) -> tuple[int, str]:
    """A ModelError's original status (Triton's, 0 if absent) and message."""
    status = int(response.get("OriginalStatusCode") or 0)
    message = str(response.get("OriginalMessage") or response.get("Error", {}).get("Message", "")).strip()
    return status, message


def _model_error(target_model: str, response: Mapping[str, Any]) -> InvocationError:
    status, message = model_error_parts(response)
    if status == 400:
        return ModelLoadFailed(f"Triton could not load or run {target_model} (400): {message}")
    if status == 507:
        return ModelOutOfMemory(f"the endpoint has no memory for {target_model} (507): {message}")
    if status == 404:
        return ModelArtifactNotFound(f"the endpoint found no artifact {target_model} (404): {message}")
    return ModelInvocationFailed(f"{target_model} failed ({status or 'no status'}): {message}")
