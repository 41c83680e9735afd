"""Per-model rules Triton applies when it loads one model (model_config_utils.cc and backends).

Each rule mirrors a load-time refusal of Triton 2.5x with auto-complete on, as in SageMaker's
container; where Triton only logs, the finding is a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import prod

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.batching_rules import check_batching
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.placement_rules import STANDARD_BACKENDS, check_placement
from chalicelib.domain.validation.python_rules import ENV_VARIABLE, check_python
from chalicelib.domain.validation.repository import IGNORED_VERSION_DIRS, NOT_MODEL_DIRS, ParsedModel
from chalicelib.domain.validation.schemas import model_config_pb2 as pb

# platform -> backend it implies (GetBackendTypeFromPlatform)
PLATFORM_BACKENDS = {
    "tensorrt_plan": "tensorrt",
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "ensemble": "",
}
KNOWN_BACKENDS = STANDARD_BACKENDS | {"vllm", "tensorrtllm"}
# file in the first subdirectory -> (backend, platform, must be a directory: True/False/None for
# either), in Triton's auto-complete order (AutoCompleteBackendFields)
AUTO_COMPLETE = [
    ("model.savedmodel", "tensorflow", "tensorflow_savedmodel", True),
    ("model.graphdef", "tensorflow", "tensorflow_graphdef", False),
    ("model.plan", "tensorrt", "tensorrt_plan", False),
    ("model.onnx", "onnxruntime", "onnxruntime_onnx", None),  # a file, or a directory for large models
    ("model.xml", "openvino", "", None),
    ("model.pt", "pytorch", "pytorch_libtorch", False),
    ("model.py", "python", "", None),
]
DEFAULT_FILE = {
    "tensorflow_savedmodel": "model.savedmodel",
    "tensorflow_graphdef": "model.graphdef",
    "tensorrt": "model.plan",
    "onnxruntime": "model.onnx",
    "openvino": "model.xml",
    "pytorch": "model.pt",
    "python": "model.py",
}


def check_model(model: ParsedModel, scan: ArchiveScan, dirs: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    _versions(model, dirs, findings)
    _platform(model, scan, dirs, findings)
    _model_files(model, scan, dirs, findings)
    _batching(model, findings)
    if model.backend == "python":  # first: Triton validates the inputs and outputs model.py completed
        findings += check_python(model, scan, dirs)
    _io(model, findings)
    findings += check_batching(model, scan)
    findings += check_placement(model, scan)
    return findings


def _versions(model: ParsedModel, dirs: set[str], findings: list[Finding]) -> None:
    children = _subdirs(model, dirs)
    env = model.config.parameters.get("EXECUTION_ENV_PATH")
    env_dir = env.string_value.removeprefix(ENV_VARIABLE + "/").split("/", 1)[0] if env else ""
    for child in children:
        if not model.directory and child in NOT_MODEL_DIRS:
            continue  # root layout: smoke-test cases and macOS clutter are not version directories
        if child == env_dir and not child.isdigit():
            continue  # an unpacked Python environment, not a stray directory
        # ASCII and int64-sized: isdigit() also takes '²', which int() refuses
        if child.isascii() and child.isdigit() and len(child) <= 18 and (child == "0" or not child.startswith("0")):
            model.versions.append(int(child))
        elif child not in IGNORED_VERSION_DIRS and not child.endswith(".savedmodel"):
            findings.append(
                Finding.of(
                    Code.VERSION_DIR_IGNORED,
                    model.path(child),
                    f"'{model.path(child)}' is not a version directory (a number without leading zeros); "
                    "Triton ignores it",
                )
            )
    model.versions.sort()
    if not model.versions:
        findings.append(
            Finding.of(
                Code.VERSION_DIR_MISSING,
                model.config_path,
                f"model '{model.name}' has no numeric version directory; put the model files in "
                f"'{model.path('1')}/'"
                + (" (ensembles need an empty '1/' too)" if model.config.platform == "ensemble" else ""),
            )
        )
        return
    policy = model.config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        served = list(model.versions)
    elif which == "specific":
        served = [v for v in model.versions if v in set(policy.specific.versions)]
        if not served:
            findings.append(
                Finding.of(
                    Code.VERSION_POLICY_UNSATISFIED,
                    model.config_path,
                    f"version_policy asks for versions {list(policy.specific.versions)} but the tarball has "
                    f"{model.versions}",
                )
            )
    else:
        count = policy.latest.num_versions if which == "latest" and policy.latest.num_versions else 1
        served = model.versions[-count:]
    model.served_versions = served
    extra = [v for v in model.versions if v not in served]
    if extra and served:  # with none served, VERSION_POLICY_UNSATISFIED says it all
        findings.append(
            Finding.of(
                Code.MULTIPLE_VERSIONS,
                model.config_path,
                f"versions {extra} of '{model.name}' are never served (only {served} are); remove them to "
                "make the tarball smaller and the MME load faster",
            )
        )


def _subdirs(model: ParsedModel, dirs: set[str]) -> list[str]:
    """The model directory's subdirectories, sorted as Triton's std::set<std::string> sorts them."""
    prefix = model.path("")
    return sorted(
        d[len(prefix) :] for d in dirs if d.startswith(prefix) and "/" not in d[len(prefix) :] and d != model.directory
    )


def _auto_complete(model: ParsedModel, scan: ArchiveScan, dirs: set[str]) -> tuple[str, str] | None:
    """(backend, platform) as Triton infers them with neither set in the config, else None."""
    filename = model.config.default_model_filename
    if filename:
        # Only the default names imply a backend; any other name stops the directory lookup.
        return next(((b, p) for name, b, p, _ in AUTO_COMPLETE if name == filename), None)
    subdirs = _subdirs(model, dirs)
    if not subdirs:
        return None
    # Triton inspects the first subdirectory in byte order (so '10' before '2'), numeric or not.
    first = subdirs[0]
    for name, backend, platform, want_dir in AUTO_COMPLETE:
        path = model.path(first, name)
        if _exists(scan, dirs, path) and want_dir in (None, path in dirs):
            return backend, platform
    return None


def _platform(model: ParsedModel, scan: ArchiveScan, dirs: set[str], findings: list[Finding]) -> None:
    config = model.config
    platform, backend = config.platform, config.backend
    if platform == "ensemble":
        if backend:
            findings.append(
                Finding.of(
                    Code.PLATFORM_BACKEND_CONFLICT,
                    model.config_path,
                    f"ensemble '{model.name}' must have an empty backend (it has '{backend}')",
                )
            )
        model.platform = platform
        return
    if not platform and not backend:
        inferred = _auto_complete(model, scan, dirs)
        if inferred:
            backend, platform = inferred
        else:
            custom = model.config.default_model_filename
            findings.append(
                Finding.of(
                    Code.PLATFORM_MISSING,
                    model.config_path,
                    f"'{model.name}' sets neither 'platform' nor 'backend' and "
                    + (
                        f"its default_model_filename '{custom}' is not a default name Triton infers one from"
                        if custom
                        else "its first version directory holds no default model file (model.onnx, model.plan, "
                        "model.pt, model.py, model.savedmodel) to infer one from"
                    )
                    + '; add e.g. backend: "python"',
                )
            )
    elif platform and platform not in PLATFORM_BACKENDS:
        if not backend:
            findings.append(
                Finding.of(
                    Code.PLATFORM_UNKNOWN,
                    model.config_path,
                    f"unknown platform '{platform}'; use one of {sorted(PLATFORM_BACKENDS)} or set 'backend'",
                )
            )
        elif backend in PLATFORM_BACKENDS.values():
            # Triton accepts any platform beside a custom backend, but not beside one of its own.
            findings.append(
                Finding.of(
                    Code.PLATFORM_BACKEND_CONFLICT,
                    model.config_path,
                    f"unknown platform '{platform}' with backend '{backend}'; remove the platform line",
                )
            )
    elif platform and backend and backend in PLATFORM_BACKENDS.values() and PLATFORM_BACKENDS[platform] != backend:
        findings.append(
            Finding.of(
                Code.PLATFORM_BACKEND_CONFLICT,
                model.config_path,
                f"platform '{platform}' and backend '{backend}' disagree; keep only one of them",
            )
        )
    if platform and not backend:
        backend = PLATFORM_BACKENDS.get(platform, "")
    if backend and backend not in KNOWN_BACKENDS:
        findings.append(
            Finding.of(
                Code.BACKEND_UNKNOWN,
                model.config_path,
                f"backend '{backend}' is not in the standard Triton container; the endpoint's image must provide it",
            )
        )
    model.platform, model.backend = platform, backend


def _exists(scan: ArchiveScan, dirs: set[str], path: str) -> bool:
    return path in scan.members or path in dirs


def _model_files(model: ParsedModel, scan: ArchiveScan, dirs: set[str], findings: list[Finding]) -> None:
    if model.is_ensemble:
        return
    key = model.platform if model.platform.startswith("tensorflow") else model.backend
    filename = model.config.default_model_filename or DEFAULT_FILE.get(key)
    if not filename:
        return
    for version in model.served_versions:
        path = model.path(version, filename)
        if not _exists(scan, dirs, path):
            findings.append(
                Finding.of(
                    Code.MODEL_FILE_MISSING,
                    path,
                    f"'{path}' is missing: a {model.backend or model.platform} model needs its file "
                    f"'{filename}' in each version directory",
                )
            )


def _batching(model: ParsedModel, findings: list[Finding]) -> None:
    config = model.config
    if config.max_batch_size < 0:
        findings.append(
            Finding.of(Code.BATCH_SIZE_INVALID, model.config_path, "max_batch_size must be 0 (no batching) or positive")
        )
    if config.HasField("dynamic_batching"):
        for size in config.dynamic_batching.preferred_batch_size:
            if size <= 0 or size > config.max_batch_size:
                findings.append(
                    Finding.of(
                        Code.PREFERRED_BATCH_SIZE_INVALID,
                        model.config_path,
                        f"preferred_batch_size {size} must be positive and <= max_batch_size ({config.max_batch_size})",
                    )
                )


def _io(model: ParsedModel, findings: list[Finding]) -> None:
    config = model.config
    for kind, tensors in (("input", config.input), ("output", config.output)):
        seen: set[str] = set()
        for tensor in tensors:
            where = f"{kind} '{tensor.name}' of '{model.name}'"
            if tensor.name in seen:
                findings.append(
                    Finding.of(
                        Code.IO_DUPLICATE_NAME, model.config_path, f"{where} is declared twice; Triton keeps the first"
                    )
                )
            seen.add(tensor.name)
            if model.config_open and (tensor.data_type == pb.TYPE_INVALID or not tensor.dims):
                continue  # model.py's auto_complete_config may fill it (PYTHON_AUTO_COMPLETE_UNREADABLE says so)
            if tensor.data_type == pb.TYPE_INVALID:
                findings.append(
                    Finding.of(Code.DATA_TYPE_INVALID, model.config_path, f"{where} must set data_type, e.g. TYPE_FP32")
                )
            if not tensor.dims:
                findings.append(
                    Finding.of(
                        Code.DIMS_EMPTY,
                        model.config_path,
                        f"{where} must set dims (use [1] for a scalar per batch item)",
                    )
                )
            _dims_values(model, where, "dims", tensor.dims, findings)
            if tensor.HasField("reshape"):
                _reshape(model, where, list(tensor.dims), list(tensor.reshape.shape), findings)
    if model.backend == "pytorch" and not config.output:
        # libtorch.cc ModelInstanceState::ValidateOutputs: TorchScript keeps no output metadata, so
        # the PyTorch backend auto-completes nothing and refuses a config without outputs
        findings.append(
            Finding.of(
                Code.OUTPUTS_MISSING,
                model.config_path,
                f"PyTorch model '{model.name}' lists no output; the PyTorch backend cannot infer them: add each "
                'output the forward() returns, in order, e.g. output [ { name: "OUTPUT__0", data_type: TYPE_FP32, '
                "dims: [ -1 ] } ]",
            )
        )


def _dims_values(model: ParsedModel, where: str, what: str, dims: Iterable[int], findings: list[Finding]) -> None:
    bad = [d for d in dims if d < 1 and d != -1]
    if bad:
        findings.append(
            Finding.of(
                Code.DIMS_INVALID,
                model.config_path,
                f"{where}: {what} values must be >= 1, or -1 for a variable size (got {bad})",
            )
        )


def _reshape(model: ParsedModel, where: str, dims: list[int], shape: list[int], findings: list[Finding]) -> None:
    _dims_values(model, where, "reshape", shape, findings)
    if not shape:
        if model.config.max_batch_size == 0:
            findings.append(
                Finding.of(
                    Code.RESHAPE_MISMATCH,
                    model.config_path,
                    f"{where}: an empty reshape needs batching (max_batch_size > 0); scalars are not supported",
                )
            )
        elif -1 in dims or prod(dims) != 1:  # Triton compares element counts, so [1, 1] is fine too
            findings.append(
                Finding.of(Code.RESHAPE_MISMATCH, model.config_path, f"{where}: an empty reshape needs dims [1]")
            )
        return
    if dims.count(-1) != shape.count(-1):
        findings.append(
            Finding.of(
                Code.RESHAPE_MISMATCH,
                model.config_path,
                f"{where}: dims {dims} and reshape {shape} have different numbers of variable (-1) dimensions",
            )
        )
        return
    # Triton compares the element counts of the fixed runs between wildcards.
    if _fixed_runs(dims) != _fixed_runs(shape):
        findings.append(
            Finding.of(
                Code.RESHAPE_MISMATCH,
                model.config_path,
                f"{where}: dims {dims} and reshape {shape} hold different numbers of elements",
            )
        )


def _fixed_runs(dims: list[int]) -> list[int]:
    runs, current = [], 1
    for dim in dims:
        if dim == -1:
            runs.append(current)
            current = 1
        else:
            current *= dim
    runs.append(current)
    return runs
