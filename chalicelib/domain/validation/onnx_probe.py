"""Read an ONNX model's interface while it streams past, without holding its weights.

An ONNX file is one protobuf ``ModelProto``; the weights are ``GraphProto.initializer`` tensors
that can be gigabytes. This walker follows the protobuf wire format, descends only into the
fields it needs (graph inputs and outputs, initializer names and external-data references) and
skips everything else by length, so memory stays at a few kilobytes for any model size. The small
captured pieces are then decoded with ONNX's own message definitions (``schemas/onnx_interface.proto``,
copied from ONNX's schema), so the probe needs the protobuf runtime but not the onnx package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from chalicelib.domain.validation.schemas import onnx_interface_pb2 as onnx_pb

# ONNX TensorProto.DataType -> Triton config data_type
ONNX_TO_TRITON = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
MAX_CAPTURE = 1 << 20


class _Act(Enum):
    CAPTURE = 1
    DESCEND = 2


# field number -> (action, key). Everything not listed is skipped by length.
_TENSOR = {8: (_Act.CAPTURE, "name"), 13: (_Act.CAPTURE, "external_data")}
_GRAPH = {11: (_Act.CAPTURE, "input"), 12: (_Act.CAPTURE, "output"), 5: (_Act.DESCEND, "initializer")}
_MODEL = {7: (_Act.DESCEND, "graph")}
_SCHEMAS = {"initializer": _TENSOR, "graph": _GRAPH}
_VARINT_FIELDS = {("initializer", 14): "data_location", ("model", 1): "ir_version"}


@dataclass(frozen=True)
class OnnxTensor:
    name: str
    data_type: str | None  # Triton spelling; None for non-tensor or unknown types
    dims: tuple[int, ...] | None  # -1 for symbolic/unknown dims; None if no shape recorded


@dataclass
class OnnxSummary:
    inputs: list[OnnxTensor] = field(default_factory=list)
    outputs: list[OnnxTensor] = field(default_factory=list)
    initializers: set[str] = field(default_factory=set)
    external_files: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def runtime_inputs(self) -> list[OnnxTensor]:
        """Inputs a caller must feed: graph inputs that are not initializers (ONNX IR < 4 lists both)."""
        return [t for t in self.inputs if t.name not in self.initializers]


class _Malformed(Exception):
    pass


@dataclass
class _Frame:
    kind: str
    end: int | None
    values: dict[str, list[bytes]] = field(default_factory=dict)
    varints: dict[str, int] = field(default_factory=dict)


class OnnxProbe:
    """A member sink: feed it the ONNX file's bytes, then read ``summary`` after ``close``."""

    def __init__(self) -> None:
        self.summary = OnnxSummary()
        self._pos = 0
        self._stack = [_Frame("model", None)]
        self._graph: _Frame | None = None
        self._varint = 0
        self._shift = 0
        self._reading = "tag"  # tag | len | value | skip | capture
        self._field = 0
        self._remaining = 0
        self._capture = bytearray()
        self._capture_key = ""

    def write(self, data: memoryview) -> None:
        if self.summary.error is not None:
            return
        try:
            self._feed(data)
        except _Malformed as exc:
            self.summary.error = str(exc)

    def close(self) -> None:
        if self.summary.error is not None:
            return
        try:
            self._pop_finished()
            if self._reading != "tag" or len(self._stack) != 1:
                raise _Malformed("the file ends inside a protobuf field (truncated)")
            if self._graph is None:
                raise _Malformed("no graph found: not an ONNX ModelProto")
            self._decode(self._graph)
        except _Malformed as exc:
            self.summary.error = str(exc)

    # -- wire format -----------------------------------------------------------------------
    def _feed(self, data: memoryview) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._reading in ("skip", "capture"):
                take = min(self._remaining, n - i)
                if self._reading == "capture":
                    self._capture += data[i : i + take]
                i += take
                self._pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if self._reading == "capture":
                        frame = self._stack[-1]
                        frame.values.setdefault(self._capture_key, []).append(bytes(self._capture))
                        self._capture.clear()
                    self._reading = "tag"
                continue
            if self._reading == "tag":
                self._pop_finished()
            byte = data[i]
            i += 1
            self._pos += 1
            self._varint |= (byte & 0x7F) << self._shift
            self._shift += 7
            if self._shift > 70:
                raise _Malformed("a protobuf varint is too long")
            if byte & 0x80:
                continue
            value, self._varint, self._shift = self._varint, 0, 0
            self._on_varint(value)

    def _on_varint(self, value: int) -> None:
        frame = self._stack[-1]
        if self._reading == "tag":
            self._field, wire = value >> 3, value & 7
            if self._field == 0:
                raise _Malformed("protobuf field number 0")
            if wire == 0:
                self._reading = "value"
            elif wire == 2:
                self._reading = "len"
            elif wire in (1, 5):
                self._start_skip(8 if wire == 1 else 4)
            else:
                raise _Malformed(f"unsupported protobuf wire type {wire}")
        elif self._reading == "value":
            key = _VARINT_FIELDS.get((frame.kind, self._field))
            if key:
                frame.varints[key] = value
            self._reading = "tag"
        else:  # len
            schema = _MODEL if frame.kind == "model" else _SCHEMAS.get(frame.kind, {})
            action = schema.get(self._field)
            if action is None:
                self._start_skip(value)
            elif action[0] is _Act.DESCEND:
                end = self._pos + value
                self._check_within(end)
                child = _Frame(action[1], end)
                if action[1] == "graph":
                    self._graph = child
                self._stack.append(child)
                self._reading = "tag"
            else:
                if value > MAX_CAPTURE:
                    raise _Malformed(f"an ONNX {action[1]} entry of {value} bytes is implausible")
                self._capture_key = action[1]
                self._start_skip(value, capture=True)

    def _start_skip(self, length: int, capture: bool = False) -> None:
        self._check_within(self._pos + length)
        self._remaining = length
        self._reading = ("capture" if capture else "skip") if length else "tag"
        if capture and not length:
            self._stack[-1].values.setdefault(self._capture_key, []).append(b"")

    def _check_within(self, end: int) -> None:
        parent_end = self._stack[-1].end
        if parent_end is not None and end > parent_end:
            raise _Malformed("a protobuf field overruns its message")

    def _pop_finished(self) -> None:
        while len(self._stack) > 1 and self._stack[-1].end == self._pos:
            frame = self._stack.pop()
            if frame.kind == "initializer":
                self._finish_initializer(frame)

    def _finish_initializer(self, frame: _Frame) -> None:
        name = b"".join(frame.values.get("name", [b""])).decode("utf-8", "replace")
        self.summary.initializers.add(name)
        if frame.varints.get("data_location") == EXTERNAL:
            for raw in frame.values.get("external_data", []):
                entry = onnx_pb.StringStringEntryProto.FromString(raw)
                if entry.key == "location":
                    self.summary.external_files.add(entry.value)

    # -- decoding the captured pieces ------------------------------------------------------
    def _decode(self, graph: _Frame) -> None:
        try:
            self.summary.inputs = [_tensor(raw) for raw in graph.values.get("input", [])]
            self.summary.outputs = [_tensor(raw) for raw in graph.values.get("output", [])]
        except Exception as exc:
            raise _Malformed(f"a graph input/output does not decode: {exc}") from exc


def _tensor(raw: bytes) -> OnnxTensor:
    info = onnx_pb.ValueInfoProto.FromString(raw)
    if not info.type.HasField("tensor_type"):
        return OnnxTensor(info.name, None, None)
    tensor_type = info.type.tensor_type
    dims = None
    if tensor_type.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
    return OnnxTensor(info.name, ONNX_TO_TRITON.get(tensor_type.elem_type), dims)
