"""Per-model inference metrics as CloudWatch EMF (one log line per request, no API call).

SageMaker publishes an MME's metrics per endpoint only; these are per model and version, so an
operator sees one model (or one side of a canary) misbehave: ``Invocations``, ``Errors`` (5xx:
the model or the endpoint failed), ``ClientErrors`` (4xx), ``Latency`` (the whole request, ms)
and ``ModelLatency`` (InvokeEndpoint alone, ms). Dimensions: ``Model``, ``Version``. The names are
the contract in ``chalicelib/domain/metrics.py``; the rollout's gates read them back.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from chalicelib.domain.metrics import (
    CLIENT_ERRORS,
    ERRORS,
    INVOCATIONS,
    LATENCY,
    MODEL_DIMENSION,
    MODEL_LATENCY,
    NAMESPACE,
    VERSION_DIMENSION,
)


class ModelMetrics:
    def __init__(self, namespace: str = NAMESPACE) -> None:
        self._namespace = namespace

    def record(
        self,
        name: str,
        version: str,
        route: str,
        status_code: int,
        latency_ms: float,
        model_latency_ms: float | None,
    ) -> None:
        # One instance per request: EphemeralMetrics keeps no state shared between threads.
        # service="": Powertools would add a "service" dimension from POWERTOOLS_SERVICE_NAME (the
        # template sets it), and CloudWatch matches dimensions exactly: a query by Model and
        # Version (the rollout's gates) would find nothing.
        metrics = EphemeralMetrics(namespace=self._namespace, service="")
        metrics.add_dimension(name=MODEL_DIMENSION, value=name)
        metrics.add_dimension(name=VERSION_DIMENSION, value=version)
        metrics.add_metric(name=INVOCATIONS, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=ERRORS, unit=MetricUnit.Count, value=int(status_code >= 500))
        metrics.add_metric(name=CLIENT_ERRORS, unit=MetricUnit.Count, value=int(400 <= status_code < 500))
        metrics.add_metric(name=LATENCY, unit=MetricUnit.Milliseconds, value=round(latency_ms, 3))
        if model_latency_ms is not None:
            metrics.add_metric(name=MODEL_LATENCY, unit=MetricUnit.Milliseconds, value=round(model_latency_ms, 3))
        metrics.add_metadata(key="route", value=route)
        metrics.add_metadata(key="status", value=status_code)
        metrics.flush_metrics()
