"""``mmedeploy validate TARBALL --load`` as a user runs it (the console script, a fresh process):
a real tritonserver loads the staged model, so what only Triton decides (``auto_complete_config``,
``initialize``, the environment a model runs in) is seen, and the tarball's cases run against it.

Every run gets its own TMPDIR, so the processes and files of a run are found by that path."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.build_examples import MODELS, build
from mmedeploy.packaging import package
from testkit.tarballs import ECHO_MODEL, echo_repo, pack, python_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MMEDEPLOY = str(Path(sys.executable).with_name("mmedeploy"))
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def with_initialize(body: str) -> bytes:
    """The echo model (OUT = IN) with ``body`` added to its class."""
    return ECHO_MODEL.replace(b"class TritonPythonModel:\n", f"class TritonPythonModel:\n{body}\n".encode())


# The config says IN is FP32; auto_complete_config says INT32, computed when Triton runs it, so no
# static reading of model.py can see the conflict. Triton refuses the load.
CONFLICTING = with_initialize(
    """    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        data_type = "TYPE_" + np.dtype(np.int32).name.upper()
        auto_complete_model_config.add_input({"name": "IN", "data_type": data_type, "dims": [4]})
        return auto_complete_model_config
"""
)
RAISING = with_initialize(
    """    def initialize(self, args):
        raise ValueError("the tokenizer file vocab.txt is missing from the model directory")
"""
)
HANGING = with_initialize(
    """    def initialize(self, args):
        import time
        time.sleep(600)
"""
)


def case(expected: list[float]) -> bytes:
    return json.dumps(
        {
            "inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}],
            "outputs": [{"name": "OUT", "datatype": "FP32", "shape": [1, 4], "data": expected}],
        }
    ).encode()


def echo_tarball(directory: Path, name: str, model: bytes = ECHO_MODEL, expected: list[float] | None = None) -> Path:
    files = echo_repo(name, "1", model)
    files["tests/basic.json"] = case(expected or [1, 2, 3, 4])
    path = directory / f"{name}_1.tar.gz"
    path.write_bytes(pack(files))
    return path


def env_archive(with_numpy: bool, marker: str) -> bytes:
    """A small stand-in for a conda-pack archive, laid out as Triton uses one (``bin/activate``
    sourced, ``lib/pythonX.Y``): its interpreter is this machine's base Python, and its
    site-packages reach this venv's packages (numpy) only when ``with_numpy``. ``marker`` names a
    file in it, so this run's unpacked copy can be told from others'."""
    base = Path(sysconfig.get_config_var("BINDIR"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:

        def add(name: str, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("bin/activate", b'_env="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"\nexport PATH="$_env/bin:$PATH"\n')
        add(f"bin/python{PYTHON}", link=str(base / f"python{PYTHON}"))
        add("bin/python3", link=f"python{PYTHON}")
        add("bin/python", link=f"python{PYTHON}")
        add("pyvenv.cfg", f"home = {base}\ninclude-system-site-packages = false\n".encode())
        packages = site.getsitepackages()[0] + "\n" if with_numpy else "\n"
        add(f"lib/python{PYTHON}/site-packages/tool.pth", packages.encode())
        add(marker)
    return buffer.getvalue()


def env_tarball(directory: Path, name: str, with_numpy: bool, model: bytes = ECHO_MODEL) -> Path:
    files = echo_repo(name, "1", model)
    value = '{ string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" }'
    files[f"{name}/config.pbtxt"] = python_config(
        name, extra=f'parameters: {{ key: "EXECUTION_ENV_PATH", value: {value} }}'
    )
    files[f"{name}/env.tar.gz"] = env_archive(with_numpy, marker=f"marker-{directory.name}-{name}")
    files["tests/basic.json"] = case([1, 2, 3, 4])
    path = directory / f"{name}_1.tar.gz"
    path.write_bytes(pack(files))
    return path


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return {**os.environ, "TMPDIR": str(scratch), "COLUMNS": "200"}


@pytest.fixture
def another_tritonserver(tmp_path: Path) -> Iterator[None]:
    """A process named tritonserver (a copy of sleep): as when the local stack runs beside. Its
    Python backend's /tmp directory cannot be told from this run's, so none is removed by age and
    the load check lets Triton shut down and remove its own."""
    from mmedeploy.local.load_check import _orphaned_backend_directories

    binary = tmp_path / "tritonserver"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", binary)
    started = time.time()
    process = subprocess.Popen([str(binary), "300"])
    try:
        yield
    finally:
        process.kill()
        process.wait()
        # what the load check had to leave, unable to tell it from the other's, is removed here
        for directory in _orphaned_backend_directories(started):
            shutil.rmtree(directory)


def validate(
    tarball: Path, env: dict[str, str], *options: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MMEDEPLOY, "validate", str(tarball), "--load", *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def processes_under(path: str) -> list[str]:
    """Command lines of live processes that mention ``path`` (tritonserver, Python stubs)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if path.encode() in raw and state != "Z":
            found.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return found


