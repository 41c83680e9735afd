"""Where and with what a model runs: its instance groups (devices) and the backend library its
`runtime` names, as Triton core r24.09 (Triton 2.50) checks them when it loads the model.

The validator does not know the endpoint's instance type (the template's GpuInstanceType is not
passed to it), only that it is a SageMaker GPU instance: between 1 GPU (the default ml.g5.xlarge)
and 8 (ml.p4d.24xlarge, ml.p5.48xlarge, ml.g5.48xlarge). GPU ids that no such instance has are
errors; ids only the larger ones have are warnings naming how many GPUs they need.
"""

from __future__ import annotations

import posixpath
import re

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.schemas import model_config_pb2 as pb

Group = pb.ModelInstanceGroup
MAX_SAGEMAKER_GPUS = 8
PYTHON_RUNTIME = "model.py"  # kPythonFilename: a Python-based backend
STOI = re.compile(r"[ \t\n\v\f\r]*([+-]?)[0-9]+")  # what std::stoi accepts as a prefix (ASCII only)
SHARED_LIBRARY = re.compile(r"\.so(\.[\d.]+)?$")  # libfoo.so, libfoo.so.1.2
# Backends of the standard image whose directory holds their own libtriton_<name>.so
STANDARD_BACKENDS = {
    "python",
    "onnxruntime",
    "pytorch",
    "tensorrt",
    "tensorflow",
    "openvino",
    "fil",
    "dali",
    "identity",
}


def check_placement(model: ParsedModel, scan: ArchiveScan) -> list[Finding]:
    findings: list[Finding] = []
    groups = model.config.instance_group
    if model.is_ensemble:
        if groups:  # an ensemble has no instances (ValidateInstanceGroup skips it; Triton refuses the field)
            _add(
                findings,
                Code.ENSEMBLE_INSTANCE_GROUP,
                model,
                f"ensemble '{model.name}' must not set instance_group; set it on its member models",
            )
        return findings  # and no backend library
    if model.backend not in ("python", "") and any(g.kind == Group.KIND_CPU for g in groups):
        _add(
            findings,
            Code.INSTANCE_KIND_CPU,
            model,
            f"'{model.name}' ({model.backend}) runs on CPU (KIND_CPU) on a GPU endpoint; use KIND_GPU "
            "unless that is intended",
        )
    for index, group in enumerate(groups):
        _instance_group(model, group, group.name or f"{model.name}_{index}", findings)
    if model.config.runtime:
        _runtime(model, scan, model.config.runtime, findings)
    return findings


def _add(findings: list[Finding], code: Code, model: ParsedModel, message: str) -> None:
    findings.append(Finding.of(code, model.config_path, message))


# -- instance groups (NormalizeInstanceGroup, then ValidateInstanceGroup) ------------------------


def _instance_group(model: ParsedModel, group: pb.ModelInstanceGroup, name: str, findings: list[Finding]) -> None:
    where = f"instance group '{name}' of '{model.name}'"
    kind = Group.Kind.Name(group.kind)
    gpus = list(group.gpus)
    if group.kind in (Group.KIND_CPU, Group.KIND_MODEL) and gpus:
        _add(
            findings,
            Code.INSTANCE_GPUS_NOT_ALLOWED,
            model,
            f"{where} has kind {kind} but lists gpus {gpus}; remove gpus or use KIND_GPU",
        )
    elif gpus:
        # NormalizeInstanceGroup turns KIND_AUTO with a missing GPU into KIND_CPU and keeps its gpus,
        # which ValidateInstanceGroup then refuses: a missing id fails both kinds.
        fallback = " (KIND_AUTO falls back to KIND_CPU, which refuses gpus)" if group.kind == Group.KIND_AUTO else ""
        bad = [g for g in gpus if g < 0 or g >= MAX_SAGEMAKER_GPUS]
        if bad:
            _add(
                findings,
                Code.INSTANCE_GPU_ID_INVALID,
                model,
                f"{where} lists gpus {bad}, which no SageMaker GPU instance has (ids are 0 to "
                f"{MAX_SAGEMAKER_GPUS - 1}){fallback}; remove gpus to use every GPU",
            )
        beyond_one = [g for g in gpus if 0 < g < MAX_SAGEMAKER_GPUS]
        if beyond_one:
            _add(
                findings,
                Code.INSTANCE_GPU_ID_UNCERTAIN,
                model,
                f"{where} lists gpus {beyond_one}: the endpoint's instance type needs at least "
                f"{max(beyond_one) + 1} GPUs (ml.g5.xlarge has 1) or Triton refuses the model{fallback}; "
                "remove gpus to use every GPU",
            )
    if group.count < 0:
        _add(
            findings,
            Code.INSTANCE_COUNT_DEFAULTED,
            model,
            f"{where} has count {group.count}; Triton replaces a count below 1 with its default (1, or 2 "
            "for CPU instances of onnxruntime and tensorflow), so set the count you mean",
        )
    # secondary_devices: core does not check them; only the TensorRT backend reads them (NVDLA).
    _profiles(model, group, where, findings)


