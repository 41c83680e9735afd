"""The API's errors, mapped to HTTP in one place: every refusal is an ``ApiError`` with its status,
an optional header (``Retry-After``) and a message, answered as KServe v2's ``{"error": "..."}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message}


class BadRequest(ApiError):
    status_code = 400


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class UpstreamModelError(ApiError):
    """The model answered with an error (SageMaker's ModelError): Triton's message, passed on."""

    status_code = 502


class NotReady(ApiError):
    """The endpoint is loading the model or throttling: the client should come back later."""

    status_code = 503

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class UpstreamTimeout(ApiError):
    status_code = 504
