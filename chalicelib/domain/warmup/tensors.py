"""KServe v2 tensors' JSON data: row-major ``data`` that may be nested, checked against a datatype
and a shape (the shape itself is checked by :func:`chalicelib.domain.signature.shape_problem`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Scalar = bool | int | float | str

_INT_RANGES = {
    **{f"INT{bits}": (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, (1 << bits) - 1) for bits in (8, 16, 32, 64)},
}


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
