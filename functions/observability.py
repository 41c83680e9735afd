"""Powertools for every stage Lambda: one logger, tracer and metrics namespace."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="mmedeploy")
tracer = Tracer(service="mmedeploy")
metrics = Metrics(namespace="mmedeploy", service="mmedeploy")
