"""Triton's own model-configuration cases, wrapped as tarballs, to measure how far the validator
agrees with Triton.

The corpus (``tests/data/triton_config_cases/``) is a vendored subset of Triton's
``qa/L0_model_config`` (tag r24.09, Triton 2.50, what the endpoints run): each case directory keeps
the upstream ``config.pbtxt`` (or a whole repository of model directories), the ``expected*``
files and any ``model.py``, plus a ``SOURCE`` file naming the upstream path and commit. Cases
under ``autofill_noplatform/``, ``noautofill_platform/`` and ``special_cases/`` are ones Triton
refuses to load (``expected`` holds its error); cases under ``autofill_noplatform_success/`` are
ones it loads (``expected`` is the configuration it auto-completes).

``wrap(case)`` turns a case into the files of a tarball that differs from a valid one only by the
case's defect, as upstream's ``test.sh`` does for its server: model files of the platform the case
names (a tiny ONNX built with ``onnx.helper``, ``model.py`` for Python, a placeholder ``model.pt``
for libtorch), the version directories, ``model_version.txt``, and the ensemble members a case's
steps name but the case does not ship. ``run(case)`` validates that tarball and classifies it.

``python -m testkit.triton_cases import --from GIT_DIR`` refreshes the corpus from a clone of
triton-inference-server/server (``docs/development.md``).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import onnx
from google.protobuf import text_format
from onnx import TensorProto, helper

from chalicelib.domain.validation.findings import Severity
from chalicelib.domain.validation.schemas import model_config_pb2 as pb
from chalicelib.domain.validation.validator import validate_tarball
from testkit.tarballs import PYTHON_MODEL, pack

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "triton_config_cases"
CAUGHT_FILE = ROOT / "tests" / "data" / "triton_config_caught.txt"

UPSTREAM_REPO = "https://github.com/triton-inference-server/server"
UPSTREAM_REF = "r24.09"
UPSTREAM_DIR = "qa/L0_model_config"
SHARED_PYTHON_MODEL = "_shared/auto_complete_model.py"  # qa/python_models/auto_complete/model.py

# What is vendored: the groups whose rules the validator can see statically and whose platforms
# the endpoints serve (python, onnxruntime, pytorch_libtorch, ensemble, and the rules that hold
# for every platform). TensorFlow, TensorRT and OpenVINO cases need those backends' model files.
REFUSED_GROUPS = (
    "autofill_noplatform/common",
    "autofill_noplatform/custom",
    "autofill_noplatform/ensemble",
    "autofill_noplatform/onnx",
    "autofill_noplatform/python",
    "autofill_noplatform/pytorch",
    "noautofill_platform",
    "special_cases",
)
LOADED_GROUPS = (
    "autofill_noplatform_success/ensemble",
    "autofill_noplatform_success/onnx",
    "autofill_noplatform_success/python",
    "autofill_noplatform_success/pytorch",
)
LEFT_OUT = {
    "autofill_noplatform/custom/unknown_backend.unknown": "the backend comes from the model name "
    "('X.unknown'), and the MME renames the served model, so that name never reaches Triton",
    "special_cases/noautofill_noconfig": "a TensorFlow GraphDef without config, run with "
    "auto-complete disabled; every tarball model needs a config.pbtxt here anyway",
}

# The platform noautofill_platform cases run as (upstream's test.sh runs each under every
# platform, replacing the config's platform line). libtorch: its model file is opaque to the
# validator, so these cases measure the configuration rules alone.
NOAUTOFILL_PLATFORM = "pytorch_libtorch"

# Ensemble steps whose model is missing on purpose: the case's defect is that it is missing.
MISSING_ON_PURPOSE = {"autofill_noplatform/ensemble/non_existing_model": {"fp32_dim1_batch4_input4"}}

# Cases Triton loads that the validator refuses, each with the reason: a product rule, or what
# the validator cannot yet read. The unit test marks each xfail(strict=True), so it fails once the
# validator accepts the case (then remove it here).
KNOWN_TOO_STRICT = {
    "autofill_noplatform_success/onnx/no_config": "product rule: every model of a tarball needs an "
    "explicit config.pbtxt (Triton would auto-complete one from the ONNX graph)",
}

PLACEHOLDER_PT = b"placeholder TorchScript archive: the validator does not read model.pt\n"
SAGEMAKER_ENSEMBLE_RE = re.compile(r'platform:(\s)*"ensemble"')


class Outcome(StrEnum):
    CAUGHT = "caught"  # Triton refuses, the validator refuses
    MISSED = "missed"  # Triton refuses, the validator accepts
    AGREED_LOAD = "agreed_load"  # Triton loads, the validator accepts
    TOO_STRICT = "too_strict"  # Triton loads, the validator refuses


@dataclass(frozen=True)
class Case:
    id: str  # the case's path under the corpus, e.g. 'noautofill_platform/zerodims_input0'
    triton_loads: bool
    expected: list[str]  # Triton's error (alternatives), or its auto-completed config
    files: dict[str, bytes]  # the case directory's files, by relative path

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def group(self) -> str:
        return self.id.rsplit("/", 1)[0]


@dataclass
class Result:
    case: Case
    outcome: Outcome
    errors: list[str] = field(default_factory=list)  # the validator's error codes
    messages: list[str] = field(default_factory=list)  # and their messages


# -- the corpus ----------------------------------------------------------------------------------


def load_cases(corpus: Path = CORPUS) -> list[Case]:
    """Every case of the corpus (each directory holding a SOURCE file), sorted by id."""
    cases = []
    for source in sorted(corpus.rglob("SOURCE")):
        directory = source.parent
        case_id = directory.relative_to(corpus).as_posix()
        files = {
            p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != "SOURCE"
        }
        expected = [
            files[name].decode().strip()
            for name in sorted(files)
            if "/" not in name and re.fullmatch(r"expected(_\d+|_unsupported)?", name)
        ]
        loads = case_id.startswith("autofill_noplatform_success/")
        cases.append(Case(id=case_id, triton_loads=loads, expected=expected, files=files))
    return cases


def read_caught(path: Path = CAUGHT_FILE) -> dict[str, list[str]]:
    """The refusal cases the validator is expected to catch: case id -> the error codes it gave
    when the file was written (the test checks that the case is refused with one of them)."""
    caught: dict[str, list[str]] = {}
    if not path.exists():
        return caught
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            case_id, _, codes = line.partition(" ")
            caught[case_id] = codes.split(",") if codes.strip() else []
    return caught


def write_caught(results: Iterable[Result], path: Path = CAUGHT_FILE) -> int:
    lines = [
        "# Triton refusal cases (tests/data/triton_config_cases/) the validator catches, with its error codes.",
        "# tests/unit/test_triton_config_cases.py fails when one of them is no longer caught.",
        "# Regenerate: .venv/bin/python benchmarks/triton_agreement.py --write-caught",
    ]
    caught = [r for r in results if r.outcome is Outcome.CAUGHT]
    lines += [f"{r.case.id} {','.join(r.errors)}" for r in sorted(caught, key=lambda r: r.case.id)]
    path.write_text("\n".join(lines) + "\n")
    return len(caught)


# -- wrapping a case into a tarball --------------------------------------------------------------


Files = dict[str, bytes | None]


def tarball_name(case: Case) -> str:
    """``<model>_1.tar.gz`` with the case name made a valid model name."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", case.name)[:63] + "_1.tar.gz"


