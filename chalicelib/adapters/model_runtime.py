"""InvokeEndpoint for the request path: one attempt, SageMaker's errors as the domain's (the API
answers them by app.HTTP_STATUS).

Unlike the pipeline's EndpointInvoker, nothing here waits out a load: API Gateway gives an
integration 29 s, so ModelNotReady is raised at once (503 with Retry-After) and the client
retries. The botocore client for this path has no retries and a read timeout under 29 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from chalicelib.adapters.endpoint_invoker import model_error_parts
from chalicelib.domain.errors import DomainError, ModelFailed, ModelNotReady, ModelTimedOut

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

# SageMaker keeps loading a model it answered ModelNotReady for; a few seconds later it may serve.
LOADING_RETRY_AFTER_S = 5
THROTTLED_RETRY_AFTER_S = 1


@dataclass(frozen=True, slots=True)
class Invoked:
    body: bytes
    content_type: str
    seconds: float


class ModelRuntime:
    def __init__(self, client: SageMakerRuntimeClient, clock: Callable[[], float] = time.perf_counter) -> None:
        self._runtime = client
        self._clock = clock

    def invoke(self, endpoint: str, target_model: str, body: bytes, content_type: str) -> Invoked:
        started = self._clock()
        try:
            response = self._runtime.invoke_endpoint(
                EndpointName=endpoint, TargetModel=target_model, ContentType=content_type, Body=body
            )
            payload = response["Body"].read()
        except self._runtime.exceptions.ModelNotReadyException:
            raise ModelNotReady(
                f"{target_model} is loading on {endpoint}; retry in {LOADING_RETRY_AFTER_S} s", LOADING_RETRY_AFTER_S
            ) from None
        except self._runtime.exceptions.ModelError as exc:
            raise ModelFailed(_model_error_message(exc.response)) from None
        except self._runtime.exceptions.ClientError as exc:
            raise _client_error(endpoint, exc.response) from None
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise ModelTimedOut(f"{endpoint} did not answer in time: {exc}") from None
        except BotocoreConnectionError as exc:
            raise ModelFailed(f"could not reach {endpoint}: {exc}") from None
        return Invoked(payload, str(response.get("ContentType") or ""), self._clock() - started)


def _model_error_message(response: Mapping[str, Any]) -> str:
    status, message = model_error_parts(response)
    return f"the model failed ({status or 'no status'}): {message}"


def _client_error(endpoint: str, response: Mapping[str, Any]) -> DomainError:
    error = response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in ("ThrottlingException", "ServiceUnavailable") or status in (429, 503):
        return ModelNotReady(f"{endpoint} is busy ({code}); retry shortly", THROTTLED_RETRY_AFTER_S)
    return ModelFailed(f"{endpoint} refused the request ({code}): {message}")
