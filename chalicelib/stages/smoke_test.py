"""Warm a model on an endpoint and smoke-test it: one cold call (which pays the MME load), then
timed warm calls; every answer is checked against the config and the shipped test cases.

Shared by WarmStaging (staging MME) and WarmProduction (production MME): the same requests, the
same checks, the same retry rules (EndpointInvoker)."""

from __future__ import annotations

import statistics

from pydantic import BaseModel

from chalicelib.adapters.endpoint_invoker import EndpointInvoker
from chalicelib.domain.signature import ModelSummary
from chalicelib.domain.warmup.checks import check_response
from chalicelib.domain.warmup.requests import build_warm_requests
from chalicelib.domain.warmup.test_cases import TestCase


class SmokeTestFailed(Exception):
    """The model loaded but its answers do not match the config or the shipped test cases."""


class WarmResult(BaseModel):
    cold_load_ms: float
    warm_p50_ms: float
    requests: int


def warm_and_check(
    invoker: EndpointInvoker, target_model: str, served: ModelSummary, cases: list[TestCase], warm_requests: int
) -> WarmResult:
    requests = build_warm_requests(served, cases)
    # The first call's wall time, from first attempt to answer, is the cold load.
    cold = invoker.invoke(target_model, requests[0].body)
    cold_ms = (cold.waited_seconds + cold.seconds) * 1000
    problems = [f"{requests[0].name}: {p}" for p in check_response(served, requests[0], cold.body)]
    timings: list[float] = []
    for i in range(max(warm_requests, len(requests))):
        request = requests[i % len(requests)]
        answer = invoker.invoke(target_model, request.body)
        timings.append(answer.seconds * 1000)
        if i < len(requests):  # each case is checked once warm, too
            problems += [f"{request.name}: {p}" for p in check_response(served, request, answer.body)]
    if problems:
        raise SmokeTestFailed(f"{len(problems)} smoke-test problem(s): " + "; ".join(problems[:5]))
    return WarmResult(
        cold_load_ms=round(cold_ms, 1), warm_p50_ms=round(statistics.median(timings), 2), requests=len(timings)
    )


def describe_cases(cases: list[TestCase]) -> str:
    return f"{len(cases)} shipped test case(s)" if cases else "a request synthesised from the config"
