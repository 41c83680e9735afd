"""WarmStaging: load the model on the staging MME, smoke-test it, and time it (warmup.smoke_test).

The first call pays the cold load (MME answers ModelNotReady meanwhile; the invoker retries).
Then the warm requests (the tarball's test cases, or one synthesised from the config) are timed
for the p50.
"""

from __future__ import annotations

from chalicelib.adapters.endpoint_invoker import EndpointInvoker
from chalicelib.deploy_model.stage_io import WarmInput
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from chalicelib.stages.smoke_test import SmokeTestFailed, WarmResult, describe_cases, warm_and_check
from chalicelib.stages.tracker import LifecycleTracker

__all__ = ["SmokeTestFailed", "WarmStaging"]  # SmokeTestFailed: the error name Catch and tests see
ACTOR = "pipeline/warm-staging"


class NothingToServe(Exception):
    """Validation found no served model (cannot happen for a VALIDATED version)."""


class WarmStaging:
    def __init__(self, tracker: LifecycleTracker, invoker: EndpointInvoker, warm_requests: int = 5) -> None:
        self._tracker = tracker
        self._invoker = invoker
        self._warm_requests = warm_requests

    def run(self, warm: WarmInput) -> WarmResult:
        served = warm.validation.served
        if served is None:
            raise NothingToServe(f"{warm.name} {warm.version}: validation recorded no served model")
        record = self._tracker.registry.get(warm.name, warm.version)
        if record.status is Status.VALIDATED:  # else a retried step: warm again, repeat the final move
            record = self._tracker.move(
                warm.name, warm.version, Status.WARMING, ACTOR, "loading on the staging endpoint"
            ).record
        result = warm_and_check(
            self._invoker, record.target_model, served, warm.validation.test_cases, self._warm_requests
        )

        def metrics(current: ModelVersion) -> dict[str, object]:
            return {
                "metrics": {
                    **current.metrics,
                    "cold_load_ms": result.cold_load_ms,
                    "warm_p50_ms": result.warm_p50_ms,
                    "smoke_tests": float(len(warm.validation.test_cases)),
                }
            }

        self._tracker.move(
            warm.name,
            warm.version,
            Status.STAGED,
            ACTOR,
            f"warm on staging: cold load {result.cold_load_ms / 1000:.2f} s, warm p50 {result.warm_p50_ms:.1f} ms; "
            f"smoke-tested with {describe_cases(warm.validation.test_cases)}",
            metrics,
        )
        return result
