"""Model monorepos: the repository folder of a changed file, and a folder validated as its tarball
(what `mmedeploy validate --changed` and the pre-commit hook run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.domain.naming import InvalidArtifactName
from chalicelib.domain.validation.findings import Code
from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.validator import validate_tarball
from mmedeploy.model_sources import packaged, repositories_of, repository_of, source_artifact
from testkit.tarballs import idcheck_repo, python_config, single_python_repo, write_tree


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """models/idcheck (an ensemble, with model_version.txt), models/simple (one Python model), tools/."""
    write_tree(tmp_path / "models" / "idcheck", idcheck_repo("3"))
    write_tree(tmp_path / "models" / "simple", single_python_repo(version="2"))
    write_tree(tmp_path / "tools", {"lint.py": b"print('x')\n"})
    return tmp_path


def test_a_changed_file_belongs_to_the_folder_that_holds_model_version_txt(monorepo: Path) -> None:
    member_file = monorepo / "models/idcheck/idcheck_preprocessing/1/model.py"
    assert repository_of(member_file, monorepo) == (monorepo / "models/idcheck").resolve()
    assert (
        repository_of(monorepo / "models/idcheck/tests/approved.json", monorepo)
        == (monorepo / "models/idcheck").resolve()
    )


def test_without_the_marker_the_highest_folder_holding_models_is_taken(tmp_path: Path) -> None:
    files = idcheck_repo()
    del files["model_version.txt"]
    write_tree(tmp_path / "repo" / "fraud", files)
    found = repository_of(tmp_path / "repo/fraud/idcheck_inferencer/config.pbtxt", tmp_path)
    # the member's own folder holds a config, but it is part of the ensemble's repository
    assert found == (tmp_path / "repo/fraud").resolve()


def test_files_outside_any_repository_and_deleted_files(monorepo: Path) -> None:
    assert repository_of(monorepo / "tools/lint.py", monorepo) is None
    deleted = monorepo / "models/simple/simple/1/gone.py"
    assert repository_of(deleted, monorepo) == (monorepo / "models/simple").resolve()
    changed = [monorepo / "tools/lint.py", monorepo / "models/simple/simple/config.pbtxt", deleted]
    assert repositories_of(changed, monorepo) == [(monorepo / "models/simple").resolve()]


def test_never_looks_above_the_top(monorepo: Path) -> None:
    # GIVEN the top is a folder inside a repository WHEN asked THEN nothing above it is considered
    inner = monorepo / "models/idcheck/idcheck_pipeline"
    assert repository_of(inner / "config.pbtxt", inner) == inner.resolve()


def validate_folder(folder: Path) -> ValidationReport:
    with packaged(folder) as tarball, open(tarball, "rb") as handle:
        return validate_tarball(handle, tarball.name)


def test_a_folder_validates_as_its_tarball_would(monorepo: Path) -> None:
    with packaged(monorepo / "models/idcheck") as tarball, open(tarball, "rb") as handle:
        assert tarball.name == "idcheck_3.tar.gz"
        report = validate_tarball(handle, tarball.name)
    assert report.valid, report.findings
    assert report.version == "3"
    # AND nothing was written next to the sources, and the temporary tarball is gone
    assert not list((monorepo / "models/idcheck").glob("*.tar.gz"))
    assert not tarball.exists()


def test_a_broken_config_in_a_folder_is_reported_with_its_code(monorepo: Path) -> None:
    config = monorepo / "models/simple/simple/config.pbtxt"
    config.write_bytes(python_config("simple", max_batch_size=-1))
    report = validate_folder(monorepo / "models/simple")
    assert not report.valid
    assert Code.BATCH_SIZE_INVALID in {f.code for f in report.findings}


def test_a_folder_not_named_as_a_model_is_refused_with_what_to_change(tmp_path: Path) -> None:
    write_tree(tmp_path / "my model", single_python_repo())
    with pytest.raises(InvalidArtifactName, match="model name 'my model'"):
        source_artifact(tmp_path / "my model")