def wrap(case: Case) -> Files:
    """The tarball's files: the case plus what a valid tarball of it needs beside its defect."""
    files: Files = {"model_version.txt": b"1\n"}
    if "config.pbtxt" in case.files or not _model_dirs(case):
        files.update(_single_model(case))
    else:
        files.update(_repository(case))
    return files


def run(case: Case) -> Result:
    report = validate_tarball(io.BytesIO(pack(wrap(case))), tarball_name(case))
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    refused = not report.valid
    if case.triton_loads:
        outcome = Outcome.TOO_STRICT if refused else Outcome.AGREED_LOAD
    else:
        outcome = Outcome.CAUGHT if refused else Outcome.MISSED
    return Result(
        case=case,
        outcome=outcome,
        errors=sorted({f.code.value for f in errors}),
        messages=[f"{f.code.value}: {f.message}" for f in errors],
    )


def run_all(cases: Iterable[Case] | None = None) -> list[Result]:
    return [run(case) for case in (load_cases() if cases is None else cases)]


def _model_dirs(case: Case) -> list[str]:
    return sorted({p.split("/", 1)[0] for p in case.files if p.endswith("/config.pbtxt") and p.count("/") == 1})


def _single_model(case: Case) -> Files:
    model = case.name
    files: Files = {}
    config = case.files.get("config.pbtxt")
    if case.id.startswith("noautofill_platform/") and config is not None:
        # as test.sh: drop the platform line and append the platform the case runs as
        kept = [line for line in config.decode().splitlines(keepends=True) if "platform:" not in line]
        config = ("".join(kept).rstrip("\n") + f'\nplatform: "{NOAUTOFILL_PLATFORM}"\n').encode()
    if config is not None:
        files[f"{model}/config.pbtxt"] = config
    for path, data in case.files.items():
        if path.endswith(".py") and "/" not in path:
            continue  # model.py goes into the version directory below
        if path != "config.pbtxt" and not path.startswith("expected"):
            files[f"{model}/{path}"] = data
    files.update({f"{model}/{path}": data for path, data in _model_files(case).items()})
    files.update(synthesized_members(case, {}))
    return files


