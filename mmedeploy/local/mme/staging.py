"""Turn one downloaded tarball into Triton models the local MME can load, the way SageMaker's
Triton front end does, plus what the bundled CPU-only Triton needs:

- the directory SageMaker would serve (root config, the ensemble, or the single directory) is
  named exactly the TargetModel; every other model directory becomes ``<TargetModel>~<dir>``
  (``~`` cannot occur in a TargetModel) and ensemble steps are rewritten to match, so two
  tarballs' members never collide;
- ONNX and TorchScript models get a Python-backend adapter (onnxruntime / torch on CPU) as their
  ``model.py``; other accelerator backends (TensorRT plans, ...) are refused as not runnable here;
- ``KIND_GPU`` becomes ``KIND_CPU``; a Python model's ``EXECUTION_ENV_PATH`` is dropped, so it runs
  in the stack's own Python (a conda-pack env built for the GPU image need not run here).

The tarball is first read by the validator's safe single pass; only an archive that pass finds
safe (regular files and directories, no traversal, within the bounds) is extracted, and then with
tarfile's ``data`` filter as a second guard. The user's bytes are never changed.
"""

from __future__ import annotations

import compileall
import logging
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from chalicelib.domain.validation.archive import clean_member_path
from chalicelib.domain.validation.findings import Severity
from chalicelib.domain.validation.onnx_probe import OnnxTensor
from chalicelib.domain.validation.onnx_rules import find_onnx
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.validator import Inspection, inspect_tarball
from mmedeploy.local.mme.adapters import MODEL_FILE_PARAMETER, ONNXRUNTIME, TORCHSCRIPT
from mmedeploy.local.mme.errors import ContainerError

log = logging.getLogger("mmedeploy.local.mme")

# Between a TargetModel and a member directory: a character TargetModels cannot contain (the
# front door allows [A-Za-z0-9._-]), so target "a__b" cannot collide with member "b" of "a".
MEMBER_SEPARATOR = "~"
# Resident memory of one Python-backend instance (its stub process) measured on Triton 2.51 with
# numpy loaded; an onnxruntime adapter instance is larger. Used for the memory budget.
PYTHON_INSTANCE_BYTES = 40 << 20
ADAPTER_INSTANCE_BYTES = 70 << 20
ADAPTERS = {"onnxruntime": (ONNXRUNTIME, "model.onnx"), "pytorch": (TORCHSCRIPT, "model.pt")}
NATIVE_BACKENDS = {"python", ""}  # "" = ensemble
NOT_RUNNABLE_WHY = {
    "tensorrt": "a TensorRT plan is built for one GPU model and cannot run on the local MME's CPU",
}


@dataclass
class StagedModel:
    """One TargetModel's models, written into the endpoint's Triton repository."""

    target: str
    members: list[str]  # staged names of the other models (ensemble members)
    footprint_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [self.target, *self.members]


def stage_tarball(tarball: Path, target: str, repository: Path) -> StagedModel:
    """Inspect ``tarball``, then write its models into ``repository`` under local names.

    Raises ContainerError(400) for what Triton in SageMaker would fail to load or what cannot
    run here; nothing is left in ``repository`` then.
    """
    with tarball.open("rb") as stream:
        inspection = inspect_tarball(stream, target)
    served = _served_model(inspection, target)
    models = list(inspection.repository.models.values())
    for model in models:
        _check_runnable(model)

    names = {m.directory: (target if m is served else f"{target}{MEMBER_SEPARATOR}{m.directory}") for m in models}
    workdir = repository.parent / "extracting" / uuid.uuid4().hex
    staged: list[Path] = []
    try:
        _extract(tarball, workdir, [m.directory for m in models], set(inspection.scan.members))
        notes: list[str] = []
        for model in models:
            source = workdir / model.directory if model.directory else workdir
            config = _local_config(model, names, inspection, notes)
            destination = repository / names[model.directory]
            shutil.rmtree(destination, ignore_errors=True)
            if model.directory:
                source.rename(destination)
            else:  # root layout: the archive root is the model
                destination.mkdir(parents=True)
                for child in source.iterdir():
                    if child.name not in ("tests", "model_version.txt"):
                        child.rename(destination / child.name)
            staged.append(destination)
            _place_adapter(model, destination)
            (destination / "config.pbtxt").write_text(text_format.MessageToString(config))
            # The Python stub writes __pycache__ into the version folder; Triton sees the change and
            # reloads the model. Compiling first leaves nothing for the stub to write.
            compileall.compile_dir(str(destination), quiet=2)
    except BaseException:
        for path in staged:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    footprint = sum(_bytes(path) for path in staged) + sum(_instance_bytes(m) for m in models)
    return StagedModel(
        target=target,
        members=[names[m.directory] for m in models if m is not served],
        footprint_bytes=footprint,
        notes=notes,
    )


