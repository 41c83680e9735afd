"""WarmStaging: load the model on the staging MME, smoke-test it, and time it.

The first call pays the cold load (MME answers ModelNotReady meanwhile; the invoker retries);
its wall time from first attempt to answer is the cold-load time. Then the warm requests (the
tarball's test cases, or one synthesised from the config) are timed for the p50.
"""

from __future__ import annotations

import statistics

from chalicelib.endpoint_invoker import EndpointInvoker
from chalicelib.lifecycle import Status
from chalicelib.pipeline.stage_io import WarmInput, WarmResult
from chalicelib.pipeline.tracker import LifecycleTracker
from chalicelib.registry import ModelVersion
from chalicelib.warmup import build_warm_requests, check_response

ACTOR = "pipeline/warm-staging"


class SmokeTestFailed(Exception):
    """The model loaded but its answers do not match the config or the shipped test cases."""


class NothingToServe(Exception):
    """Validation found no served model (cannot happen for a VALIDATED version)."""


class WarmStage:
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
        target_model = record.target_model
        requests = build_warm_requests(served, warm.validation.test_cases)

        cold = self._invoker.invoke(target_model, requests[0].body)
        cold_ms = (cold.waited_seconds + cold.seconds) * 1000
        problems = [f"{requests[0].name}: {p}" for p in check_response(served, requests[0], cold.body)]
        timings: list[float] = []
        calls = max(self._warm_requests, len(requests))
        for i in range(calls):
            request = requests[i % len(requests)]
            answer = self._invoker.invoke(target_model, request.body)
            timings.append(answer.seconds * 1000)
            if i < len(requests):  # each case is checked once warm, too
                problems += [f"{request.name}: {p}" for p in check_response(served, request, answer.body)]
        if problems:
            raise SmokeTestFailed(f"{len(problems)} smoke-test problem(s): " + "; ".join(problems[:5]))

        result = WarmResult(
            cold_load_ms=round(cold_ms, 1), warm_p50_ms=round(statistics.median(timings), 2), requests=len(timings)
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

        cases = len(warm.validation.test_cases)
        how = f"{cases} shipped test case(s)" if cases else "a request synthesised from the config"
        self._tracker.move(
            warm.name,
            warm.version,
            Status.STAGED,
            ACTOR,
            f"warm on staging: cold load {result.cold_load_ms / 1000:.2f} s, warm p50 {result.warm_p50_ms:.1f} ms; "
            f"smoke-tested with {how}",
            metrics,
        )
        return result
