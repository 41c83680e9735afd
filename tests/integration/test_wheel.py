"""mmedeploy as a user installs it: the wheel built from this tree (through its sdist, as a
release would be), installed with the base dependencies only into a clean virtualenv of the
project's Python, and run from a folder outside the repository: ``--help``, ``--version``,
``package`` and ``validate`` work, the project's files ship in it (so ``up`` and ``demo`` work
outside a clone, with ``[local]``), and nothing of ``[local]`` came with the base.

Builds with the dev venv's setuptools (no build isolation) and installs from pip's cache at the
lock's versions (``-c requirements/lock.txt``): about half a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from mmedeploy.cli.errors import EXIT_INVALID, EXIT_USAGE
from mmedeploy.project_files import CLONE, EXCLUDED

pytestmark = pytest.mark.slow

# what the packager, up and demo read
SHIPPED = (
    "app.py",
    ".chalice/config.json",
    ".chalice/policy-logs.json",
    "infra/template.yaml",
    "requirements.txt",
    "functions/requirements.txt",
    "functions/validate.py",
    "functions/deploy_model.asl.json",
    "examples/build_examples.py",
    "examples/models/idcheck/idcheck_pipeline/config.pbtxt",
    "examples/models/textstats/textstats/1/model.py",
)
VERSION = tomllib.loads((CLONE / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the virtualenv's bin folder) with ``mmedeploy`` installed, base extra only."""
    tmp = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "uv", "build", "--no-build-isolation", "--python", sys.executable, "--out-dir",
         str(tmp / "dist"), str(CLONE)], timeout=300)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("mmedeploy-*.whl")
    # the Makefile's Python 3.12, which made the dev venv
    python = getattr(sys, "_base_executable", sys.executable)
    run([python, "-m", "venv", str(tmp / "venv")])
    bin_dir = tmp / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, str(wheel), "-c", str(CLONE / "requirements" / "lock.txt")], timeout=600)
    return wheel, bin_dir


def run(
    command: list[str], cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | env
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the repository."""
    assert not tmp_path.resolve().is_relative_to(CLONE)
    return tmp_path


def test_help_and_version_work_from_outside_the_repository(installed: tuple[Path, Path], outside: Path) -> None:
    _, bin_dir = installed
    helped = run([str(bin_dir / "mmedeploy"), "--help"], cwd=outside)
    for command in ("validate", "package", "push", "status", "up", "demo"):
        assert command in helped.stdout
    assert run([str(bin_dir / "mmedeploy"), "--version"], cwd=outside).stdout.strip() == f"mmedeploy {VERSION}"


def test_package_and_validate_an_example_from_outside_the_repository(
    installed: tuple[Path, Path], outside: Path
) -> None:
    _, bin_dir = installed
    mmedeploy = str(bin_dir / "mmedeploy")
    # the example as the package ships it (site-packages/mmedeploy/_project/examples)
    site = next((bin_dir.parent / "lib").glob("python3.*/site-packages"))
    example = site / "mmedeploy" / "_project" / "examples" / "models" / "textstats"
    packaged = run([mmedeploy, "package", str(example), "--name", "textstats", "--version", "1", "-o", "out"], outside)
    tarball = outside / "out" / "textstats_1.tar.gz"
    assert tarball.is_file(), packaged.stdout
    validated = run([mmedeploy, "validate", str(tarball.relative_to(outside))], cwd=outside)
    assert "textstats_1.tar.gz is valid" in validated.stdout
    # a broken one is refused with its finding, by the validator's protobuf rules
    broken = outside / "broken_1.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        config = outside / "config.pbtxt"
        config.write_text('name: "broken"\nbackend: "python"\ninput [ { name: "X" data_type: TYPE_NOPE } ]\n')
        tar.add(config, "broken/config.pbtxt")
    refused = subprocess.run([mmedeploy, "validate", broken.name], cwd=outside, capture_output=True, text=True)
    assert refused.returncode == EXIT_INVALID, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_the_base_install_brings_nothing_of_the_local_stack(installed: tuple[Path, Path]) -> None:
    _, bin_dir = installed
    for module in ("moto", "chalice", "pytriton", "numpy", "onnxruntime"):
        found = subprocess.run([str(bin_dir / "python"), "-c", f"import {module}"], capture_output=True, text=True)
        assert found.returncode != 0, f"{module} came with the base install"


def test_the_commands_on_a_stack_run_on_the_base_and_up_names_the_extra_it_needs(
    installed: tuple[Path, Path], outside: Path
) -> None:
    _, bin_dir = installed
    mmedeploy = str(bin_dir / "mmedeploy")
    # no running stack is recorded here (the session's stack, if one runs, would be found from any folder)
    env = {**os.environ, "MMEDEPLOY_USER_STATE_DIR": str(outside / "no-stacks-recorded")}
    for command in (["status", "idcheck"], ["models"], ["approve", "idcheck", "1"], ["rollback", "idcheck"]):
        # every import they need is there: they get as far as finding no stack to act on
        done = subprocess.run([mmedeploy, *command], cwd=outside, capture_output=True, text=True, env=env)
        assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
        assert "no local stack is running" in done.stderr and "internal error" not in done.stderr
    for command in ("up", "demo"):
        done = subprocess.run([mmedeploy, command], cwd=outside, capture_output=True, text=True)
        assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
        assert "needs mmedeploy's [local] extra" in done.stderr and "pipx install" in done.stderr


def test_the_projects_files_ship_and_are_laid_out_in_the_cache_directory(
    installed: tuple[Path, Path], outside: Path
) -> None:
    wheel, bin_dir = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {name.removeprefix("mmedeploy/_project/") for name in names if name.startswith("mmedeploy/_project/")}
    assert set(SHIPPED) <= shipped
    assert "mmedeploy/local/lambdas/runtime-requirements.txt" in names
    assert not any(name.endswith(("model.onnx", "python_env.tar.gz", ".pyc")) for name in names)
    assert "examples/models/idcheck/tests/*" in EXCLUDED
    # what up, demo and the packager read: one tree, with the installed chalicelib beside the app
    cache = outside / "cache"
    script = "from mmedeploy.project_files import project; p = project(); print(p.root, p.build, p.installed)"
    printed = run([str(bin_dir / "python"), "-c", script], cwd=outside, MMEDEPLOY_CACHE_DIR=str(cache)).stdout
    assert printed.split() == [str(cache / "project"), str(cache / "build"), "True"]
    root = cache / "project"
    for wanted in (*SHIPPED, "chalicelib/__init__.py", "chalicelib/composition.py"):
        assert (root / wanted).is_file(), wanted
    # laid out again (a new version, say), a file gone from the package goes; written files stay
    (root / "chalicelib" / "stale.py").write_text("")
    (root / ".chalice" / "deployments").mkdir()
    run([str(bin_dir / "python"), "-c", script], cwd=outside, MMEDEPLOY_CACHE_DIR=str(cache))
    assert not (root / "chalicelib" / "stale.py").exists() and (root / ".chalice" / "deployments").is_dir()
