"""Generate the binary parts of the example models: nothing is downloaded, nothing committed.

- ``idcheck_inferencer/1/model.onnx``: a 16 -> 32 -> 4 MLP built with ``onnx.helper``, weights
  from a fixed seed, with a symbolic batch dimension (Triton needs it when max_batch_size > 0).
- ``idcheck_preprocessing/python_env.tar.gz``: a small stand-in for a conda-pack archive. A real
  one is built with ``conda pack`` for the GPU image; locally the model runs in the stack's own
  Python, as DESIGN.md describes.

``reference_pipeline`` computes what the served ensemble must return, for tests.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).resolve().parent / "models"
IDCHECK = MODELS / "idcheck"
DECISIONS = ["approved", "declined", "resubmission_requested", "review"]
SEED = 20260101


def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return {
        "W1": rng.normal(0, 0.5, (16, 32)).astype(np.float32),
        "B1": rng.normal(0, 0.1, (32,)).astype(np.float32),
        "W2": rng.normal(0, 0.5, (32, 4)).astype(np.float32),
        "B2": rng.normal(0, 0.1, (4,)).astype(np.float32),
    }


def build_onnx() -> onnx.ModelProto:
    w = weights()
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["FEATURES", "W1", "B1"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["activated"]),
            helper.make_node("Gemm", ["activated", "W2", "B2"], ["LOGITS"]),
        ],
        "idcheck_mlp",
        [helper.make_tensor_value_info("FEATURES", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("LOGITS", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mmedeploy-examples")
    model.ir_version = 8  # readable by onnxruntime releases of the last few years
    onnx.checker.check_model(model)
    return model


def build_env_archive() -> bytes:
    """A tiny, deterministic tar.gz laid out like a conda-pack environment."""
    files = {
        "conda-meta/history": b"# placeholder environment for the mmedeploy example\n",
        "bin/conda-unpack": b"#!/bin/sh\n# conda-pack's relocation script would be here\n",
        "README.txt": b"Stand-in for `conda pack -n idcheck-pre -o python_env.tar.gz` (python 3.12, numpy).\n",
    }
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 946684800, 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def reference_pipeline(raw: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """What idcheck_pipeline returns for a [batch, 16] float32 input."""
    w = weights()
    raw = raw.astype(np.float32)
    features = (raw - raw.mean(axis=-1, keepdims=True)) / (raw.std(axis=-1, keepdims=True) + 1e-6)
    logits = np.maximum(features @ w["W1"] + w["B1"], 0) @ w["W2"] + w["B2"]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    return probabilities.astype(np.float32), [DECISIONS[i] for i in probabilities.argmax(axis=-1)]


def build() -> list[Path]:
    onnx_path = IDCHECK / "idcheck_inferencer" / "1" / "model.onnx"
    env_path = IDCHECK / "idcheck_preprocessing" / "python_env.tar.gz"
    # git keeps no empty directories, and an ensemble still needs its version directory.
    (IDCHECK / "idcheck_pipeline" / "1").mkdir(parents=True, exist_ok=True)
    (MODELS / "textstats" / "textstats" / "1").mkdir(parents=True, exist_ok=True)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(build_onnx().SerializeToString())
    env_path.write_bytes(build_env_archive())
    return [onnx_path, env_path]


if __name__ == "__main__":
    for path in build():
        print(f"generated {path.relative_to(MODELS.parent.parent)}")
