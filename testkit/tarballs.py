"""Build model tarballs in code (no committed binaries): good ones and hostile ones.

``repo(...)`` gives the files of a small valid repository as a dict (path -> bytes, or None for a
directory); tests change a file or two and pack it with ``pack(...)``. ``raw_tar`` writes
members tarfile would refuse to create from a folder (links, devices, '..').
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.validator import validate_tarball
from examples.build_examples import IDCHECK, build_env_archive, build_onnx, build_test_cases

Files = Mapping[str, bytes | None]

PYTHON_MODEL = b"""import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([]) for _ in requests]
"""


# A Python model that answers OUT = IN, as its config says (the pipeline smoke-tests that).
ECHO_MODEL = b"""import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", data.astype(np.float32))]))
        return responses
"""


def python_config(name: str, inputs: str = "", outputs: str = "", extra: str = "", max_batch_size: int = 4) -> bytes:
    inputs = inputs or '{ name: "IN", data_type: TYPE_FP32, dims: [ 4 ] }'
    outputs = outputs or '{ name: "OUT", data_type: TYPE_FP32, dims: [ 4 ] }'
    return (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch_size}\n'
        f"input [ {inputs} ]\noutput [ {outputs} ]\n{extra}"
    ).encode()


def single_python_repo(name: str = "simple", version: str = "1") -> dict[str, bytes | None]:
    """One Python model in one subdirectory, with model_version.txt."""
    return {
        "model_version.txt": f"{version}\n".encode(),
        f"{name}/config.pbtxt": python_config(name),
        f"{name}/1/model.py": PYTHON_MODEL,
    }


def echo_repo(name: str, version: str, model: bytes = ECHO_MODEL) -> dict[str, bytes | None]:
    """One Python model (IN -> OUT, FP32 [4]) that really answers, with model_version.txt."""
    return {
        "model_version.txt": f"{version}\n".encode(),
        f"{name}/config.pbtxt": python_config(name),
        f"{name}/1/model.py": model,
    }


def idcheck_repo(version: str = "1") -> dict[str, bytes | None]:
    """The example ensemble (python -> onnx -> python), read from examples/ plus the generated parts
    (ONNX model, Python environment, smoke-test cases)."""
    files: dict[str, bytes | None] = {"model_version.txt": f"{version}\n".encode()}
    for path in sorted(Path(IDCHECK).rglob("*")):
        rel = path.relative_to(IDCHECK).as_posix()
        if path.is_file() and not rel.endswith((".onnx", "python_env.tar.gz")) and not rel.startswith("tests/"):
            files[rel] = path.read_bytes()
    files["idcheck_pipeline/1"] = None
    files["idcheck_inferencer/1/model.onnx"] = build_onnx().SerializeToString()
    files["idcheck_preprocessing/python_env.tar.gz"] = build_env_archive()
    # generated like the binaries (git-ignored): built here, so a clean clone has them too
    files.update({f"tests/{name}": case for name, case in build_test_cases().items()})
    return files


def tar_bytes(files: Files, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 946684800
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_tree(root: Path, files: Files) -> Path:
    """The same files as a folder under ``root`` (a source tree, or a Triton model repository)."""
    for name, data in files.items():
        path = root / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def pack(files: Files, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return gz(tar_bytes(files, fmt))


def raw_tar(entries: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of hand-made TarInfo entries (links, devices, odd names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return buffer.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type, entry.linkname, entry.mtime = kind, link, 946684800
    return entry


def validate_bytes(data: bytes, name: str = "simple_1.tar.gz", **kwargs: object) -> ValidationReport:
    return validate_tarball(io.BytesIO(data), name, **kwargs)  # type: ignore[arg-type]


def codes(report: ValidationReport) -> set[str]:
    return {f.code.value for f in report.findings}
