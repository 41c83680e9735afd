"""What one Lambda function is to the local runtime, and what one invocation of it returns."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict


class FunctionConfig(BaseModel):
    """The configuration Lambda holds for a function (read from the emulator's record of it)."""

    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    role_arn: str
    code_sha256: str
    tracing_active: bool = False

    @classmethod
    def from_moto(cls, function: Any) -> FunctionConfig:
        return cls(
            name=function.function_name,
            arn=function.function_arn,
            handler=function.handler or "",
            runtime=function.run_time or "",
            timeout_s=int(function.timeout or 3),
            memory_mb=int(function.memory_size or 128),
            environment={str(k): str(v) for k, v in (function.environment_vars or {}).items()},
            role_arn=function.role,
            code_sha256=function.code_sha_256,
            tracing_active=(function.tracing_config or {}).get("Mode") == "Active",
        )

    @cached_property
    def digest(self) -> str:
        """Changes whenever the code or any setting does: environments of an older digest retire."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class Invocation(BaseModel):
    """What one invocation returned, as Lambda's Invoke API reports it."""

    request_id: str
    payload: bytes
    # Lambda's X-Amz-Function-Error: "Unhandled" for every error the runtime or platform reports
    function_error: str | None = None

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        try:
            return str(json.loads(self.payload).get("errorType") or "") or None
        except (ValueError, AttributeError):
            return None


def error_payload(error_type: str, message: str, request_id: str = "") -> bytes:
    """An error in the shape Lambda's runtime and platform report errors in."""
    body: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if request_id:
        body["requestId"] = request_id
    return json.dumps(body).encode()
