"""One version's figures over one window of a rollout step: what the gates judge."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VersionFigures(BaseModel):
    """A model version's requests, errors and p99 latency between ``start`` and ``end``, from the
    API's per-version metrics (``chalicelib/domain/metrics.py``).

    ``errors`` are the requests answered 5xx: the model raised or answered an error (the API
    answers 502), the endpoint failed, timed out (504) or was not ready (503). Requests refused
    before the model ran (4xx) are not errors: a client's bad request says nothing of the version.
    ``p99_latency_ms`` is None when CloudWatch holds no latency for the window."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    start: datetime
    end: datetime
    invocations: int = Field(ge=0)
    errors: int = Field(ge=0)
    p99_latency_ms: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _errors_within_invocations(self) -> VersionFigures:
        if self.errors > self.invocations:
            raise ValueError(f"{self.errors} errors of {self.invocations} invocations: errors are a part of them")
        return self

    @property
    def error_rate(self) -> float | None:
        """Errors per request; None without requests."""
        return self.errors / self.invocations if self.invocations else None