def assert_nothing_left(env: dict[str, str], pid: int) -> None:
    assert processes_under(env["TMPDIR"]) == []
    assert list(Path(env["TMPDIR"]).iterdir()) == []  # the staged repository is gone too
    assert list(Path("/dev/shm").glob(f"mmedeploy_load_{pid}_*")) == []


def unpacked_environments(tarball: Path) -> list[Path]:
    """Copies of ``env_tarball``'s environment that Triton's Python backend unpacked (in /tmp, a
    fixed place, not TMPDIR) and left behind."""
    marker = f"marker-{tarball.parent.name}-{tarball.name.rsplit('_', 1)[0]}"
    return list(Path("/tmp").glob(f"python_env_*/*/{marker}"))


def test_the_example_ensemble_loads_and_passes_its_cases(tmp_path: Path, tmpdir_env: dict[str, str]) -> None:
    build()
    tarball = package(MODELS / "idcheck", "idcheck", "1", tmp_path).path
    done = validate(tarball, tmpdir_env, "--json")
    assert done.returncode == 0, done.stderr
    report = as_json(done)
    assert report["valid"] is True
    load = report["load"]
    assert load["passed"] and load["loaded"] and load["load_seconds"] > 0
    assert [(c["name"], c["passed"]) for c in load["cases"]] == [("approved", True), ("declined", True)]
    environments = {e["model"]: e for e in load["environments"]}
    preprocessing = environments["idcheck_preprocessing"]  # ships a stand-in, not a real environment
    assert not preprocessing["in_own_environment"]
    assert "not a relocatable (conda-pack) environment" in preprocessing["reason"]
    assert sys.executable in preprocessing["python"]
    assert any("onnxruntime model served through a Python-backend adapter" in note for note in load["notes"])
    # progress on stderr, one line per long step
    for step in ("staging", "starting Triton", "loading idcheck_1.tar.gz and its 3 member model(s)", "case approved"):
        assert f"--load: {step}" in done.stderr
    assert processes_under(tmpdir_env["TMPDIR"]) == []


def test_an_auto_complete_conflict_passes_static_checks_and_fails_the_load(
    tmp_path: Path, tmpdir_env: dict[str, str]
) -> None:
    tarball = echo_tarball(tmp_path, "conflict", CONFLICTING)
    static = subprocess.run([MMEDEPLOY, "validate", str(tarball)], capture_output=True, text=True)
    assert static.returncode == 0, static.stdout

    done = validate(tarball, tmpdir_env, "--json")
    assert done.returncode == 1
    load = as_json(done)["load"]
    assert not load["loaded"] and not load["passed"] and load["cases"] == []
    assert "configuration expects datatype TYPE_FP32 for input 'IN', model provides TYPE_INT32" in load["error"]
    assert "conflict/1/model.py(" in load["error"]  # the traceback names the file as the tarball does

    human = validate(tarball, tmpdir_env)
    assert human.returncode == 1
    assert "✘ Triton did not load conflict_1.tar.gz" in human.stdout
    assert "model provides TYPE_INT32" in human.stdout


def test_an_initialize_that_raises_fails_with_the_exception(tmp_path: Path, tmpdir_env: dict[str, str]) -> None:
    done = validate(echo_tarball(tmp_path, "raising", RAISING), tmpdir_env, "--json")
    assert done.returncode == 1
    error = as_json(done)["load"]["error"]
    assert "ValueError: the tokenizer file vocab.txt is missing from the model directory" in error
    assert "raising/1/model.py(" in error and "initialize" in error


def test_a_case_whose_expectation_differs_fails_with_the_difference(tmp_path: Path, tmpdir_env: dict[str, str]) -> None:
    tarball = echo_tarball(tmp_path, "differs", expected=[1, 2, 3.5, 4])
    done = validate(tarball, tmpdir_env)
    assert done.returncode == 1
    assert "✘ differs_1.tar.gz loaded but failed its cases" in done.stdout
    assert "output 'OUT'[0, 2] is 3.0, expected 3.5 (off by 0.5" in done.stdout
    load = as_json(validate(tarball, tmpdir_env, "--json"))["load"]
    assert load["loaded"] and not load["passed"]
    assert load["cases"][0]["problems"] == ["output 'OUT'[0, 2] is 3.0, expected 3.5 (off by 0.5, allowed 0.0036)"]


