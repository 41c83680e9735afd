"""KServe v2 request and response framing, as Triton's HTTP endpoint speaks it.

A body is a JSON inference header, optionally followed by binary tensor data (Triton's binary
tensor extension: the header's length is in ``Inference-Header-Content-Length``). Only the
header is parsed: binary tensor bytes are passed on untouched, and the request body is forwarded
as the client sent it. SageMaker's Triton container takes the binary form as
``application/vnd.sagemaker-triton.binary+json;json-header-size=N``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidRequest, RequestTooLarge
from chalicelib.domain.signature import ModelSummary, TensorSpec, kserve_datatype, kserve_shape, shape_problem
from chalicelib.inference.api_contract import HEADER_LENGTH

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
SAGEMAKER_BINARY = "application/vnd.sagemaker-triton.binary+json"
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint refuses larger payloads

# bytes per element of the fixed-size KServe datatypes (BYTES is variable)
ITEM_SIZE = {
    "BOOL": 1,
    "UINT8": 1,
    "INT8": 1,
    "UINT16": 2,
    "INT16": 2,
    "FP16": 2,
    "BF16": 2,
    "UINT32": 4,
    "INT32": 4,
    "FP32": 4,
    "UINT64": 8,
    "INT64": 8,
    "FP64": 8,
}


def datatype_of(spec: TensorSpec) -> str:
    """The tensor's datatype as the protocol names it; a config type the table does not know
    passes without its ``TYPE_`` prefix."""
    return kserve_datatype(spec.data_type) or spec.data_type.removeprefix("TYPE_")


@dataclass(frozen=True, slots=True)
class InferBody:
    """A request or response body split into its JSON header and its binary tail."""

    header: dict[str, Any]
    header_length: int | None  # None: the whole body is JSON
    binary_length: int

    @property
    def content_type(self) -> str:
        """The content type InvokeEndpoint takes for this body."""
        if self.header_length is None:
            return JSON
        return f"{SAGEMAKER_BINARY};json-header-size={self.header_length}"


def parse_request(body: bytes, header_length: str | None) -> InferBody:
    """Check the framing of an inference request; InvalidRequest/RequestTooLarge say what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLarge(
            f"the request body is {len(body)} bytes; SageMaker takes at most {MAX_BODY_BYTES} "
            "(6 MB): send a smaller batch"
        )
    if not body:
        raise InvalidRequest("the request has no body: send a KServe v2 inference request")
    length = _header_length(header_length, len(body))
    try:
        header = json.loads(body if length is None else body[:length])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"the inference header is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("the inference header nests too deeply to be a KServe v2 request") from None
    if not isinstance(header, dict):
        raise InvalidRequest("the inference header must be a JSON object with an 'inputs' list")
    return InferBody(header, length, 0 if length is None else len(body) - length)


def _header_length(value: str | None, body_size: int) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise InvalidRequest(f"{HEADER_LENGTH} must be a number of bytes, not '{value}'") from None
    if not 0 < length <= body_size:
        raise InvalidRequest(f"{HEADER_LENGTH} is {length}, but the body has {body_size} bytes")
    return None if length == body_size else length