def _served_model(inspection: Inspection, target: str) -> ParsedModel:
    if not inspection.safe_to_extract:
        problem = next(f for f in inspection.scan.findings if f.severity == Severity.ERROR)
        raise ContainerError(400, f"failed to extract model archive {target}: [{problem.code}] {problem.message}")
    served = inspection.repository.served
    if served is None:
        cause = next((f for f in inspection.findings if f.code.startswith(("REPO_", "CONFIG_"))), None)
        detail = f"[{cause.code}] {cause.message}" if cause else "no model directory found"
        raise ContainerError(400, f"failed to load model {target}: {detail}")
    return served


def _check_runnable(model: ParsedModel) -> None:
    backend = model.backend
    if backend in NATIVE_BACKENDS or backend in ADAPTERS:
        return
    why = NOT_RUNNABLE_WHY.get(backend, f"the local MME has no '{backend or model.platform}' backend")
    raise ContainerError(
        400,
        f"model '{model.name}' is not runnable locally: {why}. It was validated statically; "
        "warm it on a staging endpoint in AWS to test it.",
    )


def _extract(tarball: Path, workdir: Path, directories: list[str], approved: set[str]) -> None:
    """Extract the model directories' members, named as the scan named them, and only those the
    scan approved (``data`` filter as a second guard)."""
    workdir.mkdir(parents=True)
    wanted = tuple(f"{d}/" for d in directories if d)
    with tarfile.open(tarball, "r:gz") as archive:
        members = []
        for member in archive:
            path = clean_member_path(member.name)
            if path not in approved:
                continue
            if "" in directories or path in directories or path.startswith(wanted):
                member.name = path
                members.append(member)
        archive.extractall(workdir, members=members, filter="data")


def _local_config(
    model: ParsedModel, names: dict[str, str], inspection: Inspection, notes: list[str]
) -> pb.ModelConfig:
    config = pb.ModelConfig()
    config.CopyFrom(model.config)
    config.name = names[model.directory]
    for step in config.ensemble_scheduling.step:
        step.model_name = names.get(step.model_name, step.model_name)
    if "EXECUTION_ENV_PATH" in config.parameters:
        del config.parameters["EXECUTION_ENV_PATH"]
        notes.append(
            f"{model.name}: EXECUTION_ENV_PATH ignored locally; the model runs in the stack's Python environment"
        )
    for group in config.instance_group:
        if group.kind == pb.ModelInstanceGroup.KIND_GPU:
            group.kind = pb.ModelInstanceGroup.KIND_CPU
            del group.gpus[:]
    if model.backend in ADAPTERS:
        _, default_file = ADAPTERS[model.backend]
        config.parameters[MODEL_FILE_PARAMETER].string_value = config.default_model_filename or default_file
        if model.backend == "onnxruntime":
            _complete_from_onnx(model, config, inspection)
        config.platform, config.backend, config.default_model_filename = "", "python", ""
        notes.append(f"{model.name}: {model.backend} model served through a Python-backend adapter on CPU")
    return config


def _complete_from_onnx(model: ParsedModel, config: pb.ModelConfig, inspection: Inspection) -> None:
    """The onnxruntime backend auto-completes missing inputs/outputs from the file; the Python
    backend cannot, so the adapter's config gets them from the probed ONNX graph."""
    version = max(model.versions or [1])
    found = find_onnx(model, inspection.scan, version)
    if found is None:
        return
    _, summary = found
    batched = config.max_batch_size > 0
    if not config.input:
        config.input.extend(_tensor(pb.ModelInput(), t, batched) for t in summary.runtime_inputs)
    if not config.output:
        config.output.extend(_tensor(pb.ModelOutput(), t, batched) for t in summary.outputs)


def _tensor(
    message: pb.ModelInput | pb.ModelOutput, tensor: OnnxTensor, batched: bool
) -> pb.ModelInput | pb.ModelOutput:
    message.name = tensor.name
    message.data_type = pb.DataType.Value(tensor.data_type or "TYPE_FP32")
    dims = list(tensor.dims or [-1])
    message.dims.extend(dims[1:] if batched and dims else dims)
    return message


def _place_adapter(model: ParsedModel, destination: Path) -> None:
    if model.backend not in ADAPTERS:
        return
    adapter, _ = ADAPTERS[model.backend]
    for version in destination.iterdir():
        if version.is_dir() and version.name.isdigit():
            shutil.copyfile(adapter, version / "model.py")


def _instance_bytes(model: ParsedModel) -> int:
    if model.is_ensemble:
        return 0
    count = sum(max(group.count, 1) for group in model.config.instance_group) or 1
    per_instance = ADAPTER_INSTANCE_BYTES if model.backend in ADAPTERS else PYTHON_INSTANCE_BYTES
    return count * per_instance


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
