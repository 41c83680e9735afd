"""A model's signature: its tensors as its Triton config declares them, and the one check of a
KServe v2 tensor's datatype and shape against them (the inference API's requests, the warm-up's
test cases and the answers it checks all use it).

Triton's config says ``TYPE_FP32`` with ``dims`` that exclude the batch dimension; the KServe v2
protocol says ``FP32`` with a full ``shape``, whose first dimension is the batch when the model
batches (``max_batch_size > 0``). Triton refuses a batch over ``max_batch_size`` and takes any
smaller one, 0 included (its InferenceRequest::Normalize checks only the upper bound since
triton-inference-server/server#1473); so does this check.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

KServeType = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16",
    "BYTES",
]  # fmt: skip

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


class TensorSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    data_type: str
    dims: list[int]


class ModelSummary(BaseModel):
    """One Triton model in the tarball, as Triton will see it (platform/backend auto-completed)."""

    name: str
    platform: str | None = None
    backend: str | None = None
    max_batch_size: int = 0
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    versions: list[int] = []
    served: bool = False  # the model the MME loads under the TargetModel name

    @property
    def batched(self) -> bool:
        return self.max_batch_size > 0


def kserve_datatype(config_type: str) -> KServeType | None:
    """``TYPE_FP32`` -> ``FP32``, ``TYPE_STRING`` -> ``BYTES``; None for an invalid type."""
    return _CONFIG_TO_KSERVE.get(config_type)


def kserve_shape(spec: TensorSpec, max_batch_size: int) -> list[int]:
    """The shape a client sends (-1: any size): a batch dimension first when the model batches."""
    return ([-1] if max_batch_size > 0 else []) + list(spec.dims)


def shape_problem(shape: list[int], spec: TensorSpec, model: ModelSummary, max_batch: int | None = None) -> str | None:
    """Why ``shape`` does not fit the config's dims, as Triton judges it: the rank, each fixed
    dimension (-1 takes any size), and, when ``max_batch`` is given, a batch of at most that;
    None if it fits."""
    wanted = kserve_shape(spec, model.max_batch_size)
    needs = f"{wanted} (-1: any size{'; the first is the batch' if model.batched else ''})"
    if len(shape) != len(wanted):
        return f"shape {shape} has {len(shape)} dimension(s) but '{spec.name}' needs {needs}"
    if any(want not in (-1, got) for want, got in zip(wanted, shape, strict=True)):
        return f"shape {shape} does not fit '{spec.name}': it needs {needs}"
    if model.batched and max_batch is not None and shape[0] > max_batch:
        return f"batch {shape[0]} in shape {shape} is over the model's max_batch_size {max_batch}"
    return None