def _model_files(case: Case) -> Files:
    """The files of a single-model case's version directory, by platform (as test.sh adds them)."""
    group = case.group
    if group == "autofill_noplatform/common":
        return {}  # no_version: the missing version directory is the defect
    if group.endswith("/onnx"):
        return {"1/model.onnx": onnx_model_for(case).SerializeToString()}
    if group.endswith("/pytorch") or group == "noautofill_platform":
        return {"1/model.pt": PLACEHOLDER_PT}
    if group.endswith("/python"):
        return {"1/model.py": case.files.get("model.py") or _shared_python_model()}
    if case.id == "special_cases/invalid_platform":
        return {"1/model.savedmodel/saved_model.pb": b"placeholder SavedModel\n"}
    if case.id == "special_cases/runtime_escape":
        return {"1": None, "dummy_runtime/libtriton_identity.so": b""}
    return {"1": None}  # custom and identity-backend cases: an empty version directory


def _shared_python_model() -> bytes:
    return (CORPUS / SHARED_PYTHON_MODEL).read_bytes()


def _repository(case: Case) -> Files:
    """A case that is a whole repository (an ensemble and its members)."""
    files: Files = {}
    configs: dict[str, pb.ModelConfig] = {}
    for model in _model_dirs(case):
        text = case.files[f"{model}/config.pbtxt"]
        configs[model] = _parse(text)
        files[f"{model}/config.pbtxt"] = text
        if f"{model}/model.py" in case.files:
            files[f"{model}/1/model.py"] = case.files[f"{model}/model.py"]
        else:
            files[f"{model}/1"] = None  # ensembles, identity and repeat backends need no file
    _serve_one_ensemble(case, files, configs)
    files.update(synthesized_members(case, configs))
    return files


def _serve_one_ensemble(case: Case, files: Files, configs: dict[str, pb.ModelConfig]) -> None:
    """SageMaker serves the directory whose config has the text ``platform: "ensemble"``; with
    several ensembles (nested ones, or a cycle) it picks one at random. Like a user would, write the
    other ensembles' platform line so that the case's own ensemble is the one served."""
    ensembles = [m for m, c in configs.items() if c.platform == "ensemble"]
    if len(ensembles) < 2:
        return
    for model in ensembles:
        if model != case.name:
            text = (files[f"{model}/config.pbtxt"] or b"").decode()
            files[f"{model}/config.pbtxt"] = SAGEMAKER_ENSEMBLE_RE.sub('platform : "ensemble"', text).encode()


def synthesized_members(case: Case, configs: dict[str, pb.ModelConfig]) -> Files:
    """Python members for the steps whose model the case does not ship (upstream's server refuses
    these ensembles before looking for their members): the step's map keys as the member's
    tensors, typed and shaped as the ensemble tensors they map to."""
    if "config.pbtxt" in case.files:
        configs = {case.name: _parse(case.files["config.pbtxt"])}
    missing_on_purpose = MISSING_ON_PURPOSE.get(case.id, set())
    members: dict[str, tuple[dict[str, str], dict[str, str], pb.ModelConfig]] = {}
    for ensemble in configs.values():
        if ensemble.platform != "ensemble":
            continue
        for step in ensemble.ensemble_scheduling.step:
            name = step.model_name
            if not name or name in configs or name in missing_on_purpose:
                continue
            inputs, outputs, _ = members.setdefault(name, ({}, {}, ensemble))
            inputs.update(step.input_map)
            outputs.update(step.output_map)
    files: Files = {}  # beside the case's own model directories
    for name, (inputs, outputs, ensemble) in sorted(members.items()):
        tensors = "\n".join(
            [_tensor("input", key, value, ensemble) for key, value in sorted(inputs.items())]
            + [_tensor("output", key, value, ensemble) for key, value in sorted(outputs.items())]
        )
        config = f'name: "{name}"\nbackend: "python"\nmax_batch_size: {ensemble.max_batch_size}\n{tensors}\n'
        files[f"{name}/config.pbtxt"] = config.encode()
        files[f"{name}/1/model.py"] = PYTHON_MODEL
    return files


def _tensor(kind: str, name: str, ensemble_tensor: str, ensemble: pb.ModelConfig) -> str:
    declared = {t.name: t for t in [*ensemble.input, *ensemble.output]}
    like = declared.get(ensemble_tensor) or (ensemble.input[0] if ensemble.input else None)
    data_type = pb.DataType.Name(like.data_type) if like is not None else "TYPE_FP32"
    dims = list(like.dims) if like is not None and like.dims else [16]
    return f'{kind} {{ name: "{name}" data_type: {data_type} dims: {dims} }}'


def _parse(text: bytes) -> pb.ModelConfig:
    config = pb.ModelConfig()
    try:
        text_format.Parse(text.decode(), config)
    except text_format.ParseError:
        return pb.ModelConfig()
    return config


