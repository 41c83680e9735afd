"""Does a warm-up response look like what the served model's config promises, and does it hold
what the test case expects? Problems come back as sentences for the registry and Slack."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from chalicelib.domain.signature import ModelSummary, TensorSpec, kserve_datatype, shape_problem
from chalicelib.domain.warmup.requests import WarmRequest
from chalicelib.domain.warmup.tensors import data_problem, flatten, index_in
from chalicelib.domain.warmup.test_cases import ExpectedOutput, Tolerance


def check_response(served: ModelSummary, request: WarmRequest, response: dict[str, Any]) -> list[str]:
    """Human-readable problems with ``response`` (a KServe v2 JSON response); empty means it passed.
    The caller names the request (``request.name``) when it reports them."""
    if "error" in response:
        return [f"the model answered with an error: {response['error']}"]
    listed = response.get("outputs")
    if not isinstance(listed, list):
        return ["the response has no 'outputs' list"]
    outputs = {o.get("name"): o for o in listed if isinstance(o, dict)}
    problems: list[str] = []
    for spec in served.outputs:
        output = outputs.get(spec.name)
        if output is None:
            problems.append(f"output '{spec.name}' is missing from the response")
        else:
            problems += _conforms(served, spec, output)
    if request.expected is not None:
        declared = {spec.name for spec in served.outputs}
        for expected in request.expected.outputs:
            output = outputs.get(expected.name)
            if output is None:
                if expected.name not in declared:  # a declared one is reported above already
                    problems.append(f"output '{expected.name}' is missing from the response")
                continue
            problems += _matches(expected, output, request.expected.tolerance)
    return problems


def _conforms(served: ModelSummary, spec: TensorSpec, output: dict[str, Any]) -> list[str]:
    name = f"output '{spec.name}'"
    datatype, shape = output.get("datatype"), output.get("shape")
    wanted = kserve_datatype(spec.data_type)
    problems = [f"{name} has datatype {datatype} but the config says {wanted}"] if datatype != wanted else []
    if not _is_shape(shape):
        return [*problems, f"{name} has no valid shape ({shape!r})"]
    mismatch = shape_problem(shape, spec, served)
    if mismatch:
        problems.append(f"{name}: {mismatch}")
    if "data" not in output:
        return [*problems, f"{name} has no JSON 'data' (binary outputs are not checked)"]
    if not problems:  # values are judged only against a datatype and shape that are right
        wrong = data_problem(str(datatype), shape, flatten(output["data"]))
        problems += [f"{name}: {wrong}"] if wrong else []
    return problems


def _matches(expected: ExpectedOutput, output: dict[str, Any], tolerance: Tolerance) -> list[str]:
    name = f"output '{expected.name}'"
    shape = output.get("shape")
    if expected.shape is not None and shape != expected.shape:
        return [f"{name} has shape {shape} but the test case expects {expected.shape}"]
    actual = flatten(output.get("data", []))
    if len(actual) != len(expected.data):
        return [f"{name} has {len(actual)} value(s) but the test case expects {len(expected.data)}"]
    layout = shape if _is_shape(shape) and math.prod(shape) == len(actual) else [len(actual)]
    differing = [
        (i, got, want)
        for i, (got, want) in enumerate(zip(actual, expected.data, strict=True))
        if not _close(got, want, tolerance)
    ]
    if not differing:
        return []
    index, got, want = differing[0]
    where = f"{name}{index_in(layout, index)}"
    more = f"; {len(differing) - 1} more value(s) differ" if len(differing) > 1 else ""
    if _is_number(got) and _is_number(want):
        off, allowed = _difference(got, want), _allowed(want, tolerance)
        return [f"{where} is {got!r}, expected {want!r} (off by {off:.3g}, allowed {allowed:.3g}){more}"]
    return [f"{where} is {got!r}, expected {want!r}{more}"]


def _close(got: object, want: object, tolerance: Tolerance) -> bool:
    if _is_number(got) and _is_number(want):
        if got == want:  # also equal infinities
            return True
        if _is_nan(got) or _is_nan(want):
            return _is_nan(got) and _is_nan(want)
        return _difference(got, want) <= _allowed(want, tolerance)
    # Strings and booleans are exact; True is not 1 here.
    return type(got) is type(want) and got == want


def _difference(got: int | float, want: int | float) -> float:
    try:
        return float(abs(got - want))
    except OverflowError:  # an integer beyond float range: as far off as it gets
        return math.inf


def _allowed(want: int | float, tolerance: Tolerance) -> float:
    try:
        return tolerance.abs + tolerance.rel * abs(want)
    except OverflowError:
        return math.inf


def _is_nan(value: int | float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_shape(shape: object) -> TypeGuard[list[int]]:
    return isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
