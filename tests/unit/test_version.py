"""One version, pyproject.toml's: ``mmedeploy --version``, ``mmedeploy.__version__``, and what the
deployed API answers on ``GET /v2`` (the Lambda zips carry mmedeploy's ``.dist-info``)."""

from __future__ import annotations

import importlib.metadata
import tomllib
import zipfile
from pathlib import Path

import pytest

import mmedeploy
from mmedeploy.cli import main
from mmedeploy.deploy import package
from mmedeploy.project_files import CLONE, distribution_metadata, project, version

VERSION = tomllib.loads((CLONE / "pyproject.toml").read_text())["project"]["version"]


def test_the_version_is_pyprojects() -> None:
    assert version() == mmedeploy.__version__ == VERSION


def test_mmedeploy_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mmedeploy {VERSION}"


def test_the_dist_info_the_zips_carry_answers_the_version(tmp_path: Path) -> None:
    for name, data in distribution_metadata().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (found,) = importlib.metadata.distributions(name="mmedeploy", path=[str(tmp_path)])
    assert found.version == VERSION


@pytest.mark.xdist_group("staging_package")
def test_each_lambda_zip_carries_it_so_get_v2_reports_it(staging_package: package.BuildResult, tmp_path: Path) -> None:
    # app.py's GET /v2 answers importlib.metadata.version("mmedeploy") from the function's code
    for artifact in staging_package.artifacts:
        with zipfile.ZipFile(artifact.path) as archive:
            infos = [n for n in archive.namelist() if n.startswith("mmedeploy-") and ".dist-info/" in n]
            assert infos == [f"mmedeploy-{VERSION}.dist-info/METADATA"], artifact.name
            archive.extract(infos[0], tmp_path / artifact.name)
        (found,) = importlib.metadata.distributions(name="mmedeploy", path=[str(tmp_path / artifact.name)])
        assert found.version == VERSION


def test_in_a_clone_the_project_is_the_clone() -> None:
    found = project()
    assert not found.installed
    assert found.root == CLONE and found.build == CLONE / "build"
    assert found.template == CLONE / "infra" / "template.yaml"
