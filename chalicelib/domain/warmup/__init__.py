"""Warm-up of a freshly staged model: the tarball's smoke-test cases (``tests/*.json``), the
requests sent to the staging MME, and the checks of its answers. Domain only: no AWS calls."""

from chalicelib.domain.warmup.checks import check_response
from chalicelib.domain.warmup.requests import WarmRequest, build_warm_requests
from chalicelib.domain.warmup.test_cases import (
    MAX_CASES,
    MAX_CASES_BYTES,
    ExpectedOutput,
    InputTensor,
    TestCase,
    Tolerance,
    load_test_cases,
)

__all__ = [
    "MAX_CASES",
    "MAX_CASES_BYTES",
    "ExpectedOutput",
    "InputTensor",
    "TestCase",
    "Tolerance",
    "WarmRequest",
    "build_warm_requests",
    "check_response",
    "load_test_cases",
]