def check_request(request: InferBody, model: ModelSummary | None) -> None:
    """Refuse what Triton would refuse, naming the input: unknown names, datatypes and shapes
    that do not match the model's config, binary sizes that do not add up. Data is not read."""
    inputs = request.header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequest("the inference request needs a non-empty 'inputs' list")
    # Without recorded inputs (Triton auto-completes them from an ONNX graph) only framing is checked.
    expected = {spec.name: spec for spec in model.inputs} if model else {}
    binary_total = 0
    for position, tensor in enumerate(inputs):
        name, datatype, shape = _tensor_fields(tensor, position)
        parameters = tensor.get("parameters") or {}
        binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if binary_size is not None:
            if not isinstance(binary_size, int) or binary_size < 0:
                raise InvalidRequest(f"input '{name}': binary_data_size must be a number of bytes")
            binary_total += binary_size
            item_size = ITEM_SIZE.get(datatype)
            if item_size is not None and binary_size != math.prod(shape) * item_size:
                raise InvalidRequest(
                    f"input '{name}': shape {shape} of {datatype} is {math.prod(shape) * item_size} bytes, "
                    f"but binary_data_size says {binary_size}"
                )
        elif "data" not in tensor:
            raise InvalidRequest(f"input '{name}' has neither 'data' nor a binary_data_size parameter")
        if model is not None and expected:
            _check_against_config(name, datatype, shape, expected, model)
    if binary_total != request.binary_length:
        raise InvalidRequest(
            f"the inputs' binary_data_size add up to {binary_total} bytes, "
            f"but {request.binary_length} bytes follow the inference header"
        )
    if model is not None:
        _check_outputs(request.header.get("outputs"), model)


def _tensor_fields(tensor: Any, position: int) -> tuple[str, str, list[int]]:
    if not isinstance(tensor, dict):
        raise InvalidRequest(f"inputs[{position}] must be an object with name, datatype and shape")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"inputs[{position}] has no name")
    if not isinstance(datatype, str) or not datatype:
        raise InvalidRequest(f"input '{name}' has no datatype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidRequest(f"input '{name}': shape must be a list of non-negative integers")
    return name, datatype, shape


def _check_against_config(
    name: str, datatype: str, shape: list[int], expected: dict[str, TensorSpec], model: ModelSummary
) -> None:
    spec = expected.get(name)
    if spec is None:
        raise InvalidRequest(f"model has no input '{name}'; its inputs are {sorted(expected)}")
    wanted = datatype_of(spec)
    if datatype != wanted:
        raise InvalidRequest(f"input '{name}' is {wanted}, not {datatype}")
    problem = shape_problem(shape, spec, model, max_batch=model.max_batch_size)
    if problem:
        raise InvalidRequest(f"input '{name}': {problem}")


def _check_outputs(outputs: Any, model: ModelSummary) -> None:
    if outputs is None:
        return
    if not isinstance(outputs, list):
        raise InvalidRequest("'outputs' must be a list")
    known = {spec.name for spec in model.outputs}
    for position, output in enumerate(outputs):
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str):
            raise InvalidRequest(f"outputs[{position}] has no name")
        if known and name not in known:
            raise InvalidRequest(f"model has no output '{name}'; its outputs are {sorted(known)}")


@dataclass(frozen=True, slots=True)
class InferAnswer:
    body: bytes
    header_length: int | None  # for Inference-Header-Content-Length; None: all JSON

    @property
    def content_type(self) -> str:
        return JSON if self.header_length is None else OCTET_STREAM


def served_response(body: bytes, content_type: str, name: str, version: str) -> InferAnswer:
    """SageMaker's answer as Triton's HTTP endpoint gives it, naming the model as the client
    called it and the version that served (the endpoint knows them as TargetModel strings)."""
    length = _json_header_size(content_type)
    head, tail = (body, b"") if length is None else (body[:length], body[length:])
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return InferAnswer(body, length)  # not ours to judge: pass it on as it came
    if isinstance(header, dict):
        header["model_name"] = name
        header["model_version"] = version
        head = json.dumps(header, separators=(",", ":")).encode()
    return InferAnswer(head + tail, None if length is None else len(head))


def _json_header_size(content_type: str) -> int | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "json-header-size" and value.strip().isdigit():
            return int(value)
    return None


def metadata_tensors(specs: list[TensorSpec], max_batch_size: int) -> list[dict[str, Any]]:
    """Tensors as KServe v2 model metadata lists them."""
    return [
        {"name": spec.name, "datatype": datatype_of(spec), "shape": kserve_shape(spec, max_batch_size)}
        for spec in specs
    ]
