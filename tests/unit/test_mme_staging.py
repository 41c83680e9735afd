"""Tarball -> locally loadable Triton models (no Triton needed: the staged files are checked)."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from mmedeploy.local.mme.adapters import MODEL_FILE_PARAMETER, ONNXRUNTIME, TORCHSCRIPT
from mmedeploy.local.mme.errors import ContainerError
from mmedeploy.local.mme.staging import stage_tarball
from testkit.tarballs import PYTHON_MODEL, gz, idcheck_repo, info, pack, python_config, raw_tar, single_python_repo

TARGET = "idcheck_1.tar.gz"


def write(tmp_path: Path, data: bytes, name: str = TARGET) -> Path:
    path = tmp_path / "download" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def config(repository: Path, name: str) -> pb.ModelConfig:
    return text_format.Parse((repository / name / "config.pbtxt").read_text(), pb.ModelConfig())


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    path = tmp_path / "endpoint" / "repository"
    path.mkdir(parents=True)
    return path


def test_ensemble_is_served_as_the_target_and_members_are_namespaced(tmp_path: Path, repository: Path) -> None:
    staged = stage_tarball(write(tmp_path, pack(idcheck_repo())), TARGET, repository)
    members = ["idcheck_inferencer", "idcheck_postprocessing", "idcheck_preprocessing"]
    assert staged.target == TARGET
    assert staged.members == [f"{TARGET}~{m}" for m in members]
    assert sorted(p.name for p in repository.iterdir()) == sorted(staged.names)
    ensemble = config(repository, TARGET)
    assert ensemble.name == TARGET
    assert {step.model_name for step in ensemble.ensemble_scheduling.step} == set(staged.members)
    for member in staged.members:
        assert config(repository, member).name == member
    assert not (repository.parent / "extracting").exists() or not any((repository.parent / "extracting").iterdir())


def test_onnx_gets_the_onnxruntime_adapter_on_cpu(tmp_path: Path, repository: Path) -> None:
    staged = stage_tarball(write(tmp_path, pack(idcheck_repo())), TARGET, repository)
    name = f"{TARGET}~idcheck_inferencer"
    inferencer = config(repository, name)
    assert (inferencer.backend, inferencer.platform) == ("python", "")
    assert inferencer.parameters[MODEL_FILE_PARAMETER].string_value == "model.onnx"
    assert all(group.kind == pb.ModelInstanceGroup.KIND_CPU for group in inferencer.instance_group)
    assert (repository / name / "1" / "model.py").read_bytes() == ONNXRUNTIME.read_bytes()
    assert (repository / name / "1" / "model.onnx").is_file()
    assert any("adapter" in note for note in staged.notes)


def test_execution_env_path_is_dropped_and_the_model_py_precompiled(tmp_path: Path, repository: Path) -> None:
    staged = stage_tarball(write(tmp_path, pack(idcheck_repo())), TARGET, repository)
    name = f"{TARGET}~idcheck_preprocessing"
    assert "EXECUTION_ENV_PATH" not in config(repository, name).parameters
    assert any("EXECUTION_ENV_PATH" in note for note in staged.notes)
    assert list((repository / name / "1" / "__pycache__").glob("model.*.pyc")), "Triton would reload otherwise"


def test_user_tarball_is_unchanged(tmp_path: Path, repository: Path) -> None:
    data = pack(idcheck_repo())
    path = write(tmp_path, data)
    stage_tarball(path, TARGET, repository)
    assert path.read_bytes() == data


def test_onnx_inputs_and_outputs_are_completed_from_the_graph_when_the_config_omits_them(
    tmp_path: Path, repository: Path
) -> None:
    files = idcheck_repo()
    text = files["idcheck_inferencer/config.pbtxt"]
    assert isinstance(text, bytes)
    files["idcheck_inferencer/config.pbtxt"] = re.sub(rb"(?s)\ninput \[.*?\]\noutput \[.*?\]\n", b"\n", text)
    assert b"input" not in files["idcheck_inferencer/config.pbtxt"]
    stage_tarball(write(tmp_path, pack(files)), TARGET, repository)
    inferencer = config(repository, f"{TARGET}~idcheck_inferencer")
    assert [(i.name, list(i.dims)) for i in inferencer.input] == [("FEATURES", [16])]
    assert [(o.name, list(o.dims), o.data_type) for o in inferencer.output] == [("LOGITS", [4], pb.TYPE_FP32)]


def test_root_layout_model_is_staged_without_the_version_file(tmp_path: Path, repository: Path) -> None:
    files = {
        "model_version.txt": b"1\n",
        "config.pbtxt": python_config("anything"),
        "1/model.py": PYTHON_MODEL,
    }
    staged = stage_tarball(write(tmp_path, pack(files), "solo_1.tar.gz"), "solo_1.tar.gz", repository)
    assert staged.names == ["solo_1.tar.gz"]
    assert sorted(p.name for p in (repository / "solo_1.tar.gz").iterdir()) == ["1", "config.pbtxt"]
    assert config(repository, "solo_1.tar.gz").name == "solo_1.tar.gz"


def test_tensorrt_plan_is_not_runnable_locally(tmp_path: Path, repository: Path) -> None:
    files = {
        "model_version.txt": b"1\n",
        "engine/config.pbtxt": b'platform: "tensorrt_plan"\nmax_batch_size: 1\n'
        b'input [ { name: "IN", data_type: TYPE_FP32, dims: [ 4 ] } ]\n'
        b'output [ { name: "OUT", data_type: TYPE_FP32, dims: [ 4 ] } ]\n',
        "engine/1/model.plan": b"\x00" * 64,
    }
    with pytest.raises(ContainerError) as raised:
        stage_tarball(write(tmp_path, pack(files), "engine_1.tar.gz"), "engine_1.tar.gz", repository)
    assert raised.value.status == 400
    assert "not runnable locally" in raised.value.message and "TensorRT" in raised.value.message
    assert list(repository.iterdir()) == []


def test_an_unsafe_archive_is_never_extracted(tmp_path: Path, repository: Path) -> None:
    link = info("simple/1/model.py", tarfile.SYMTYPE, link="/etc/passwd")
    data = gz(raw_tar([(info("simple/config.pbtxt"), python_config("simple")), link]))
    with pytest.raises(ContainerError) as raised:
        stage_tarball(write(tmp_path, data, "simple_1.tar.gz"), "simple_1.tar.gz", repository)
    assert raised.value.status == 400
    assert "MEMBER_SYMLINK" in raised.value.message
    assert list(repository.iterdir()) == []


def test_no_model_directory_is_a_load_failure_with_the_finding(tmp_path: Path, repository: Path) -> None:
    data = pack({"model_version.txt": b"1\n", "README.md": b"hello"})
    with pytest.raises(ContainerError) as raised:
        stage_tarball(write(tmp_path, data, "empty_1.tar.gz"), "empty_1.tar.gz", repository)
    assert raised.value.status == 400 and "REPO_NO_MODEL" in raised.value.message


def test_members_of_two_tarballs_do_not_collide(tmp_path: Path, repository: Path) -> None:
    first = stage_tarball(write(tmp_path, pack(single_python_repo("same")), "a_1.tar.gz"), "a_1.tar.gz", repository)
    second = stage_tarball(write(tmp_path, pack(single_python_repo("same")), "b_1.tar.gz"), "b_1.tar.gz", repository)
    assert set(first.names).isdisjoint(second.names)
    assert first.footprint_bytes > 0


def test_torchscript_gets_the_torch_adapter(tmp_path: Path, repository: Path) -> None:
    files = {
        "model_version.txt": b"1\n",
        "scorer/config.pbtxt": python_config("scorer", extra="instance_group [ { kind: KIND_GPU } ]").replace(
            b'backend: "python"', b'platform: "pytorch_libtorch"'
        ),
        "scorer/1/model.pt": b"PK\x03\x04 not really torchscript",
    }
    stage_tarball(write(tmp_path, pack(files), "scorer_1.tar.gz"), "scorer_1.tar.gz", repository)
    scorer = config(repository, "scorer_1.tar.gz")
    assert (scorer.backend, scorer.platform) == ("python", "")
    assert scorer.parameters[MODEL_FILE_PARAMETER].string_value == "model.pt"
    assert [group.kind for group in scorer.instance_group] == [pb.ModelInstanceGroup.KIND_CPU]
    assert (repository / "scorer_1.tar.gz" / "1" / "model.py").read_bytes() == TORCHSCRIPT.read_bytes()


def test_member_names_are_extracted_as_the_scan_named_them(tmp_path: Path, repository: Path) -> None:
    entries = [
        (info(".//simple/config.pbtxt"), python_config("simple")),
        (info("././simple/1/model.py"), PYTHON_MODEL),
        (info("model_version.txt"), b"1\n"),
    ]
    staged = stage_tarball(write(tmp_path, gz(raw_tar(entries)), "simple_1.tar.gz"), "simple_1.tar.gz", repository)
    assert (repository / staged.target / "1" / "model.py").read_bytes() == PYTHON_MODEL