# -- ONNX models, as upstream's qa model repositories hold them ----------------------------------


def onnx_model_for(case: Case) -> onnx.ModelProto:
    """The ONNX model upstream copies into the case: the add/sub model of qa_model_repository
    (INPUT0, INPUT1 INT32 [16] -> OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 as INT8),
    with a batch dimension unless the case is about a model without one; ``cpu_instance`` uses the
    FP16 identity model of qa_identity_model_repository."""
    if case.name == "cpu_instance":
        return identity_onnx(TensorProto.FLOAT16, ["batch", "d1", "d2"])
    return add_sub_onnx(batch=case.name not in ("bad_max_batch_size", "no_config_no_batch"))


def add_sub_onnx(batch: bool = True) -> onnx.ModelProto:
    shape: list[int | str] = ["batch", 16] if batch else [16]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["INPUT0", "INPUT1"], ["sum"]),
            helper.make_node("Sub", ["INPUT0", "INPUT1"], ["difference"]),
            helper.make_node("Cast", ["sum"], ["OUTPUT0"], to=TensorProto.INT8),
            helper.make_node("Cast", ["difference"], ["OUTPUT1"], to=TensorProto.INT8),
        ],
        "add_sub",
        [helper.make_tensor_value_info(name, TensorProto.INT32, shape) for name in ("INPUT0", "INPUT1")],
        [helper.make_tensor_value_info(name, TensorProto.INT8, shape) for name in ("OUTPUT0", "OUTPUT1")],
    )
    return _model(graph)


def identity_onnx(elem_type: int, shape: list[int | str]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])],
        "identity",
        [helper.make_tensor_value_info("INPUT0", elem_type, shape)],
        [helper.make_tensor_value_info("OUTPUT0", elem_type, shape)],
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mmedeploy-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# -- refreshing the corpus from upstream ---------------------------------------------------------


def import_corpus(git_dir: Path, ref: str = UPSTREAM_REF, corpus: Path = CORPUS) -> int:
    """Replace the corpus with the selected cases of ``ref`` in a clone of triton's server repo."""
    commit = _git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
    paths = _git(git_dir, "ls-tree", "-r", "--name-only", commit, UPSTREAM_DIR).splitlines()
    cases: dict[str, list[str]] = {}
    for path in paths:
        relative = path[len(UPSTREAM_DIR) + 1 :]
        case_id = _case_of(relative)
        if case_id and case_id not in LEFT_OUT and _vendored(relative):
            cases.setdefault(case_id, []).append(relative)
    if corpus.exists():
        shutil.rmtree(corpus)
    for case_id, members in sorted(cases.items()):
        for relative in members:
            target = corpus / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_show(git_dir, commit, f"{UPSTREAM_DIR}/{relative}"))
        (corpus / case_id / "SOURCE").write_text(
            f"upstream: {UPSTREAM_REPO}/tree/{commit}/{UPSTREAM_DIR}/{case_id}\n"
            f"ref: {ref}\ncommit: {commit}\n"
            f"triton: {'loads' if case_id.startswith('autofill_noplatform_success/') else 'refuses'}\n"
        )
    shared = corpus / SHARED_PYTHON_MODEL
    shared.parent.mkdir(parents=True, exist_ok=True)
    shared.write_bytes(_show(git_dir, commit, "qa/python_models/auto_complete/model.py"))
    (corpus / "LICENSE").write_bytes(
        b"The files of this directory are copied from Triton Inference Server\n"
        + f"({UPSTREAM_REPO}, {ref}, commit {commit}),\n".encode()
        + b"qa/L0_model_config and qa/python_models/auto_complete/model.py, under its license:\n\n"
        + _show(git_dir, commit, "LICENSE")
    )
    return len(cases)


def _case_of(relative: str) -> str | None:
    for group in (*REFUSED_GROUPS, *LOADED_GROUPS):
        if relative.startswith(group + "/"):
            rest = relative[len(group) + 1 :]
            return f"{group}/{rest.split('/', 1)[0]}" if "/" in rest else None
    return None


def _vendored(relative: str) -> bool:
    """Text files only: configs, expected outputs (not the numbered variants), model.py."""
    name = relative.rsplit("/", 1)[-1]
    return name in ("config.pbtxt", "model.py") or re.fullmatch(r"expected(_\w+)?", name) is not None


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True).stdout


def _show(git_dir: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="refresh tests/data/triton_config_cases from a clone of Triton's server")
    imp.add_argument("--from", dest="git_dir", type=Path, required=True, help="the clone's .git directory")
    imp.add_argument("--ref", default=UPSTREAM_REF, help=f"tag or branch (default {UPSTREAM_REF})")
    args = parser.parse_args(argv)
    count = import_corpus(args.git_dir, args.ref)
    print(f"{count} cases written to {CORPUS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
