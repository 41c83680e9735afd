"""Generate the binary parts of the example models: nothing is downloaded, nothing committed.

- ``idcheck_inferencer/1/model.onnx``: a 16 -> 32 -> 4 MLP built with ``onnx.helper``, weights
  from a fixed seed, with a symbolic batch dimension (Triton needs it when max_batch_size > 0).
- ``idcheck_preprocessing/python_env.tar.gz``: a small stand-in for a conda-pack archive. A real
  one is built with ``conda pack`` for the GPU image; locally the model runs in the stack's own
  Python (docs/local-stack.md, "The local MME").
- ``tests/approved.json``, ``tests/declined.json``: smoke-test cases for the served ensemble
  (docs/model-repository.md, "Smoke-test cases"): seeded inputs, outputs from ``reference_pipeline``.

``reference_pipeline`` computes what the served ensemble must return, for tests.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).resolve().parent / "models"
IDCHECK = MODELS / "idcheck"
DECISIONS = ["approved", "declined", "resubmission_requested", "review"]
SEED = 20260101
CASE_DECISIONS = ("approved", "declined")  # one smoke-test case per decision
# A clear winner, so float differences between a GPU and this CPU reference cannot flip the decision.
CASE_MIN_MARGIN = 0.1
CASE_TOLERANCE = {"abs": 0.002, "rel": 0.001}


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


def build_test_cases() -> dict[str, bytes]:
    """``tests/<decision>.json`` for each of CASE_DECISIONS: the first seeded raw-feature row whose
    reference decision it is, with the probabilities and decision the ensemble must return."""
    rng = np.random.default_rng(SEED + 1)
    cases: dict[str, bytes] = {}
    for _ in range(1000):
        raw = np.round(rng.normal(0, 1, (1, 16)), 3)  # short decimals in the JSON; FP32 on the wire
        probabilities, decisions = reference_pipeline(raw.astype(np.float32))
        top = np.sort(probabilities[0])[::-1]
        decision = decisions[0]
        if decision not in CASE_DECISIONS or decision in cases or top[0] - top[1] < CASE_MIN_MARGIN:
            continue
        case = {
            "inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": raw[0].tolist()}],
            "outputs": [
                {
                    "name": "PROBABILITIES",
                    "datatype": "FP32",
                    "shape": [1, 4],
                    "data": [round(float(p), 6) for p in probabilities[0]],
                },
                {"name": "DECISION", "datatype": "BYTES", "shape": [1, 1], "data": [decision]},
            ],
            "tolerance": CASE_TOLERANCE,
        }
        cases[f"{decision}.json"] = _case_json(case)
        if len(cases) == len(CASE_DECISIONS):
            return cases
    raise RuntimeError(f"no seeded input gives each of {CASE_DECISIONS}; change the seed")


def _case_json(case: dict[str, object]) -> bytes:
    """One tensor per line: readable, and stable for identical input."""
    parts = []
    for key, value in case.items():
        if isinstance(value, list):
            tensors = ",\n    ".join(json.dumps(tensor) for tensor in value)
            parts.append(f'  "{key}": [\n    {tensors}\n  ]')
        else:
            parts.append(f'  "{key}": {json.dumps(value)}')
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode()


def build() -> list[Path]:
    onnx_path = IDCHECK / "idcheck_inferencer" / "1" / "model.onnx"
    env_path = IDCHECK / "idcheck_preprocessing" / "python_env.tar.gz"
    # git keeps no empty directories, and an ensemble still needs its version directory.
    (IDCHECK / "idcheck_pipeline" / "1").mkdir(parents=True, exist_ok=True)
    (MODELS / "textstats" / "textstats" / "1").mkdir(parents=True, exist_ok=True)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(build_onnx().SerializeToString())
    env_path.write_bytes(build_env_archive())
    tests_dir = IDCHECK / "tests"
    tests_dir.mkdir(exist_ok=True)
    cases = build_test_cases()
    for stale in tests_dir.glob("*.json"):
        if stale.name not in cases:
            stale.unlink()
    case_paths = [tests_dir / name for name in cases]
    for path in case_paths:
        path.write_bytes(cases[path.name])
    return [onnx_path, env_path, *case_paths]


if __name__ == "__main__":
    for path in build():
        print(f"generated {path.relative_to(MODELS.parent.parent)}")
