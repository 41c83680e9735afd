"""Powertools for every stage Lambda: one logger and metrics namespace.

No Powertools Tracer: Lambda traces each invocation itself (Tracing: Active) and Step Functions
traces the execution; the X-Ray SDK the Tracer loads would add ~0.13 s to every stage's cold
start, and a deployment's stages start cold more often than not.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="mmedeploy")
metrics = Metrics(namespace="mmedeploy", service="mmedeploy")
