"""What every stage of both state machines hands on: the error a Catch passes to the recording
stage (RecordOutcome, RecordPromotionOutcome), its reason as the registry keeps it, and the status
a recording stage returns."""

from __future__ import annotations

import json

from pydantic import BaseModel, field_validator


class StageError(BaseModel):
    """What a Catch hands on: ``{"Error": ..., "Cause": ...}``. The Cause may be null (a
    SendTaskFailure without one, or an emulator that drops it)."""

    Error: str
    Cause: str = ""

    @field_validator("Cause", mode="before")
    @classmethod
    def _no_cause(cls, value: object) -> object:
        return "" if value is None else value


class StageResult(BaseModel):
    """A stage's answer when all it did was move the version: the status it is in now."""

    status: str


def failure_reason(error: StageError) -> str:
    message = cause_message(error.Cause)
    return f"{error.Error}: {message}"[:1000] if message else error.Error


def cause_message(cause: str) -> str:
    """A Lambda error's Cause is its JSON error payload; other causes are plain text."""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause.strip()
    if isinstance(payload, dict):
        return str(payload.get("errorMessage") or payload.get("Cause") or "").strip()
    return cause.strip()