def timed_out(tarball: Path, env: dict[str, str], seconds: int) -> tuple[dict[str, Any], int]:
    """``validate --load --json --timeout seconds`` of a tarball that hangs: its load report and
    the command's pid, once it has exited 1, promptly."""
    started = time.monotonic()
    process = subprocess.Popen(
        [MMEDEPLOY, "validate", str(tarball), "--load", "--json", "--timeout", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert time.monotonic() - started < seconds + 25
    load: dict[str, Any] = json.loads(stdout)["load"]
    assert load["timed_out"]
    return load, process.pid


def test_timeout_stops_triton_and_its_stubs(tmp_path: Path, tmpdir_env: dict[str, str]) -> None:
    load, pid = timed_out(echo_tarball(tmp_path, "hanging", HANGING), tmpdir_env, 4)
    assert "timed out after 4 s while loading hanging_1.tar.gz" in load["error"]
    assert_nothing_left(tmpdir_env, pid)


@pytest.mark.parametrize(
    ("signum", "beside"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["ctrl-c", "sigterm", "ctrl-c-beside-another-tritonserver"],
)
def test_ctrl_c_or_sigterm_stops_triton_and_its_stubs(
    tmp_path: Path, tmpdir_env: dict[str, str], signum: signal.Signals, beside: bool, request: pytest.FixtureRequest
) -> None:
    # SIGTERM: a CI runner cancelling the job
    if beside:
        request.getfixturevalue("another_tritonserver")
    process = subprocess.Popen(
        [MMEDEPLOY, "validate", str(echo_tarball(tmp_path, "hanging", HANGING)), "--load"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tmpdir_env,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until the model is loading, its stub started
        if line.startswith("--load: loading"):
            break
    deadline = time.monotonic() + 30
    while not any("triton_python_backend_stub" in c for c in processes_under(tmpdir_env["TMPDIR"])):
        assert time.monotonic() < deadline, "the stub never started"
        time.sleep(0.2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert_nothing_left(tmpdir_env, process.pid)


def test_a_statically_invalid_tarball_is_never_extracted(tmp_path: Path, tmpdir_env: dict[str, str]) -> None:
    files = echo_repo("broken", "1")
    files["broken/config.pbtxt"] = python_config("broken", max_batch_size=-1)
    tarball = tmp_path / "broken_1.tar.gz"
    tarball.write_bytes(pack(files))
    done = validate(tarball, tmpdir_env, "--json")
    assert done.returncode == 1
    report = as_json(done)
    assert report["valid"] is False and report["load"] is None
    assert "not loaded into Triton: the static checks failed" in done.stderr
    assert list(Path(tmpdir_env["TMPDIR"]).iterdir()) == []


def test_a_model_loads_in_its_own_environment_where_it_is_a_real_one(
    tmp_path: Path, tmpdir_env: dict[str, str]
) -> None:
    tarball = env_tarball(tmp_path, "envok", with_numpy=True)
    good = validate(tarball, tmpdir_env, "--json")
    assert good.returncode == 0, good.stdout
    assert unpacked_environments(tarball) == []  # Triton removed the copy it unpacked
    (environment,) = as_json(good)["load"]["environments"]
    assert environment["in_own_environment"] and environment["python"] == (
        f"Python {PYTHON} from $$TRITON_MODEL_DIRECTORY/env.tar.gz"
    )

    # the same model, its environment without numpy: the missing package fails the load
    bad = env_tarball(tmp_path, "envbad", with_numpy=False)
    missing = validate(bad, tmpdir_env, "--json")
    assert missing.returncode == 1
    assert unpacked_environments(bad) == []  # its stub exited with the failed load
    assert "ModuleNotFoundError: No module named 'numpy'" in as_json(missing)["load"]["error"]
    assert processes_under(tmpdir_env["TMPDIR"]) == []


def test_without_the_local_extra_it_says_what_to_install(
    tmp_path: Path, tmpdir_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmedeploy.cli import main
    from mmedeploy.local.mme import triton

    def missing(self: object) -> None:
        raise triton.TritonUnavailable(
            "the local MME needs Triton from the nvidia-pytriton wheel: install mmedeploy[local]"
        )

    monkeypatch.setattr(triton.TritonInstall, "__init__", missing)
    from rich.console import Console

    err = Console(file=io.StringIO(), width=300)
    code = main(["validate", str(echo_tarball(tmp_path, "echo")), "--load"], out=Console(file=io.StringIO()), err=err)
    assert code == 2
    message = err.file.getvalue()  # type: ignore[attr-defined]
    assert "--load cannot run here" in message and "install mmedeploy[local]" in message


@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside-another-tritonserver"])
def test_a_model_hanging_in_its_own_environment_is_stopped_and_its_unpacked_copy_removed(
    tmp_path: Path, tmpdir_env: dict[str, str], beside: bool, request: pytest.FixtureRequest
) -> None:
    if beside:
        request.getfixturevalue("another_tritonserver")
    # GIVEN a model whose initialize hangs, loaded in its own environment (Triton unpacks it in /tmp)
    tarball = env_tarball(tmp_path, "envhang", with_numpy=True, model=HANGING)
    # THEN it times out promptly, and neither a process nor the unpacked environment is left
    _, pid = timed_out(tarball, tmpdir_env, 6)
    assert_nothing_left(tmpdir_env, pid)
    assert unpacked_environments(tarball) == []


def test_beside_another_tritonserver_triton_shuts_down_and_removes_the_unpacked_environment(
    tmp_path: Path, tmpdir_env: dict[str, str], another_tritonserver: None
) -> None:
    tarball = env_tarball(tmp_path, "envbeside", with_numpy=True)
    done = validate(tarball, tmpdir_env, "--json")
    assert done.returncode == 0, done.stdout
    assert unpacked_environments(tarball) == []
    assert processes_under(tmpdir_env["TMPDIR"]) == []
    assert list(Path(tmpdir_env["TMPDIR"]).iterdir()) == []
