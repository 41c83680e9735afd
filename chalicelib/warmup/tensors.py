"""KServe v2 tensors against a Triton config: datatype spelling, shapes and JSON data.

Triton's config says ``TYPE_FP32`` with ``dims`` that exclude the batch dimension; the KServe v2
protocol says ``FP32`` with a full ``shape`` and (in JSON) row-major ``data`` that may be nested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from chalicelib.validation.report import ModelSummary, TensorSpec

KServeType = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16",
    "BYTES",
]  # fmt: skip
Scalar = bool | int | float | str

# Triton's one rename: TYPE_STRING travels as BYTES; every other type drops the prefix.
_CONFIG_TO_KSERVE: dict[str, KServeType] = {
    "TYPE_BOOL": "BOOL",
    "TYPE_UINT8": "UINT8",
    "TYPE_UINT16": "UINT16",
    "TYPE_UINT32": "UINT32",
    "TYPE_UINT64": "UINT64",
    "TYPE_INT8": "INT8",
    "TYPE_INT16": "INT16",
    "TYPE_INT32": "INT32",
    "TYPE_INT64": "INT64",
    "TYPE_FP16": "FP16",
    "TYPE_FP32": "FP32",
    "TYPE_FP64": "FP64",
    "TYPE_BF16": "BF16",
    "TYPE_STRING": "BYTES",
}
_INT_RANGES = {
    **{f"INT{bits}": (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, (1 << bits) - 1) for bits in (8, 16, 32, 64)},
}


def kserve_datatype(config_type: str) -> KServeType | None:
    """``TYPE_FP32`` -> ``FP32``, ``TYPE_STRING`` -> ``BYTES``; None for an invalid type."""
    return _CONFIG_TO_KSERVE.get(config_type)


def flatten(data: object) -> list[object]:
    """Row-major flattening of nested JSON lists, as KServe reads ``data``."""
    if not isinstance(data, list):
        return [data]
    flat: list[object] = []
    for item in data:
        flat.extend(flatten(item))
    return flat


def element_count(shape: Iterable[int]) -> int:
    return math.prod(shape)


def batched(model: ModelSummary) -> bool:
    return model.max_batch_size > 0


def shape_problem(shape: list[int], spec: TensorSpec, model: ModelSummary, max_batch: int | None = None) -> str | None:
    """Why ``shape`` does not fit the config's dims (-1 matches any size; a leading batch dimension
    when the model batches, at most ``max_batch`` when given); None if it fits."""
    dims = list(spec.dims)
    lead = ["batch"] if batched(model) else []  # Triton's shapes carry the batch; config dims do not
    wanted = "[" + ", ".join([*lead, *("any" if d == -1 else str(d) for d in dims)]) + "]"
    if len(shape) != len(lead) + len(dims):
        return f"shape {shape} has {len(shape)} dimension(s) but '{spec.name}' needs {wanted}"
    if lead and (shape[0] < 1 or (max_batch is not None and shape[0] > max_batch)):
        return f"batch size {shape[0]} in shape {shape} is outside 1..{max_batch or 'n'} for '{spec.name}'"
    for actual, dim in zip(shape[len(lead) :], dims, strict=True):
        if dim != -1 and actual != dim:
            return f"shape {shape} does not fit '{spec.name}': it needs {wanted}"
    return None


def data_problem(datatype: str, shape: list[int], data: Sequence[object]) -> str | None:
    """Why flat ``data`` is not ``shape`` elements of ``datatype`` in KServe JSON; None if it is."""
    needed = element_count(shape)
    if len(data) != needed:
        return f"data has {len(data)} value(s) but shape {shape} needs {needed}"
    for index, value in enumerate(data):
        if not _fits(datatype, value):
            return f"data[{index}] = {value!r} is not a {datatype} value"
    return None


def _fits(datatype: str, value: object) -> bool:
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int subclass in Python, not a number in KServe JSON
        return False
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        return isinstance(value, int) and low <= value <= high
    return isinstance(value, int | float)


def index_in(shape: list[int], flat_index: int) -> list[int]:
    """The multi-dimensional index of a row-major ``flat_index`` (for messages)."""
    index: list[int] = []
    for size in reversed(shape):
        flat_index, position = divmod(flat_index, size) if size else (flat_index, 0)
        index.append(position)
    return list(reversed(index))
