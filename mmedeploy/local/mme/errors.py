"""The error shapes SageMaker Runtime's InvokeEndpoint answers with, so boto3 raises the same
exceptions against the local MME as against AWS (``client.exceptions.ModelError`` and so on).

The wire format is botocore's rest-json: the error type in ``x-amzn-ErrorType``, the modelled
members in the JSON body (botocore copies ModelError's ``OriginalStatusCode`` into
``error.response``).
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's payload limit


class MmeError(Exception):
    """An InvokeEndpoint error: HTTP status, botocore error type and modelled members."""

    status = 500
    error_type = "InternalFailure"

    def __init__(self, message: str, **members: Any) -> None:
        super().__init__(message)
        self.message = message
        self.members = members

    def body(self) -> bytes:
        return json.dumps({"message": self.message, **self.members}).encode()

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": f"{self.error_type}:", "Content-Type": "application/json"}


class ValidationError(MmeError):
    status, error_type = 400, "ValidationError"


class ModelNotReady(MmeError):
    """The model is still loading; the load goes on and a later call is served (HTTP 429)."""

    status, error_type = 429, "ModelNotReadyException"


class ServiceUnavailable(MmeError):
    status, error_type = 503, "ServiceUnavailable"


class PayloadTooLarge(MmeError):
    """What the SageMaker front door answers for a body over the limit: a bare 413 that botocore
    reports as error code '413' (there is no modelled exception for it)."""

    status, error_type = 413, ""

    def __init__(self, size: int) -> None:
        super().__init__(f"HTTP content length exceeded {MAX_BODY_BYTES} bytes (got {size}).")

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}


class ContainerError(Exception):
    """What the model container (Triton and its loader) answers with an error status; the front
    end wraps it in a ModelError, as SageMaker does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ModelError(MmeError):
    """The container answered with an error (HTTP 424 with the container's status inside).

    400: the model failed to load or rejected the request; 404: no such model under the endpoint's
    S3 prefix; 507: the model does not fit in the instance's memory.
    """

    status, error_type = 424, "ModelError"

    def __init__(self, original_status: int, original_message: str, endpoint: str, region: str) -> None:
        kind = "client" if original_status < 500 else "server"
        super().__init__(
            f'Received {kind} error ({original_status}) from primary with message "{original_message}". '
            f"See the local MME's Triton log for endpoint {endpoint} for more information.",
            OriginalStatusCode=original_status,
            OriginalMessage=original_message,
            LogStreamArn=f"arn:aws:logs:{region}:123456789012:log-group:/aws/sagemaker/Endpoints/{endpoint}",
        )
        self.original_status = original_status
        self.original_message = original_message
