"""The per-version inference metrics: the contract between the API that writes them
(``chalicelib/inference/model_metrics.py``, as CloudWatch EMF) and what reads them back (the
rollout's gates, through ``chalicelib/adapters/version_metrics.py``).

Every request the API answers for a model version adds one datapoint of each metric under the
dimensions ``Model`` and ``Version``: ``Invocations`` (1), ``Errors`` (1 when the answer was a 5xx:
the model raised or answered an error, the endpoint failed, timed out or was not ready),
``ClientErrors`` (1 for a 4xx: the request was refused before the model ran), ``Latency`` (the
whole request, ms) and ``ModelLatency`` (InvokeEndpoint alone, ms; absent when it was not called).
"""

from __future__ import annotations

NAMESPACE = "mmedeploy"
MODEL_DIMENSION = "Model"
VERSION_DIMENSION = "Version"
INVOCATIONS = "Invocations"
ERRORS = "Errors"
CLIENT_ERRORS = "ClientErrors"
LATENCY = "Latency"
MODEL_LATENCY = "ModelLatency"
