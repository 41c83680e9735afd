"""The warm-up requests sent to a freshly staged model: the tarball's test cases, or one request
synthesised from the served model's config when it ships none."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.signature import ModelSummary, TensorSpec, kserve_datatype
from chalicelib.domain.warmup.tensors import Scalar, element_count
from chalicelib.domain.warmup.test_cases import TestCase

SYNTHETIC_NAME = "synthetic"
SYNTHETIC_TEXT = "warmup"  # a short string for BYTES inputs


class WarmRequest(BaseModel):
    """One KServe v2 JSON inference request, and what its response must hold (None: only that it
    answers as the config says)."""

    model_config = ConfigDict(frozen=True)

    name: str
    body: dict[str, Any]
    expected: TestCase | None = None


def build_warm_requests(served: ModelSummary, cases: list[TestCase]) -> list[WarmRequest]:
    """One request per test case, or a single synthesised one when there are none.

    Raises ValueError for a config input with an invalid data type (the validator rejects those).
    """
    if not cases:
        return [WarmRequest(name=SYNTHETIC_NAME, body=_body(served, [_synthetic(served, s) for s in served.inputs]))]
    return [
        WarmRequest(
            name=case.name,
            body=_body(served, [tensor.model_dump(exclude_none=True) for tensor in case.inputs]),
            expected=case,
        )
        for case in cases
    ]


def _body(served: ModelSummary, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": inputs}
    # Ask for every declared output, so the check can see each one; with none declared
    # (auto-completed by Triton) leaving the list out returns them all.
    if served.outputs:
        body["outputs"] = [{"name": spec.name} for spec in served.outputs]
    return body


def _synthetic(served: ModelSummary, spec: TensorSpec) -> dict[str, Any]:
    datatype = kserve_datatype(spec.data_type)
    if datatype is None:
        raise ValueError(f"input '{spec.name}' has data type {spec.data_type!r}, which has no KServe v2 spelling")
    # Variable dimensions get the smallest size; a batching model gets a batch of one.
    shape = [1 if dim == -1 else dim for dim in spec.dims]
    if served.batched:
        shape = [1, *shape]
    return {"name": spec.name, "datatype": datatype, "shape": shape, "data": [_filler(datatype)] * element_count(shape)}


def _filler(datatype: str) -> Scalar:
    if datatype == "BYTES":
        return SYNTHETIC_TEXT
    if datatype == "BOOL":
        return False
    return 0.0 if datatype.startswith(("FP", "BF")) else 0
