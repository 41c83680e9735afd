"""WarmProduction: load the production copy on the production MME and smoke-test it before the
alias may point at it. The copy is read back through the validator first: its SHA-256 must be
the approved one, and its test cases are the ones the staging smoke test used."""

from __future__ import annotations

from chalicelib.adapters.artifact_store import ArtifactStore
from chalicelib.adapters.endpoint_invoker import EndpointInvoker
from chalicelib.domain.errors import ArtifactChanged
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.validator import inspect_tarball, report_of
from chalicelib.promote_model.ownership import require_owned
from chalicelib.promote_model.stage_io import PromotionStep
from chalicelib.stages.smoke_test import WarmResult, describe_cases, warm_and_check
from chalicelib.stages.tracker import LifecycleTracker

ACTOR = "pipeline/warm-production"


class WarmProduction:
    def __init__(
        self,
        tracker: LifecycleTracker,
        store: ArtifactStore,
        invoker: EndpointInvoker,
        production_bucket: str,
        warm_requests: int = 5,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self._tracker = tracker
        self._store = store
        self._invoker = invoker
        self._production_bucket = production_bucket
        self._warm_requests = warm_requests
        self._limits = limits or ArchiveLimits()

    def run(self, step: PromotionStep) -> WarmResult:
        registry = self._tracker.registry
        record = registry.get(step.name, step.version)
        require_owned(record, step.execution)
        inspection = inspect_tarball(self._store.open(self._production_bucket, record.key), record.key, self._limits)
        report = report_of(inspection)
        if report.sha256 != record.sha256 or report.served_model is None:
            raise ArtifactChanged(
                f"s3://{self._production_bucket}/{record.key} has SHA-256 {(report.sha256 or '')[:12]}, "
                f"approved was {(record.sha256 or '')[:12]}"
            )
        result = warm_and_check(
            self._invoker, record.target_model, report.served_model, inspection.test_cases, self._warm_requests
        )

        def metrics(current: ModelVersion) -> dict[str, object]:
            return {
                "metrics": {
                    **current.metrics,
                    "production_cold_load_ms": result.cold_load_ms,
                    "production_warm_p50_ms": result.warm_p50_ms,
                }
            }

        registry.annotate(
            step.name,
            step.version,
            ACTOR,
            f"warm on production: cold load {result.cold_load_ms / 1000:.2f} s, warm p50 "
            f"{result.warm_p50_ms:.1f} ms; smoke-tested with {describe_cases(inspection.test_cases)}",
            metrics,
        )
        return result
