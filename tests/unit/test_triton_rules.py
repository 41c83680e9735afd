"""Triton repository rules: one focused test per finding code, each the smallest change from a
valid repository (the single Python model or the idcheck ensemble) that Triton or SageMaker would
refuse, plus the variants Triton accepts and so must stay valid.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper

from chalicelib.domain.validation.archive import scan_archive
from chalicelib.domain.validation.findings import CATALOGUE, Code, Finding, Severity
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.model_rules import check_model
from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.repository import discover
from examples.build_examples import build_onnx
from testkit.tarballs import PYTHON_MODEL, codes, idcheck_repo, pack, python_config, single_python_repo, validate_bytes

Files = dict[str, bytes | None]
IDCHECK = "idcheck_1.tar.gz"
PIPELINE = "idcheck_pipeline/config.pbtxt"
PRE = "idcheck_preprocessing/config.pbtxt"
INFER = "idcheck_inferencer/config.pbtxt"
POST = "idcheck_postprocessing/config.pbtxt"
ONNX_PATH = "idcheck_inferencer/1/model.onnx"
SIMPLE = "simple/config.pbtxt"


# -- helpers -----------------------------------------------------------------------------------


def edit(files: Files, path: str, old: str, new: str, count: int = 1) -> Files:
    """A copy of ``files`` with ``old`` replaced by ``new`` in one text file (which must contain it)."""
    text = (files[path] or b"").decode()
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {path}"
    return {**files, path: text.replace(old, new).encode()}


def append(files: Files, path: str, extra: str) -> Files:
    return {**files, path: (files[path] or b"") + b"\n" + extra.encode() + b"\n"}


def check(files: Files, name: str = "simple_1.tar.gz") -> ValidationReport:
    return validate_bytes(pack(files), name)


def check_idcheck(files: Files) -> ValidationReport:
    return check(files, IDCHECK)


def simple_with(**kwargs: object) -> Files:
    """The single Python model with its config rebuilt by ``python_config(**kwargs)``."""
    return {**single_python_repo(), SIMPLE: python_config("simple", **kwargs)}  # type: ignore[arg-type]


def assert_only(report: ValidationReport, *expected: Code) -> None:
    """Exactly these codes, no others; valid unless one of them is an error."""
    assert codes(report) == {c.value for c in expected}, report.findings
    assert report.valid == all(CATALOGUE[c][0] is Severity.WARNING for c in expected)


def with_onnx(files: Files, model: onnx.ModelProto) -> Files:
    return {**files, ONNX_PATH: model.SerializeToString()}


def tensor_info(name: str, shape: list[int | str], elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def fp32_tensors(names: list[str], dims: str = "[ 4 ]") -> str:
    return ", ".join(f'{{ name: "{name}", data_type: TYPE_FP32, dims: {dims} }}' for name in names)


def python_member(name: str, inputs: list[str], outputs: list[str]) -> Files:
    """A Python model of FP32 [4] tensors."""
    return {
        f"{name}/config.pbtxt": python_config(name, inputs=fp32_tensors(inputs), outputs=fp32_tensors(outputs)),
        f"{name}/1/model.py": PYTHON_MODEL,
    }


def ensemble(
    name: str,
    inputs: list[str],
    outputs: list[str],
    steps: list[tuple[str, dict[str, str], dict[str, str]]],
    platform_line: str = 'platform: "ensemble"',
) -> Files:
    """An ensemble of FP32 [4] tensors; steps are (model, input_map, output_map)."""

    def maps(kind: str, mapping: dict[str, str]) -> str:
        return " ".join(f'{kind} {{ key: "{k}" value: "{v}" }}' for k, v in mapping.items())

    step_text = ",\n".join(
        f'{{ model_name: "{model}" model_version: -1 {maps("input_map", ins)} {maps("output_map", outs)} }}'
        for model, ins, outs in steps
    )
    config = (
        f'name: "{name}"\n{platform_line}\nmax_batch_size: 4\n'
        f"input [ {fp32_tensors(inputs)} ]\noutput [ {fp32_tensors(outputs)} ]\n"
        f"ensemble_scheduling {{ step [ {step_text} ] }}\n"
    )
    return {f"{name}/config.pbtxt": config.encode(), f"{name}/1": None}


# -- baselines ---------------------------------------------------------------------------------


def test_baselines_are_valid_without_findings() -> None:
    # GIVEN the two reference repositories WHEN validated THEN nothing is reported
    assert_only(check(single_python_repo()))
    assert_only(check_idcheck(idcheck_repo()))


def test_root_layout_is_served_under_the_tarball_name() -> None:
    # GIVEN config.pbtxt at the archive root (SageMaker's single-model layout)
    files: Files = {
        "model_version.txt": b"1\n",
        "config.pbtxt": python_config("anything"),
        "1/model.py": PYTHON_MODEL,
    }
    # WHEN validated
    report = check(files)
    # THEN it is valid and the served model is named after the tarball (SageMaker's TargetModel)
    assert_only(report)
    assert [(m.name, m.served, m.backend) for m in report.models] == [("simple_1.tar.gz", True, "python")]


def test_json_report_shape() -> None:
    # GIVEN a finding-free and a failing report WHEN dumped as JSON THEN the contract keys are there
    report = check(append(single_python_repo(), SIMPLE, "dynamic_batching { preferred_batch_size: [ 9 ] }"))
    data = report.model_dump(mode="json")
    assert {"valid", "model", "version", "sha256", "size", "findings", "models"} <= set(data)
    assert data["valid"] is False and data["model"] == "simple" and data["version"] == "1"
    assert len(data["sha256"]) == 64 and data["size"] > 0
    assert data["findings"] == [
        {
            "code": "PREFERRED_BATCH_SIZE_INVALID",
            "severity": "error",
            "path": SIMPLE,
            "message": data["findings"][0]["message"],
        }
    ]
    [model] = data["models"]
    assert {"name", "platform", "backend", "max_batch_size", "inputs", "outputs"} <= set(model)
    assert model["backend"] == "python" and model["platform"] is None and model["max_batch_size"] == 4
    assert model["inputs"] == [{"name": "IN", "data_type": "TYPE_FP32", "dims": [4]}]
    assert model["outputs"] == [{"name": "OUT", "data_type": "TYPE_FP32", "dims": [4]}]


# -- naming and model_version.txt --------------------------------------------------------------


def test_name_invalid() -> None:
    # GIVEN a valid repository WHEN its file name has no version THEN NAME_INVALID
    report = check(single_python_repo(), "simple.tar.gz")
    assert_only(report, Code.NAME_INVALID)
    assert report.model is None


def test_version_file_missing() -> None:
    files = single_python_repo()
    del files["model_version.txt"]
    assert_only(check(files), Code.VERSION_FILE_MISSING)


def test_version_file_mismatch() -> None:
    # GIVEN model_version.txt saying 1 WHEN the file name says 2 THEN VERSION_FILE_MISMATCH
    assert_only(check(single_python_repo(version="1"), "simple_2.tar.gz"), Code.VERSION_FILE_MISMATCH)


# -- repository layout -------------------------------------------------------------------------


def test_repo_no_model_without_any_config() -> None:
    assert_only(check({"model_version.txt": b"1\n", "README.txt": b"hello"}), Code.REPO_NO_MODEL)


def test_repo_no_model_when_configs_are_nested_one_level_too_deep() -> None:
    # GIVEN the repository folder itself archived (tar -czf x.tar.gz repo/)
    files = {k if k == "model_version.txt" else f"repo/{k}": v for k, v in single_python_repo().items()}
    report = check(files)
    # THEN no model is found, and the message points at the misplaced config
    assert_only(report, Code.REPO_NO_MODEL)
    assert "repo/simple/config.pbtxt" in report.findings[0].message


def test_repo_ambiguous_with_two_plain_models() -> None:
    # GIVEN two non-ensemble model directories WHEN validated THEN SageMaker's choice is arbitrary
    files = {**single_python_repo(), **python_member("other", ["IN"], ["OUT"])}
    assert_only(check(files), Code.REPO_AMBIGUOUS)


def test_repo_ambiguous_with_two_ensembles() -> None:
    files = idcheck_repo()
    copy = (files[PIPELINE] or b"").decode().replace('name: "idcheck_pipeline"', 'name: "idcheck_pipeline2"')
    files.update({"idcheck_pipeline2/config.pbtxt": copy.encode(), "idcheck_pipeline2/1": None})
    assert Code.REPO_AMBIGUOUS in codes(check_idcheck(files))


def test_repo_ensemble_undetected_with_space_before_colon() -> None:
    # GIVEN the ensemble written 'platform : "ensemble"' (valid protobuf text, but SageMaker's regex misses it)
    files = edit(idcheck_repo(), PIPELINE, 'platform: "ensemble"', 'platform : "ensemble"')
    assert_only(check_idcheck(files), Code.REPO_ENSEMBLE_UNDETECTED)


def test_config_missing_for_ensemble_member() -> None:
    files = idcheck_repo()
    del files[POST]
    assert_only(check_idcheck(files), Code.CONFIG_MISSING)


def test_config_syntax_reports_line_and_column() -> None:
    files = edit(single_python_repo(), SIMPLE, "max_batch_size: 4", "max_batch_size: four")
    report = check(files)
    assert_only(report, Code.CONFIG_SYNTAX)
    assert "line 3, column 17" in report.findings[0].message


def test_config_syntax_for_unknown_field() -> None:
    report = check(append(single_python_repo(), SIMPLE, "max_batch: 4"))
    assert_only(report, Code.CONFIG_SYNTAX)
    assert "max_batch" in report.findings[0].message and "line 7, column 1" in report.findings[0].message


@pytest.mark.parametrize(
    "extra",
    [
        'batch_input [ { kind: 99 target_name: "N" data_type: TYPE_INT32 source_input: "IN" } ]',
        "instance_group [ { kind: 42 count: 1 } ]",
        "dynamic_batching { priority_levels: 2 default_priority_level: 1 "
        "priority_queue_policy { key: 1 value: { timeout_action: 9 } } }",
    ],
    ids=["batch-input-kind", "instance-kind", "in-a-map-value"],
)
def test_config_syntax_for_an_enum_number_no_value_has(extra: str) -> None:
    # GIVEN an enum written as a number it does not name (Python's parser keeps it; Triton's refuses it)
    report = check(append(single_python_repo(), SIMPLE, extra))
    # THEN a syntax error naming the field, never an exception from a rule naming the value
    assert_only(report, Code.CONFIG_SYNTAX)
    assert "is no" in report.findings[0].message and "use a name" in report.findings[0].message


def test_config_too_large() -> None:
    files = append(single_python_repo(), SIMPLE, "# " + "x" * 2048)
    report = validate_bytes(pack(files), "simple_1.tar.gz", limits=ArchiveLimits(max_small_member_bytes=1024))
    assert_only(report, Code.CONFIG_TOO_LARGE)


def test_config_name_mismatch_for_member() -> None:
    # GIVEN an ensemble member whose config name differs from its directory
    files = edit(idcheck_repo(), INFER, 'name: "idcheck_inferencer"', 'name: "inferencer"')
    # THEN Triton would refuse it ("directory name must equal model name")
    report = check_idcheck(files)
    assert_only(report, Code.CONFIG_NAME_MISMATCH)
    assert report.findings[0].path == INFER


def test_config_name_of_served_model_and_missing_names_are_fine() -> None:
    # The served model is loaded under the TargetModel name, so its own name does not matter ...
    assert_only(check(edit(single_python_repo(), SIMPLE, 'name: "simple"', 'name: "whatever"')))
    served = edit(idcheck_repo(), PIPELINE, 'name: "idcheck_pipeline"', 'name: "pipeline"')
    assert_only(check_idcheck(served))
    # ... and a member without a name line takes its directory's name.
    assert_only(check_idcheck(edit(idcheck_repo(), INFER, 'name: "idcheck_inferencer"\n', "")))


# -- platform and backend ----------------------------------------------------------------------


def test_platform_missing_without_default_model_file() -> None:
    files = edit(single_python_repo(), SIMPLE, 'backend: "python"\n', "")
    files["simple/1/main.py"] = files.pop("simple/1/model.py")
    assert_only(check(files), Code.PLATFORM_MISSING)


def test_platform_missing_with_a_custom_default_model_filename() -> None:
    # Triton infers a backend only from the default file names: 'main.py' is not one.
    files = edit(single_python_repo(), SIMPLE, 'backend: "python"\n', 'default_model_filename: "main.py"\n')
    files["simple/1/main.py"] = files.pop("simple/1/model.py")
    assert_only(check(files), Code.PLATFORM_MISSING)


def test_auto_complete_infers_python_from_model_py() -> None:
    # GIVEN no platform and no backend, but 1/model.py WHEN validated THEN Triton auto-completes: valid
    report = check(edit(single_python_repo(), SIMPLE, 'backend: "python"\n', ""))
    assert_only(report)
    assert report.models[0].backend == "python"


def test_auto_complete_infers_onnxruntime_from_model_onnx() -> None:
    report = check_idcheck(edit(idcheck_repo(), INFER, 'platform: "onnxruntime_onnx"\n', ""))
    assert_only(report)
    inferencer = next(m for m in report.models if m.name == "idcheck_inferencer")
    assert (inferencer.platform, inferencer.backend) == ("onnxruntime_onnx", "onnxruntime")


def test_auto_complete_inspects_the_first_subdirectory_in_byte_order() -> None:
    # GIVEN versions 2 and 10, model.py only in 10 (the served one): Triton looks in '10' ('1' < '2')
    files = edit(single_python_repo(), SIMPLE, 'backend: "python"\n', "")
    files["simple/10/model.py"] = files.pop("simple/1/model.py")
    files["simple/2/README.txt"] = b"old version"
    assert_only(check(files), Code.MULTIPLE_VERSIONS)


@pytest.mark.parametrize("platform", ["onnxruntime", "python", "tensorflow"])
def test_platform_unknown(platform: str) -> None:
    files = edit(single_python_repo(), SIMPLE, 'backend: "python"', f'platform: "{platform}"')
    assert_only(check(files), Code.PLATFORM_UNKNOWN)


def test_backend_unknown_is_a_warning() -> None:
    report = check(edit(single_python_repo(), SIMPLE, 'backend: "python"', 'backend: "my_custom"'))
    assert_only(report, Code.BACKEND_UNKNOWN)
    assert report.valid


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        (INFER, 'platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onnx"\nbackend: "pytorch"'),
        (INFER, 'platform: "onnxruntime_onnx"', 'platform: "onnx"\nbackend: "onnxruntime"'),
        (PIPELINE, 'platform: "ensemble"', 'platform: "ensemble"\nbackend: "python"'),
    ],
    ids=["known-pair", "unknown-platform-with-triton-backend", "ensemble-with-backend"],
)
def test_platform_backend_conflict(path: str, old: str, new: str) -> None:
    assert Code.PLATFORM_BACKEND_CONFLICT in codes(check_idcheck(edit(idcheck_repo(), path, old, new)))


def test_any_platform_beside_a_custom_backend_is_accepted() -> None:
    # Triton allows every platform with a backend it does not know itself (python included).
    assert_only(check(edit(single_python_repo(), SIMPLE, 'backend: "python"', 'backend: "python"\nplatform: "x"')))


# -- versions ----------------------------------------------------------------------------------


def test_version_dir_missing() -> None:
    files = single_python_repo()
    files["simple/model.py"] = files.pop("simple/1/model.py")
    assert Code.VERSION_DIR_MISSING in codes(check(files))


def test_version_dir_missing_for_ensemble_without_1() -> None:
    files = idcheck_repo()
    del files["idcheck_pipeline/1"]
    report = check_idcheck(files)
    assert_only(report, Code.VERSION_DIR_MISSING)
    assert "ensembles need an empty '1/' too" in report.findings[0].message


# '\u00b2' and '\u0661' pass str.isdigit() but not std::stoll (and int() refuses the first)
@pytest.mark.parametrize("directory", ["v2", "01", "latest", "\u00b2", "\u0661"])
def test_version_dir_ignored_is_a_warning(directory: str) -> None:
    files = {**single_python_repo(), f"simple/{directory}/model.py": PYTHON_MODEL}
    assert_only(check(files), Code.VERSION_DIR_IGNORED)


def test_warmup_dir_and_root_tests_dir_are_not_version_dirs() -> None:
    assert_only(check({**single_python_repo(), "simple/warmup/input.bin": b"\0"}))
    root: Files = {"model_version.txt": b"1\n", "config.pbtxt": python_config("m"), "1/model.py": PYTHON_MODEL}
    valid_case = b'{"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]}]}'
    assert_only(check({**root, "tests/case.json": valid_case}))


def test_version_policy_unsatisfied() -> None:
    files = append(single_python_repo(), SIMPLE, "version_policy: { specific: { versions: [ 3 ] } }")
    assert_only(check(files), Code.VERSION_POLICY_UNSATISFIED)


def test_multiple_versions_is_a_warning() -> None:
    report = check({**single_python_repo(), "simple/2/model.py": PYTHON_MODEL})
    assert_only(report, Code.MULTIPLE_VERSIONS)
    assert "[1]" in report.findings[0].message


def test_version_policy_all_serves_every_version() -> None:
    files = append(single_python_repo(), SIMPLE, "version_policy: { all: {} }")
    assert_only(check({**files, "simple/2/model.py": PYTHON_MODEL}))


def test_model_file_missing() -> None:
    files = single_python_repo()
    files["simple/1/helper.py"] = files.pop("simple/1/model.py")
    report = check(files)
    assert_only(report, Code.MODEL_FILE_MISSING)
    assert report.findings[0].path == "simple/1/model.py"


def test_model_file_missing_for_onnx() -> None:
    files = idcheck_repo()
    files["idcheck_inferencer/1/weights.onnx"] = files.pop(ONNX_PATH)
    assert Code.MODEL_FILE_MISSING in codes(check_idcheck(files))


# -- batching, inputs and outputs --------------------------------------------------------------


def test_batch_size_invalid() -> None:
    assert_only(check(simple_with(max_batch_size=-1)), Code.BATCH_SIZE_INVALID)


@pytest.mark.parametrize("sizes", ["[ 8 ]", "[ 0 ]", "[ 2, 5 ]"])
def test_preferred_batch_size_invalid(sizes: str) -> None:
    files = append(single_python_repo(), SIMPLE, f"dynamic_batching {{ preferred_batch_size: {sizes} }}")
    assert_only(check(files), Code.PREFERRED_BATCH_SIZE_INVALID)


def test_dynamic_batching_without_batching_and_valid_preferred_sizes_are_fine() -> None:
    assert_only(check(simple_with(max_batch_size=0, extra="dynamic_batching { }")))
    assert_only(check(append(single_python_repo(), SIMPLE, "dynamic_batching { preferred_batch_size: [ 2, 4 ] }")))


def test_io_duplicate_name_is_a_warning() -> None:
    tensor = '{ name: "IN", data_type: TYPE_FP32, dims: [ 4 ] }'
    assert_only(check(simple_with(inputs=f"{tensor}, {tensor}")), Code.IO_DUPLICATE_NAME)


def test_data_type_invalid() -> None:
    assert_only(check(simple_with(inputs='{ name: "IN", dims: [ 4 ] }')), Code.DATA_TYPE_INVALID)


def pytorch_model(outputs: str) -> Files:
    inputs = 'input [ { name: "INPUT__0", data_type: TYPE_FP32, dims: [ 4 ] } ]'
    config = f'name: "torch"\nbackend: "pytorch"\nmax_batch_size: 4\n{inputs}\n{outputs}'
    return {"model_version.txt": b"1\n", "torch/config.pbtxt": config.encode(), "torch/1/model.pt": b"torchscript"}


def test_outputs_missing_for_a_pytorch_model() -> None:
    # GIVEN a PyTorch model whose config lists no output (its backend cannot infer them)
    report = check(pytorch_model(""), "torch_1.tar.gz")
    assert_only(report, Code.OUTPUTS_MISSING)
    assert "OUTPUT__0" in report.findings[0].message
    # AND with its output listed it is valid
    assert_only(
        check(pytorch_model('output [ { name: "OUTPUT__0", data_type: TYPE_FP32, dims: [ 4 ] } ]'), "torch_1.tar.gz")
    )


@pytest.mark.parametrize("dims", ["", "dims: [ ]"])
def test_dims_empty(dims: str) -> None:
    assert_only(check(simple_with(outputs=f'{{ name: "OUT", data_type: TYPE_FP32 {dims} }}')), Code.DIMS_EMPTY)


@pytest.mark.parametrize("dims", ["[ 0 ]", "[ 4, -2 ]"])
def test_dims_invalid(dims: str) -> None:
    report = check(simple_with(inputs=f'{{ name: "IN", data_type: TYPE_FP32, dims: {dims} }}'))
    assert_only(report, Code.DIMS_INVALID)


def test_dims_variable_is_fine() -> None:
    assert_only(check(simple_with(inputs='{ name: "IN", data_type: TYPE_FP32, dims: [ -1, 4 ] }')))


@pytest.mark.parametrize(
    ("dims", "reshape"),
    [
        ("[ 4 ]", "[ 2, 3 ]"),  # element count
        ("[ -1, 4 ]", "[ 4 ]"),  # number of variable dimensions
        ("[ 2, -1 ]", "[ -1, 2 ]"),  # runs between wildcards
        ("[ 2, 2 ]", "[ ]"),  # an empty reshape needs one element
    ],
)
def test_reshape_mismatch(dims: str, reshape: str) -> None:
    tensor = f'{{ name: "IN", data_type: TYPE_FP32, dims: {dims}, reshape: {{ shape: {reshape} }} }}'
    assert_only(check(simple_with(inputs=tensor)), Code.RESHAPE_MISMATCH)


def test_reshape_empty_without_batching_is_a_mismatch() -> None:
    tensor = '{ name: "IN", data_type: TYPE_FP32, dims: [ 1 ], reshape: { shape: [ ] } }'
    assert_only(check(simple_with(inputs=tensor, max_batch_size=0)), Code.RESHAPE_MISMATCH)


def test_reshape_with_zero_is_dims_invalid() -> None:
    tensor = '{ name: "IN", data_type: TYPE_FP32, dims: [ 4 ], reshape: { shape: [ 0, 4 ] } }'
    assert Code.DIMS_INVALID in codes(check(simple_with(inputs=tensor)))


@pytest.mark.parametrize(
    ("dims", "reshape"),
    [("[ 4 ]", "[ 2, 2 ]"), ("[ 2, 4, -1, 6 ]", "[ 8, -1, 1, 6 ]"), ("[ 1 ]", "[ ]"), ("[ 1, 1 ]", "[ ]")],
)
def test_reshapes_triton_accepts(dims: str, reshape: str) -> None:
    tensor = f'{{ name: "IN", data_type: TYPE_FP32, dims: {dims}, reshape: {{ shape: {reshape} }} }}'
    assert_only(check(simple_with(inputs=tensor)))


def test_instance_kind_cpu_warns_for_onnx_only() -> None:
    # GIVEN the ONNX inferencer on KIND_CPU THEN a warning; the Python members already run on KIND_CPU silently
    files = edit(idcheck_repo(), INFER, "kind: KIND_GPU", "kind: KIND_CPU")
    report = check_idcheck(files)
    assert_only(report, Code.INSTANCE_KIND_CPU)
    assert report.findings[0].path == INFER
    assert "KIND_CPU" in (idcheck_repo()[PRE] or b"").decode()


# -- ensembles ---------------------------------------------------------------------------------


def test_ensemble_no_steps() -> None:
    files = idcheck_repo()
    text = (files[PIPELINE] or b"").decode()
    files[PIPELINE] = text.split("ensemble_scheduling")[0].encode()
    assert_only(check_idcheck(files), Code.ENSEMBLE_NO_STEPS)


def test_ensemble_instance_group() -> None:
    files = append(idcheck_repo(), PIPELINE, "instance_group [ { kind: KIND_GPU, count: 1 } ]")
    assert_only(check_idcheck(files), Code.ENSEMBLE_INSTANCE_GROUP)


def test_ensemble_member_missing() -> None:
    files = idcheck_repo()
    files = {k: v for k, v in files.items() if not k.startswith("idcheck_postprocessing/")}
    assert_only(check_idcheck(files), Code.ENSEMBLE_MEMBER_MISSING)


def test_ensemble_member_version_missing() -> None:
    old = 'model_name: "idcheck_inferencer"\n      model_version: -1'
    files = edit(idcheck_repo(), PIPELINE, old, old.replace("-1", "2"))
    assert_only(check_idcheck(files), Code.ENSEMBLE_MEMBER_VERSION_MISSING)


def test_ensemble_member_version_present_but_not_loaded() -> None:
    # GIVEN versions 1 and 2 of the inferencer and the default policy (latest 1) WHEN a step pins 1
    # THEN Triton refuses: the pinned version is not loaded
    old = 'model_name: "idcheck_inferencer"\n      model_version: -1'
    files = edit(idcheck_repo(), PIPELINE, old, old.replace("-1", "1"))
    files["idcheck_inferencer/2/model.onnx"] = files[ONNX_PATH]
    assert_only(check_idcheck(files), Code.ENSEMBLE_MEMBER_VERSION_MISSING, Code.MULTIPLE_VERSIONS)


def test_ensemble_map_unknown_tensor_in_input_map() -> None:
    files = edit(idcheck_repo(), PIPELINE, 'input_map { key: "FEATURES"', 'input_map { key: "FEATURE"')
    report = check_idcheck(files)
    assert Code.ENSEMBLE_MAP_UNKNOWN_TENSOR in codes(report)
    assert any("maps input 'FEATURE'" in f.message for f in report.findings)


def test_ensemble_map_unknown_tensor_in_output_map() -> None:
    files = edit(idcheck_repo(), PIPELINE, 'output_map { key: "LOGITS"', 'output_map { key: "LOGIT"')
    assert_only(check_idcheck(files), Code.ENSEMBLE_MAP_UNKNOWN_TENSOR)


def test_ensemble_member_input_unmapped() -> None:
    extra = '{ name: "LOGITS", data_type: TYPE_FP32, dims: [ 4 ] }'
    files = edit(idcheck_repo(), POST, extra, extra + ',\n  { name: "THRESHOLD", data_type: TYPE_FP32, dims: [ 1 ] }')
    report = check_idcheck(files)
    assert_only(report, Code.ENSEMBLE_MEMBER_INPUT_UNMAPPED)
    assert "THRESHOLD" in report.findings[0].message


def test_ensemble_optional_member_inputs_may_stay_unmapped() -> None:
    # GIVEN a member whose inputs are all optional, one of them mapped THEN Triton loads it
    logits = '{ name: "LOGITS", data_type: TYPE_FP32, dims: [ 4 ] }'
    optional = (
        '{ name: "LOGITS", data_type: TYPE_FP32, dims: [ 4 ], optional: true },\n'
        '  { name: "THRESHOLD", data_type: TYPE_FP32, dims: [ 1 ], optional: true }'
    )
    assert_only(check_idcheck(edit(idcheck_repo(), POST, logits, optional)))


def test_ensemble_input_unused() -> None:
    raw = '{ name: "RAW_FEATURES", data_type: TYPE_FP32, dims: [ 16 ] }'
    files = edit(idcheck_repo(), PIPELINE, raw, raw + ',\n  { name: "COUNTRY", data_type: TYPE_STRING, dims: [ 1 ] }')
    assert_only(check_idcheck(files), Code.ENSEMBLE_INPUT_UNUSED)


def test_ensemble_output_not_produced() -> None:
    out = '{ name: "DECISION", data_type: TYPE_STRING, dims: [ 1 ] }'
    files = edit(idcheck_repo(), PIPELINE, out, out + ',\n  { name: "SCORE", data_type: TYPE_FP32, dims: [ 1 ] }')
    assert_only(check_idcheck(files), Code.ENSEMBLE_OUTPUT_NOT_PRODUCED)


def test_ensemble_tensor_multiple_writers() -> None:
    files = {
        "model_version.txt": b"1\n",
        **python_member("a", ["IN"], ["OUT"]),
        **python_member("b", ["IN"], ["OUT"]),
        **ensemble("pipe", ["X"], ["Y"], [("a", {"IN": "X"}, {"OUT": "Y"}), ("b", {"IN": "X"}, {"OUT": "Y"})]),
    }
    assert_only(check(files, "pipe_1.tar.gz"), Code.ENSEMBLE_TENSOR_MULTIPLE_WRITERS)


def test_ensemble_input_passed_through_as_output_is_accepted() -> None:
    # Triton loads an ensemble output that is an ensemble input also read by a step.
    files = {
        "model_version.txt": b"1\n",
        **python_member("a", ["IN"], ["OUT"]),
        **ensemble("pipe", ["X"], ["X", "Y"], [("a", {"IN": "X"}, {"OUT": "Y"})]),
    }
    assert_only(check(files, "pipe_1.tar.gz"))


def test_ensemble_tensor_undefined() -> None:
    files = edit(
        idcheck_repo(),
        PIPELINE,
        'input_map { key: "LOGITS" value: "logits" }',
        'input_map { key: "LOGITS" value: "logit" }',
    )
    report = check_idcheck(files)
    assert Code.ENSEMBLE_TENSOR_UNDEFINED in codes(report)
    assert any("'logit'" in f.message for f in report.findings if f.code is Code.ENSEMBLE_TENSOR_UNDEFINED)


def test_ensemble_tensor_unused() -> None:
    # GIVEN the pre-processing step also writes a tensor that nothing reads THEN Triton refuses it
    out = '{ name: "FEATURES", data_type: TYPE_FP32, dims: [ 16 ] }'
    files = edit(idcheck_repo(), PRE, out, out + ',\n  { name: "STATS", data_type: TYPE_FP32, dims: [ 2 ] }')
    mapping = 'output_map { key: "FEATURES" value: "features" }'
    files = edit(files, PIPELINE, mapping, mapping + '\n      output_map { key: "STATS" value: "stats" }')
    report = check_idcheck(files)
    assert_only(report, Code.ENSEMBLE_TENSOR_UNUSED)
    assert "'stats'" in report.findings[0].message


def test_ensemble_type_mismatch() -> None:
    files = edit(
        idcheck_repo(), PRE, '{ name: "FEATURES", data_type: TYPE_FP32', '{ name: "FEATURES", data_type: TYPE_FP64'
    )
    assert_only(check_idcheck(files), Code.ENSEMBLE_TYPE_MISMATCH)


def test_ensemble_shape_mismatch() -> None:
    files = edit(
        idcheck_repo(),
        PRE,
        '{ name: "FEATURES", data_type: TYPE_FP32, dims: [ 16 ] }',
        '{ name: "FEATURES", data_type: TYPE_FP32, dims: [ 15 ] }',
    )
    assert_only(check_idcheck(files), Code.ENSEMBLE_SHAPE_MISMATCH)


@pytest.mark.parametrize("logits_dims", ["[ 4 ]", "[ -1, 4 ]"])
def test_ensemble_non_batching_member_is_accepted(logits_dims: str) -> None:
    # Triton accepts the plain dims agreeing ([4] vs [4]) or the batch-expanded ones ([-1, 4] vs [-1, 4]).
    files = edit(idcheck_repo(), POST, "max_batch_size: 8", "max_batch_size: 0")
    files = edit(
        files,
        POST,
        '{ name: "LOGITS", data_type: TYPE_FP32, dims: [ 4 ] }',
        f'{{ name: "LOGITS", data_type: TYPE_FP32, dims: {logits_dims} }}',
    )
    assert Code.ENSEMBLE_SHAPE_MISMATCH not in codes(check_idcheck(files))


def test_ensemble_batch_mismatch() -> None:
    files = edit(idcheck_repo(), POST, "max_batch_size: 8", "max_batch_size: 4")
    assert_only(check_idcheck(files), Code.ENSEMBLE_BATCH_MISMATCH)


def test_ensemble_cycle_between_steps() -> None:
    # GIVEN step a needs b's output and b needs a's output (every tensor written and read)
    files = {
        "model_version.txt": b"1\n",
        **python_member("a", ["IN", "AUX"], ["OUT"]),
        **python_member("b", ["IN"], ["OUT", "RESULT"]),
        **ensemble(
            "pipe",
            ["X"],
            ["Y"],
            [("a", {"IN": "X", "AUX": "loop"}, {"OUT": "mid"}), ("b", {"IN": "mid"}, {"OUT": "loop", "RESULT": "Y"})],
        ),
    }
    report = check(files, "pipe_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_CYCLE)


def test_nested_ensembles_containing_each_other() -> None:
    # GIVEN ensemble outer uses inner and inner uses outer (inner is written so SageMaker serves outer)
    inner = ensemble("inner", ["X"], ["Y"], [("outer", {"X": "X"}, {"Y": "Y"})], 'platform : "ensemble"')
    files = {
        "model_version.txt": b"1\n",
        **ensemble("outer", ["X"], ["Y"], [("inner", {"X": "X"}, {"Y": "Y"})]),
        **inner,
    }
    report = check(files, "outer_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_CYCLE)
    assert (
        "outer -> inner -> outer" in report.findings[0].message
        or "inner -> outer -> inner" in report.findings[0].message
    )


def test_nested_ensemble_without_cycle_is_valid() -> None:
    inner = ensemble("inner", ["X"], ["Y"], [("leaf", {"IN": "X"}, {"OUT": "Y"})], 'platform : "ensemble"')
    files = {
        "model_version.txt": b"1\n",
        **ensemble("outer", ["X"], ["Y"], [("inner", {"X": "X"}, {"Y": "Y"})]),
        **inner,
        **python_member("leaf", ["IN"], ["OUT"]),
    }
    assert_only(check(files, "outer_1.tar.gz"))


def test_nested_ensembles_both_detected_are_ambiguous_and_the_message_says_how_to_nest() -> None:
    # GIVEN an outer ensemble using an inner one, both written 'platform: "ensemble"'
    files = {
        "model_version.txt": b"1\n",
        **ensemble("outer", ["X"], ["Y"], [("inner", {"X": "X"}, {"Y": "Y"})]),
        **ensemble("inner", ["X"], ["Y"], [("leaf", {"IN": "X"}, {"OUT": "Y"})]),
        **python_member("leaf", ["IN"], ["OUT"]),
    }
    # WHEN validated THEN SageMaker's pattern matches both, so it would serve either
    report = check(files, "outer_1.tar.gz")
    assert_only(report, Code.REPO_AMBIGUOUS)
    # AND the message names the outer one and the spelling that nests the inner one
    assert "serve 'outer'" in report.findings[0].message
    assert 'platform : "ensemble"' in report.findings[0].message and "in inner" in report.findings[0].message


# -- python backend ----------------------------------------------------------------------------


def test_python_model_syntax() -> None:
    report = check({**single_python_repo(), "simple/1/model.py": b"class TritonPythonModel(:\n    pass\n"})
    assert_only(report, Code.PYTHON_MODEL_SYNTAX)
    assert "line 1" in report.findings[0].message


def test_python_model_class_missing() -> None:
    report = check({**single_python_repo(), "simple/1/model.py": b"class Model:\n    pass\n"})
    assert_only(report, Code.PYTHON_MODEL_CLASS_MISSING)


@pytest.mark.parametrize(
    "source",
    [
        b"from impl import TritonPythonModel\n",
        b"from impl import Model as TritonPythonModel\n",
        b"import impl\nTritonPythonModel = impl.Model\n",
        b"try:\n    import numpy\nexcept ImportError:\n    pass\nelse:\n    class TritonPythonModel:\n        pass\n",
    ],
    ids=["import", "import-as", "assignment", "under-try"],
)
def test_python_model_class_bound_otherwise_is_accepted(source: bytes) -> None:
    assert_only(check({**single_python_repo(), "simple/1/model.py": source}))


def test_python_env_missing() -> None:
    files = idcheck_repo()
    del files["idcheck_preprocessing/python_env.tar.gz"]
    report = check_idcheck(files)
    assert_only(report, Code.PYTHON_ENV_MISSING)
    assert report.findings[0].path == "idcheck_preprocessing/python_env.tar.gz"


@pytest.mark.parametrize(
    "value",
    [
        "$$TRITON_MODEL_DIRECTORY/../idcheck_postprocessing/python_env.tar.gz",
        "/opt/conda/envs/python_env.tar.gz",
        "$$TRITON_MODEL_DIRECTORY_env.tar.gz",
    ],
    ids=["dotdot", "absolute", "no-slash"],
)
def test_python_env_outside_model(value: str) -> None:
    files = edit(idcheck_repo(), PRE, "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz", value)
    files["idcheck_postprocessing/python_env.tar.gz"] = files["idcheck_preprocessing/python_env.tar.gz"]
    assert_only(check_idcheck(files), Code.PYTHON_ENV_OUTSIDE_MODEL)


def test_python_env_inside_after_dotdot_and_unpacked_directory_are_fine() -> None:
    back_in = "$$TRITON_MODEL_DIRECTORY/../idcheck_preprocessing/python_env.tar.gz"
    assert_only(check_idcheck(edit(idcheck_repo(), PRE, "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz", back_in)))
    files = edit(idcheck_repo(), PRE, "python_env.tar.gz", "python_env")
    files["idcheck_preprocessing/python_env/bin/python"] = b"#!"
    del files["idcheck_preprocessing/python_env.tar.gz"]
    assert_only(check_idcheck(files))


def test_python_env_whose_name_starts_with_two_dots_is_inside_a_root_layout_model() -> None:
    # GIVEN a root-layout model whose environment file is named '..env.tar.gz' THEN it is inside
    env = 'parameters { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/..env.tar.gz" } }'
    root: Files = {
        "model_version.txt": b"1\n",
        "config.pbtxt": python_config("m", extra=env),
        "1/model.py": PYTHON_MODEL,
        "..env.tar.gz": b"env",
    }
    assert_only(check(root, "m_1.tar.gz"))


def test_python_env_large_is_a_warning() -> None:
    # GIVEN a scan of the example whose environment member is declared 2 GiB (no 2 GiB tarball is built)
    env = "idcheck_preprocessing/python_env.tar.gz"
    scan = scan_archive(io.BytesIO(pack(idcheck_repo())), ArchiveLimits(), IDCHECK)
    scan.members[env] = replace(scan.members[env], size=2 << 30)
    findings: list[Finding] = []
    repo = discover(scan, IDCHECK, findings)
    # WHEN the pre-processing model's rules run
    findings += check_model(repo.models["idcheck_preprocessing"], scan, scan.directories())
    # THEN one warning, about that file
    assert [(f.code, f.severity, f.path) for f in findings] == [(Code.PYTHON_ENV_LARGE, Severity.WARNING, env)]
    assert "2.0 GB" in findings[0].message


# -- onnx --------------------------------------------------------------------------------------


def test_onnx_unreadable() -> None:
    report = check_idcheck({**idcheck_repo(), ONNX_PATH: b"this is not an ONNX model"})
    assert_only(report, Code.ONNX_UNREADABLE)
    assert report.findings[0].path == ONNX_PATH


def test_onnx_truncated_is_unreadable() -> None:
    data = build_onnx().SerializeToString()
    assert_only(check_idcheck({**idcheck_repo(), ONNX_PATH: data[: len(data) // 2]}), Code.ONNX_UNREADABLE)


def test_onnx_input_missing() -> None:
    # GIVEN the graph input renamed: the configured FEATURES is not in it and X is not configured
    model = build_onnx()
    model.graph.input[0].name = "X"
    model.graph.node[0].input[0] = "X"
    report = check_idcheck(with_onnx(idcheck_repo(), model))
    assert Code.ONNX_INPUT_MISSING in codes(report)
    assert Code.ONNX_INPUT_UNCONFIGURED in codes(report)


def test_onnx_optional_input_must_exist_too() -> None:
    features = '{ name: "FEATURES", data_type: TYPE_FP32, dims: [ 16 ] }'
    optional = features + ',\n  { name: "MASK", data_type: TYPE_FP32, dims: [ 16 ], optional: true }'
    files = edit(edit(idcheck_repo(), INFER, features, optional), INFER, "max_batch_size: 8", "max_batch_size: 0")
    assert Code.ONNX_INPUT_MISSING in codes(check_idcheck(files))


def test_onnx_input_unconfigured() -> None:
    model = build_onnx()
    model.graph.input.append(tensor_info("MASK", ["batch", 16]))
    report = check_idcheck(with_onnx(idcheck_repo(), model))
    assert_only(report, Code.ONNX_INPUT_UNCONFIGURED)
    assert "MASK" in report.findings[0].message


def test_onnx_input_fed_by_batch_input_is_configured() -> None:
    model = build_onnx()
    model.graph.input.append(tensor_info("COUNT", ["batch", 1]))
    files = append(
        with_onnx(idcheck_repo(), model),
        INFER,
        'batch_input [ { kind: BATCH_ELEMENT_COUNT, target_name: "COUNT", data_type: TYPE_FP32, '
        'source_input: "FEATURES" } ]',
    )
    assert_only(check_idcheck(files))


def test_onnx_output_missing() -> None:
    model = build_onnx()
    model.graph.output[0].name = "SCORES"
    model.graph.node[-1].output[0] = "SCORES"
    assert_only(check_idcheck(with_onnx(idcheck_repo(), model)), Code.ONNX_OUTPUT_MISSING)


def test_onnx_config_may_list_a_subset_of_outputs() -> None:
    model = build_onnx()
    model.graph.output.append(tensor_info("hidden", ["batch", 32]))
    assert_only(check_idcheck(with_onnx(idcheck_repo(), model)))


@pytest.mark.parametrize("kind", ["input", "output"])
def test_onnx_type_mismatch(kind: str) -> None:
    model = build_onnx()
    getattr(model.graph, kind)[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    report = check_idcheck(with_onnx(idcheck_repo(), model))
    assert_only(report, Code.ONNX_TYPE_MISMATCH)
    assert "TYPE_FP64" in report.findings[0].message


@pytest.mark.parametrize(
    "shape",
    [[1, 16], ["batch", 4, 4], [16]],
    ids=["fixed-batch-dim", "rank-differs", "no-batch-dim"],
)
def test_onnx_shape_mismatch(shape: list[int | str]) -> None:
    model = build_onnx()
    model.graph.input[0].CopyFrom(tensor_info("FEATURES", shape))
    assert_only(check_idcheck(with_onnx(idcheck_repo(), model)), Code.ONNX_SHAPE_MISMATCH)


def test_onnx_output_shape_is_compared_exactly() -> None:
    # A symbolic output dimension where the config says 4: the backend compares outputs exactly.
    model = build_onnx()
    model.graph.output[0].CopyFrom(tensor_info("LOGITS", ["batch", "classes"]))
    assert_only(check_idcheck(with_onnx(idcheck_repo(), model)), Code.ONNX_SHAPE_MISMATCH)


def test_onnx_variable_input_dim_accepts_any_config_dim() -> None:
    model = build_onnx()
    model.graph.input[0].CopyFrom(tensor_info("FEATURES", ["batch", "width"]))
    assert_only(check_idcheck(with_onnx(idcheck_repo(), model)))


def test_onnx_without_batching_compares_the_full_shape() -> None:
    files = edit(idcheck_repo(), INFER, "max_batch_size: 8", "max_batch_size: 0")
    files = edit(files, INFER, "dims: [ 16 ]", "dims: [ 2, 16 ]")
    model = build_onnx()
    model.graph.input[0].CopyFrom(tensor_info("FEATURES", [3, 16]))
    assert Code.ONNX_SHAPE_MISMATCH in codes(check_idcheck(with_onnx(files, model)))


def test_onnx_scalar_tensor_needs_config_dims_of_one() -> None:
    # The backend skips the shape check for a rank-0 ONNX tensor but wants config dims of 1.
    model = build_onnx()
    model.graph.output.append(tensor_info("CONFIDENCE", []))
    confidence = '{ name: "CONFIDENCE", data_type: TYPE_FP32, dims: [ 1 ] }'
    logits = '{ name: "LOGITS", data_type: TYPE_FP32, dims: [ 4 ] }'
    files = with_onnx(edit(idcheck_repo(), INFER, logits, f"{logits},\n  {confidence}"), model)
    assert_only(check_idcheck(files))
    files = edit(files, INFER, confidence, confidence.replace("[ 1 ]", "[ 2 ]"))
    assert_only(check_idcheck(files), Code.ONNX_SHAPE_MISMATCH)


def _with_external_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    weights = model.graph.initializer[0]
    external_data_helper.set_external_data(weights, location="weights.bin")
    weights.data_location = TensorProto.EXTERNAL
    weights.ClearField("raw_data")
    return model


def test_onnx_external_data_missing() -> None:
    report = check_idcheck(with_onnx(idcheck_repo(), _with_external_weights(build_onnx())))
    assert_only(report, Code.ONNX_EXTERNAL_DATA_MISSING)
    assert "idcheck_inferencer/1/weights.bin" in report.findings[0].message


def test_onnx_external_data_present_is_valid() -> None:
    files = with_onnx(idcheck_repo(), _with_external_weights(build_onnx()))
    files["idcheck_inferencer/1/weights.bin"] = b"\0" * 64
    assert_only(check_idcheck(files))


def test_every_triton_code_has_a_test_here() -> None:
    """Guard: a new repository code without a test in this module or its siblings fails loudly."""
    siblings = [*Path(__file__).parent.glob("test_triton*_rules.py"), Path(__file__).with_name("test_triton_fields.py")]
    source = "".join(p.read_text(encoding="utf-8") for p in siblings)
    repository_codes = [c for c in Code if list(Code).index(c) >= list(Code).index(Code.REPO_NO_MODEL)]
    repository_codes += [Code.NAME_INVALID, Code.VERSION_FILE_MISSING, Code.VERSION_FILE_MISMATCH]
    untested = [c.value for c in repository_codes if f"Code.{c.value}" not in source]
    assert untested == []
