"""The ONNX probe reads a model's interface from a stream without holding its weights."""

from __future__ import annotations

import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from chalicelib.domain.validation.onnx_probe import OnnxProbe
from examples.build_examples import build_onnx
from testkit.tarballs import codes, idcheck_repo, pack, validate_bytes


def probe(data: bytes, step: int) -> OnnxProbe:
    sink = OnnxProbe()
    view = memoryview(data)
    for start in range(0, len(data), step):
        sink.write(view[start : start + step])
    sink.close()
    return sink


@pytest.mark.parametrize("step", [1, 3, 64, 4096, 1 << 20])
def test_interface_is_read_the_same_at_any_chunk_size(step: int) -> None:
    summary = probe(build_onnx().SerializeToString(), step).summary
    assert summary.error is None
    assert [(t.name, t.data_type, t.dims) for t in summary.inputs] == [("FEATURES", "TYPE_FP32", (-1, 16))]
    assert [(t.name, t.data_type, t.dims) for t in summary.outputs] == [("LOGITS", "TYPE_FP32", (-1, 4))]
    assert summary.initializers == {"W1", "B1", "W2", "B2"}


def test_initializers_listed_as_inputs_are_not_runtime_inputs() -> None:
    # ONNX IR < 4 lists every initializer among the graph inputs too
    model = build_onnx()
    model.graph.input.append(helper.make_tensor_value_info("W1", TensorProto.FLOAT, [16, 32]))
    summary = probe(model.SerializeToString(), 4096).summary
    assert [t.name for t in summary.runtime_inputs] == ["FEATURES"]


def test_external_data_locations_are_collected() -> None:
    model = build_onnx()
    weights = model.graph.initializer[0]
    weights.data_location = TensorProto.EXTERNAL
    weights.ClearField("raw_data")
    weights.external_data.add(key="location", value="weights.bin")
    summary = probe(model.SerializeToString(), 7).summary
    assert summary.external_files == {"weights.bin"}


@pytest.mark.parametrize("data", [b"", b"\x08", b"not an onnx model at all", b"\x3a\xff\xff\xff\x7f"])
def test_garbage_is_an_error_not_an_exception(data: bytes) -> None:
    assert probe(data, 3).summary.error is not None


def test_a_large_model_is_validated_in_bounded_memory() -> None:
    # GIVEN the example ensemble whose ONNX model carries 64 MiB of (incompressible) weights
    rng = np.random.default_rng(0)
    model = build_onnx()
    big = numpy_helper.from_array(rng.standard_normal(16 << 20).astype(np.float32), "unused_weights")
    model.graph.initializer.append(big)
    files = idcheck_repo()
    files["idcheck_inferencer/1/model.onnx"] = model.SerializeToString()
    data = pack(files)
    del model, big, files
    # WHEN validated
    tracemalloc.start()
    report = validate_bytes(data, "idcheck_1.tar.gz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # THEN it is still checked against the config, and memory stays far below the model size
    assert report.valid, report.findings
    assert peak < 24 << 20


def test_onnx_checks_run_on_the_streamed_summary() -> None:
    model = build_onnx()
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    files = idcheck_repo()
    files["idcheck_inferencer/1/model.onnx"] = model.SerializeToString()
    assert "ONNX_TYPE_MISMATCH" in codes(validate_bytes(pack(files), "idcheck_1.tar.gz"))
    assert onnx.TensorProto.DOUBLE == 11  # the mapping the probe relies on
