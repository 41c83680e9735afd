"""The validation report: the JSON contract of ``mmedeploy validate --json`` and the registry."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.domain.signature import ModelSummary
from chalicelib.domain.validation.findings import Finding, Severity


class ValidationReport(BaseModel):
    valid: bool
    model: str | None
    version: str | None
    sha256: str | None
    size: int
    uncompressed_size: int
    member_count: int
    findings: list[Finding]
    models: list[ModelSummary]
    test_cases: int = 0  # smoke-test cases (tests/*.json) the warm stage will send
    rollout_policy: RolloutOverrides | None = None  # what a valid rollout.json sets (issue 20)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def served_model(self) -> ModelSummary | None:
        return next((m for m in self.models if m.served), None)
