"""The ``mmedeploy`` CLI as a user runs it: real processes, exit codes 0/1/2, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.tarballs import idcheck_repo, pack, single_python_repo, write_tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mmedeploy", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_json_contract_for_the_example_ensemble(tmp_path: Path) -> None:
    tarball = tmp_path / "idcheck_1.tar.gz"
    tarball.write_bytes(pack(idcheck_repo()))
    result = run("validate", tarball, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"valid", "model", "version", "sha256", "size", "findings", "models"} <= report.keys()
    assert (report["valid"], report["model"], report["version"]) == (True, "idcheck", "1")
    served = [m for m in report["models"] if m["served"]]
    assert [m["platform"] for m in served] == ["ensemble"]
    assert {m["name"] for m in report["models"]} >= {"idcheck_preprocessing", "idcheck_inferencer"}
    for model in report["models"]:
        assert {"name", "platform", "backend", "max_batch_size", "inputs", "outputs"} <= model.keys()


def test_validate_invalid_exits_1_with_codes_in_json_and_in_the_report(tmp_path: Path) -> None:
    files = single_python_repo()
    files["simple/config.pbtxt"] = b'name: "simple"\nbackend: "python"\nmax_batch_size: -1\n'
    tarball = tmp_path / "simple_1.tar.gz"
    tarball.write_bytes(pack(files))
    result = run("validate", tarball, "--json")
    assert result.returncode == 1
    finding_codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert "BATCH_SIZE_INVALID" in finding_codes
    human = run("validate", tarball)
    assert human.returncode == 1
    assert "BATCH_SIZE_INVALID" in human.stdout and "invalid" in human.stdout


@pytest.mark.parametrize(
    "content",
    [b"", b"not a tarball at all", b"\x1f\x8b\x08\x00garbage", os.urandom(4096)],
)
def test_validate_garbage_is_a_report_not_a_traceback(tmp_path: Path, content: bytes) -> None:
    tarball = tmp_path / "junk_1.tar.gz"
    tarball.write_bytes(content)
    result = run("validate", tarball, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["valid"] is False
    assert_no_traceback(result)


def test_validate_usage_and_io_errors_exit_2(tmp_path: Path) -> None:
    missing = run("validate", tmp_path / "nope_1.tar.gz")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    directory = run("validate", tmp_path)
    assert directory.returncode == 2 and "directory" in directory.stderr
    no_args = run("validate")
    assert no_args.returncode == 2
    unknown = run("frobnicate")
    assert unknown.returncode == 2
    for result in (missing, directory, no_args, unknown):
        assert_no_traceback(result)


def test_validate_changed_checks_each_touched_model_folder_as_pre_commit_runs_it(tmp_path: Path) -> None:
    # GIVEN a model monorepo: a valid ensemble, a model with a broken config, and other files
    write_tree(
        tmp_path,
        {
            **{f"models/idcheck/{k}": v for k, v in idcheck_repo("3").items()},
            **{f"models/simple/{k}": v for k, v in single_python_repo(version="2").items()},
            "models/simple/simple/config.pbtxt": b'name: "simple"\nbackend: "python"\nmax_batch_size: -1\n',
            "README.md": b"models\n",
        },
    )
    changed = ["models/idcheck/idcheck_preprocessing/1/model.py", "models/idcheck/tests/approved.json", "README.md"]
    sources = sorted(tmp_path.rglob("*"))
    # WHEN the hook's command runs on the files a commit changes, from the repository's root
    ok = run("validate", "--changed", *changed, "--json", cwd=tmp_path)
    # THEN the one folder they belong to is validated, once, as its tarball
    assert ok.returncode == 0, ok.stderr
    [report] = json.loads(ok.stdout)
    assert (report["source"], report["model"], report["version"], report["valid"]) == (
        "models/idcheck",
        "idcheck",
        "3",
        True,
    )
    # AND a broken folder among them fails the hook, its finding named in the report
    both = run("validate", "--changed", *changed, "models/simple/simple/config.pbtxt", cwd=tmp_path)
    assert both.returncode == 1
    assert "models/simple/" in both.stdout and "BATCH_SIZE_INVALID" in both.stdout and "models/idcheck/" in both.stdout
    # AND a folder that cannot be packaged is reported, and the others are still validated
    (tmp_path / "models/idcheck/model_version.txt").write_text("three\n")
    named = run("validate", "--changed", *changed, "models/simple/simple/config.pbtxt", "--json", cwd=tmp_path)
    assert named.returncode == 1 and "models/idcheck: not validated" in named.stderr
    documents = {d["source"]: d for d in json.loads(named.stdout)}
    assert documents["models/idcheck"]["valid"] is False and "three" in documents["models/idcheck"]["error"]
    assert documents["models/simple"]["model"] == "simple"
    (tmp_path / "models/idcheck/model_version.txt").write_text("3\n")
    # AND files outside any model folder validate nothing, successfully
    none = run("validate", "--changed", "README.md", cwd=tmp_path)
    assert none.returncode == 0 and "nothing to validate" in none.stderr
    for result in (ok, both, none):
        assert_no_traceback(result)
    assert sorted(tmp_path.rglob("*")) == sources  # nothing written next to the sources


def test_package_is_deterministic_and_valid(tmp_path: Path) -> None:
    first = run("package", EXAMPLES / "idcheck", "--name", "idcheck", "--version", "1", "-o", tmp_path / "a")
    second = run("package", EXAMPLES / "idcheck", "--name", "idcheck", "--version", "1", "-o", tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    a, b = tmp_path / "a" / "idcheck_1.tar.gz", tmp_path / "b" / "idcheck_1.tar.gz"
    assert a.read_bytes() == b.read_bytes()
    assert run("validate", a).returncode == 0


def test_package_does_not_depend_on_file_times(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLES / "textstats", source)
    first = run("package", source, "--name", "textstats", "--version", "2", "-o", tmp_path / "a")
    os.utime(source / "textstats" / "config.pbtxt", (1_700_000_000, 1_700_000_000))
    second = run("package", source, "--name", "textstats", "--version", "2", "-o", tmp_path / "b")
    assert first.returncode == second.returncode == 0
    assert (tmp_path / "a" / "textstats_2.tar.gz").read_bytes() == (tmp_path / "b" / "textstats_2.tar.gz").read_bytes()


def test_package_writes_model_version_txt(tmp_path: Path) -> None:
    result = run("package", EXAMPLES / "textstats", "--name", "textstats", "--version", "3.1", "-o", tmp_path, "--json")
    assert result.returncode == 0
    import tarfile

    with tarfile.open(tmp_path / "textstats_3.1.tar.gz") as tar:
        handle = tar.extractfile("model_version.txt")
        assert handle is not None and handle.read() == b"3.1\n"


def test_package_refuses_an_invalid_repository_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLES / "textstats", source)
    (source / "textstats" / "1" / "model.py").write_text("class Oops:\n    pass\n")
    out = tmp_path / "out"
    result = run("package", source, "--name", "textstats", "--version", "1", "-o", out)
    assert result.returncode == 1
    assert "PYTHON_MODEL_CLASS_MISSING" in result.stdout
    assert not any(out.iterdir())  # neither the tarball nor a partial file


def test_package_refuses_links_and_bad_names(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLES / "textstats", source)
    (source / "textstats" / "1" / "link.py").symlink_to(source / "textstats" / "1" / "model.py")
    linked = run("package", source, "--name", "textstats", "--version", "1", "-o", tmp_path)
    assert linked.returncode == 2 and "symbolic link" in linked.stderr
    bad_name = run("package", EXAMPLES / "textstats", "--name", "bad name", "--version", "1", "-o", tmp_path)
    assert bad_name.returncode == 2 and "model name" in bad_name.stderr
    bad_version = run("package", EXAMPLES / "textstats", "--name", "ok", "--version", "v1", "-o", tmp_path)
    assert bad_version.returncode == 2 and "version" in bad_version.stderr
    missing = run("package", tmp_path / "nope", "--name", "ok", "--version", "1", "-o", tmp_path)
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    for result in (linked, bad_name, bad_version, missing):
        assert_no_traceback(result)


def test_package_refuses_a_conflicting_model_version_txt(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLES / "textstats", source)
    (source / "model_version.txt").write_text("7\n")
    result = run("package", source, "--name", "textstats", "--version", "1", "-o", tmp_path)
    assert result.returncode == 2 and "--version" in result.stderr


def test_console_script_and_module_are_the_same_entry_point() -> None:
    from mmedeploy.cli import main

    assert main(["--version"]) == 0
    assert main(["validate"]) == 2


def test_packaging_into_the_source_folder_does_not_pack_earlier_outputs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLES / "textstats", source)
    first = run("package", ".", "--name", "textstats", "--version", "1", "-o", ".", cwd=source)
    second = run("package", ".", "--name", "textstats", "--version", "1", "-o", ".", cwd=source)
    assert first.returncode == second.returncode == 0, second.stderr
    import tarfile

    with tarfile.open(source / "textstats_1.tar.gz") as tar:
        assert not [n for n in tar.getnames() if n.endswith(".tar.gz")]