def _profiles(model: ParsedModel, group: pb.ModelInstanceGroup, where: str, findings: list[Finding]) -> None:
    if not group.profile:
        return
    tensorrt = model.platform == "tensorrt_plan" or (model.backend == "tensorrt" and not model.platform)
    if not tensorrt:
        _add(
            findings,
            Code.INSTANCE_PROFILE_INVALID,
            model,
            f"{where} sets profile, which only TensorRT models have; remove it",
        )
        return
    # GetProfileIndex: std::stoi, so '2abc' reads as 2, and the index must not be negative.
    # The sign and digits decide it: int() of thousands of digits raises.
    bad = [
        p
        for p in group.profile
        if not (match := STOI.match(p)) or (match.group(1) == "-" and match.group().strip(" \t\n\v\f\r-0"))
    ]
    if bad:
        _add(
            findings,
            Code.INSTANCE_PROFILE_INVALID,
            model,
            f"{where} has profile {bad}; each profile is a non-negative optimisation-profile index such as '0'",
        )


# -- runtime (TritonModel::GetBackendLibraryProperties, FindBackendLibraryPath) -------------------


def _runtime(model: ParsedModel, scan: ArchiveScan, runtime: str, findings: list[Finding]) -> None:
    backend = model.backend
    # JoinPath drops a leading '/': the name is looked up in the version directory, the model
    # directory, then backends/<backend>/, and must not resolve outside the one it is found in.
    relative = posixpath.normpath(runtime.lstrip("/"))
    if relative == ".." or relative.startswith("../"):
        _add(
            findings,
            Code.RUNTIME_ESCAPES_BACKEND,
            model,
            f"runtime '{runtime}' of '{model.name}' points outside the directory Triton searches; name a "
            f"library file in backends/{backend}/ or in the model directory, without '..'",
        )
        return
    if runtime == PYTHON_RUNTIME:
        return  # a Python-based backend; its model.py lives in the image's backend directory
    shipped = [model.path(v, relative) for v in model.served_versions] + [model.path(relative)]
    if any(scan.members.get(p) is not None and scan.members[p].kind == "file" for p in shipped):
        return
    own = f"libtriton_{backend}.so"
    if relative == own:
        return
    if relative.startswith("libtriton_") and relative.endswith(".so"):
        _add(
            findings,
            Code.RUNTIME_NOT_FOUND,
            model,
            f"runtime '{runtime}' of '{model.name}' is another backend's library, not searched for backend "
            f"'{backend}' (backends/{backend}/); use '{own}' or remove runtime",
        )
    elif runtime.startswith("/") and "/" in relative:
        _add(
            findings,
            Code.RUNTIME_NOT_FOUND,
            model,
            f"runtime '{runtime}' of '{model.name}' is read relative to backends/{backend}/ and the model "
            f"directory, where '{relative}' does not exist; give the library's file name alone",
        )
    elif not SHARED_LIBRARY.search(posixpath.basename(relative)):
        # Not shipped, so Triton could only find it in the image's backend directory, which holds
        # no loadable library by such a name.
        _add(
            findings,
            Code.RUNTIME_NOT_FOUND,
            model,
            f"runtime '{runtime}' of '{model.name}' is not a backend library: name a shared library "
            f"('{own}', or one shipped in the model directory) or model.py, or remove runtime",
        )
    elif backend in STANDARD_BACKENDS:
        _add(
            findings,
            Code.RUNTIME_UNVERIFIED,
            model,
            f"runtime '{runtime}' of '{model.name}' is neither in the tarball ('{model.path(relative)}') nor "
            f"'{own}'; Triton loads the model only if the image's backends/{backend}/ has it",
        )
