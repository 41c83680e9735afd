"""``mmedeploy validate --load``: load a statically valid tarball into a real Triton on this
machine and run its smoke-test cases, so what only Triton decides (a Python model's
``auto_complete_config`` and ``initialize``, the adapters' sessions) is seen before the push.

The repository is staged exactly as the local MME stages it (``stage_tarball``: the served model
under the TargetModel name, onnxruntime/torchscript models through their Python adapters) into a
temporary directory; one ``tritonserver`` (explicit model control, as SageMaker runs it) loads the
served model, and each case goes through the warm stage's own request builder and checks
(``chalicelib.domain.warmup``). Every process is stopped on return, timeout, Ctrl-C and SIGTERM:
Triton runs in its own process group and dies with this process; it is let shut down (its stubs
killed first where they may hang), so its Python backend removes what it keeps in /tmp.

Needs the ``[local]`` extra (the nvidia-pytriton wheel's Triton, tritonclient, onnxruntime).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from chalicelib.domain.validation.report import ValidationReport

if TYPE_CHECKING:
    from rich.console import Console

    from chalicelib.domain.validation.repository import ParsedModel
    from chalicelib.domain.validation.validator import Inspection
    from mmedeploy.local.mme.staging import StagedModel
    from mmedeploy.local.mme.triton import TritonInstall, TritonProcess

ENV_PARAMETER = "EXECUTION_ENV_PATH"
MODEL_DIRECTORY_VARIABLE = "$$TRITON_MODEL_DIRECTORY"
STUB_NAME = "triton_python_backend_stub"
LOG_LINES_SHOWN = 20
UNLOAD_WAIT_S = 3.0
UNSETTLED_STOP_S = 3.0  # a Triton whose load hangs waits its exit timeout for it, and longer
# Triton's own log lines: a severity letter, MMDD, time, thread id, source:line] message.
TRITON_LOG_LINE = re.compile(r"^(?P<severity>[IWE])\d{4} [\d:.]+ +\d+ (?P<source>[\w.]+:\d+)\] (?P<message>.*)$")
# What the CPU-only Triton logs for every ensemble and response: not about the user's model.
LOG_NOISE = ("CUDA driver version is insufficient", "failed to allocate pinned system memory")
# Where Triton's Python backend unpacks execution environments (pb_env.cc: mkdtemp, a fixed path).
BACKEND_TMP = re.compile(rb"/tmp/python_env_[A-Za-z0-9]{6}(?=/)")
PYTHON_DIR = re.compile(r"^(?:\./)?lib/python(?P<version>3\.\d+)/")

Progress = Callable[[str], None]


class LoadCheckUnavailable(RuntimeError):
    """This machine cannot run the load check (no Triton, a model no local backend runs)."""


class CaseResult(BaseModel):
    name: str
    passed: bool
    seconds: float
    problems: list[str] = []  # what differs, as the warm stage words it


class ModelEnvironment(BaseModel):
    """Which Python a Python-backend model ran in during the load check."""

    model: str
    execution_env_path: str | None  # as the config names it
    in_own_environment: bool  # True: Triton loaded the model in its EXECUTION_ENV_PATH environment
    python: str  # the version, and where it came from
    reason: str


class LoadReport(BaseModel):
    """What the load check saw; ``passed`` is what the exit code follows."""

    passed: bool
    loaded: bool
    triton: str
    load_seconds: float | None = None
    total_seconds: float
    timed_out: bool = False
    error: str | None = None  # Triton's own error for the load (its HTTP answer), or why it stopped
    triton_log: list[str] = []  # Triton's log lines about a failed load (warnings, errors, tracebacks)
    environments: list[ModelEnvironment] = []
    notes: list[str] = []
    cases: list[CaseResult] = []


class LoadedValidationReport(ValidationReport):
    """``validate --load --json``: the static report plus the load check (None: not run, because
    the static checks failed)."""

    load: LoadReport | None = None


# -- the check ---------------------------------------------------------------------------------------
def load_check(
    tarball: Path, inspection: Inspection, timeout: float, progress: Progress = lambda line: None
) -> LoadReport:
    """Stage ``tarball``, load its served model into a fresh Triton and run its cases.

    ``inspection`` is the static pass's (its cases and served model); call only when it found no
    error. Raises LoadCheckUnavailable where this machine cannot run the check at all.
    """
    from mmedeploy.local.mme.errors import ContainerError
    from mmedeploy.local.mme.staging import stage_tarball
    from mmedeploy.local.mme.triton import TritonInstall, TritonProcess, TritonUnavailable

    started = time.monotonic()
    deadline = started + timeout
    target = tarball.name
    try:
        install = TritonInstall()
    except TritonUnavailable as exc:
        raise LoadCheckUnavailable(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="mmedeploy-load-") as tmp, _sigterm_as_interrupt():
        root = Path(tmp)
        repository = root / "repository"
        repository.mkdir()
        progress(f"staging {target} into {repository}")
        try:
            staged = stage_tarball(tarball, target, repository)
        except ContainerError as exc:
            raise LoadCheckUnavailable(exc.message) from None
        environments = _environments(inspection, staged, repository, install)
        notes = [n for n in staged.notes if ENV_PARAMETER not in n]  # said per model in environments
        backends = install.prepare_backends(root / "backends")
        log_path = root / "triton.log"
        crashed = threading.Event()
        # Our own prefix for the stubs' shared-memory regions, so they can be removed after a kill.
        shm_prefix = f"mmedeploy_load_{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        process = TritonProcess(
            install,
            repository,
            backends,
            log_path,
            on_restart=crashed.set,
            extra_args=(f"--backend-config=python,shm-region-prefix-name={shm_prefix}",),
        )
        progress("starting Triton")
        started_at = time.time()  # wall-clock, as the ctime of what Triton makes
        report: LoadReport | None = None
        try:
            try:
                process.start()
            except TritonUnavailable as exc:
                raise LoadCheckUnavailable(f"{exc}: {' | '.join(_tail(log_path))}") from None
            triton = f"Triton {_server_version(process)} from nvidia-pytriton (Python backend, CPU)"
            report = _load_and_run(process, staged, inspection, deadline, timeout, log_path, crashed, progress)
        finally:
            progress("stopping Triton")
            with _signals_deferred():  # a second Ctrl-C must not leave Triton running
                try:
                    # Nothing hangs once the load and the cases have returned: let Triton shut down.
                    settled = report is not None and not report.timed_out
                    _stop(process, staged.target, settled, started_at)
                finally:
                    _remove_shared_memory(shm_prefix)
    paths = _tarball_paths(staged, inspection, repository, backends)
    error = _readable(report.error, paths) if report.error else None
    return report.model_copy(
        update={
            "error": error,
            "triton_log": _not_in(error or "", [_readable(line, paths) for line in report.triton_log]),
            "triton": triton,
            "environments": environments,
            "notes": notes,
            "total_seconds": round(time.monotonic() - started, 3),
        }
    )


def _load_and_run(
    process: TritonProcess,
    staged: StagedModel,
    inspection: Inspection,
    deadline: float,
    timeout: float,
    log_path: Path,
    crashed: threading.Event,
    progress: Progress,
) -> LoadReport:
    from chalicelib.domain.validation.validator import report_of
    from chalicelib.domain.warmup.checks import check_response
    from chalicelib.domain.warmup.requests import build_warm_requests
    from mmedeploy.local.mme.triton import error_text

    target = staged.target
    base = LoadReport(passed=False, loaded=False, triton="", total_seconds=0.0)
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    members = f" and its {len(staged.members)} member model(s)" if staged.members else ""
    progress(f"loading {target}{members}")
    loading = time.monotonic()
    try:
        status, _, body = process.client.request(
            "POST", f"/v2/repository/models/{target}/load", b"{}", timeout=_remaining(deadline)
        )
    except (TimeoutError, _OutOfTime):
        return base.model_copy(update={"timed_out": True, "error": _timed_out(timeout, f"loading {target}")})
    except OSError as exc:
        return base.model_copy(update={"error": _died(exc, crashed), "triton_log": _log_since(log_path, log_offset)})
    load_seconds = round(time.monotonic() - loading, 3)
    if status != 200:
        return base.model_copy(
            update={
                "load_seconds": load_seconds,
                "error": error_text(body),
                "triton_log": _log_since(log_path, log_offset),
            }
        )
    progress(f"loaded in {load_seconds:.2f} s")
    served = report_of(inspection).served_model
    assert served is not None  # the static checks passed
    cases: list[CaseResult] = []
    result = base.model_copy(update={"loaded": True, "load_seconds": load_seconds})
    for request in build_warm_requests(served, inspection.test_cases):
        progress(f"case {request.name}")
        sent = time.monotonic()
        try:
            status, _, body = process.client.request(
                "POST",
                f"/v2/models/{target}/infer",
                json.dumps(request.body).encode(),
                {"Content-Type": "application/json"},
                timeout=_remaining(deadline),
            )
        except (TimeoutError, _OutOfTime):
            what = f"running case {request.name}"
            return result.model_copy(update={"cases": cases, "timed_out": True, "error": _timed_out(timeout, what)})
        except OSError as exc:
            return result.model_copy(
                update={"cases": cases, "error": _died(exc, crashed), "triton_log": _log_since(log_path, log_offset)}
            )
        seconds = round(time.monotonic() - sent, 3)
        problems = check_response(served, request, _answer(status, body))
        cases.append(CaseResult(name=request.name, passed=not problems, seconds=seconds, problems=problems))
        progress(f"case {request.name}: {'passed' if not problems else 'FAILED'} ({seconds * 1000:.0f} ms)")
    return result.model_copy(update={"cases": cases, "passed": all(c.passed for c in cases)})


def _stop(process: TritonProcess, target: str, settled: bool, started_at: float) -> None:
    """Stop Triton and its Python stubs, and remove what Triton's Python backend keeps in /tmp
    (``python_env_XXXXXX``, a fixed place, not TMPDIR: the unpacked execution environments), which
    it removes only on its own shutdown. With no other tritonserver on this machine, the ones made
    since ``started_at`` (time.time()) are this one's: Triton is killed as a group at once and
    they are removed here, as are those its stubs' environments name. Otherwise a
    ``settled`` Triton (the load and the cases returned) unloads the model and shuts down, about a
    second; one that may hang (a timeout, Ctrl-C) has its stubs killed first and is killed after
    UNSETTLED_STOP_S. The stubs' shared memory is removed by the caller."""
    left_behind = _environment_directories(process.pid)
    alone = not _other_tritonservers(process.pid)
    try:
        if settled and not alone:
            _unload(process, target)
        elif not alone:
            _kill_stubs(process.pid)
        process.client.close()  # Triton's shutdown waits for open connections
    finally:
        if alone:
            process.stop(wait_s=0)
            left_behind |= _orphaned_backend_directories(started_at)
        elif settled:
            process.stop()
        else:
            process.stop(wait_s=UNSETTLED_STOP_S)
        for directory in left_behind:
            shutil.rmtree(directory, ignore_errors=True)


def _kill_stubs(group: int | None) -> None:
    """SIGKILL Triton's stubs (its process group but Triton itself): a load or a request they
    hold then fails at once, and Triton's own shutdown is not kept waiting for them."""
    for pid in _group_members(group):
        if pid != group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _group_members(group: int | None) -> list[int]:
    """The live processes of a process group (Triton's, which started its own session)."""
    members: list[int] = []
    if group is None:
        return members
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if len(stat) > 2 and stat[2] == str(group):  # the fields after the name: state, ppid, pgrp
            members.append(int(pid))
    return members


def _environment_directories(group: int | None) -> set[Path]:
    """The Python backend's /tmp directories that the environments of Triton's stubs name (those
    of models running in their own EXECUTION_ENV_PATH environment)."""
    found: set[Path] = set()
    for pid in _group_members(group):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        found.update(Path(match.group(0).decode()) for match in BACKEND_TMP.finditer(environ))
    return found


def _other_tritonservers(ours: int | None) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if int(pid) != ours and Path(f"/proc/{pid}/comm").read_text().strip() == "tritonserver":
                return True
    return False


def _orphaned_backend_directories(since: float) -> set[Path]:
    """The Python backend's /tmp directories made since ``since`` (a stub that exited, after a
    failed load, names its own in no environment any more); none if a tritonserver runs now (one
    may be its own: it is looked for after they are listed)."""
    found: set[Path] = set()
    for directory in Path("/tmp").glob("python_env_*"):
        with contextlib.suppress(OSError):
            if directory.stat().st_ctime >= since:
                found.add(directory)
    return set() if _other_tritonservers(None) else found


def _remove_shared_memory(prefix: str) -> None:
    for region in Path("/dev/shm").glob(f"{prefix}*"):
        region.unlink(missing_ok=True)


def _unload(process: TritonProcess, target: str) -> None:
    """Unload before SIGTERM: Triton's shutdown checks its live models once a second, so models
    still loaded then cost a second; an explicit unload settles in a fraction of it."""
    if process.pid is None:
        return
    try:
        process.client.request(
            "POST", f"/v2/repository/models/{target}/unload", b'{"parameters": {"unload_dependents": true}}', timeout=2
        )
        give_up = time.monotonic() + UNLOAD_WAIT_S
        while time.monotonic() < give_up:
            _, _, body = process.client.request("POST", "/v2/repository/index", b"{}", timeout=2)
            if not any(model.get("state") in ("READY", "LOADING", "UNLOADING") for model in json.loads(body)):
                return
            time.sleep(0.05)
    except (OSError, ValueError):
        return  # stopping kills it anyway


class _OutOfTime(Exception):
    pass


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _OutOfTime
    return left


def _timed_out(timeout: float, what: str) -> str:
    return f"timed out after {timeout:g} s while {what} (--timeout); Triton and its Python stubs were stopped"


def _died(exc: OSError, crashed: threading.Event) -> str:
    if crashed.is_set():
        return f"tritonserver exited ({exc}); its log follows"
    return f"Triton stopped answering ({exc}); its log follows"


def _answer(status: int, body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return {"error": f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"}
    if status != 200 and "error" not in answer:
        answer["error"] = f"HTTP {status}"
    return answer


# -- Triton's log --------------------------------------------------------------------------------
def _log_since(log_path: Path, offset: int) -> list[str]:
    """Triton's warnings and errors after ``offset``, with the Python tracebacks the stubs print
    (untagged lines); its info lines only say what it did."""
    try:
        with log_path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return []
    kept: list[str] = []
    for line in text.splitlines():
        match = TRITON_LOG_LINE.match(line)
        if match is None:
            if line.strip():
                kept.append(line.rstrip())
        elif match["severity"] in "WE" and not any(noise in line for noise in LOG_NOISE):
            kept.append(f"{match['severity']} {match['source']}] {match['message']}")
    return kept[-LOG_LINES_SHOWN:]


def _tarball_paths(staged: StagedModel, inspection: Inspection, repository: Path, backends: Path) -> dict[str, str]:
    """Staged (temporary) path -> how the user knows it: the model's directory in the tarball."""
    paths = {f"{backends}/python/": "<Triton's python backend>/"}
    for model in inspection.repository.models.values():
        paths[f"{repository}/{_staged_name(staged, model)}/"] = f"{model.directory}/" if model.directory else ""
    return paths


def _readable(text: str, paths: dict[str, str]) -> str:
    for staged, original in sorted(paths.items(), key=lambda item: -len(item[0])):
        text = text.replace(staged, original)
    return text.rstrip().removesuffix(";").rstrip()  # Triton ends a load error with ";"


def _not_in(error: str, lines: list[str]) -> list[str]:
    """The log lines that add to ``error``: Triton logs the same exception and traceback too."""
    known = {line.strip() for line in error.splitlines() if line.strip()}
    head = error.splitlines()[0].rsplit("Internal: ", 1)[-1][:200] if error else ""
    return [line for line in lines if line.strip() not in known and not (head and head in line)]


def _tail(log_path: Path, lines: int = 5) -> list[str]:
    try:
        return log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _server_version(process: TritonProcess) -> str:
    """What the running server says it is (GET /v2: {"name": "triton", "version": "2.51.0"})."""
    try:
        _, _, body = process.client.request("GET", "/v2", timeout=5)
        return str(json.loads(body)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "(version unknown)"


# -- where each Python model runs ----------------------------------------------------------------
def _environments(
    inspection: Inspection, staged: StagedModel, repository: Path, install: TritonInstall
) -> list[ModelEnvironment]:
    """For each Python model: load it in its EXECUTION_ENV_PATH environment where that is a real
    relocatable environment whose Python has a stub in the wheel (so a package missing from it
    fails the load, as it would on the endpoint); else say it runs in this tool's Python."""
    return [
        _environment(model, repository / _staged_name(staged, model), install)
        for model in inspection.repository.models.values()
        if model.backend == "python"
    ]


def _environment(model: ParsedModel, staged_dir: Path, install: TritonInstall) -> ModelEnvironment:
    parameter = model.config.parameters.get(ENV_PARAMETER)
    configured = parameter.string_value if parameter is not None else ""
    version, why_not = _relocatable_python(_resolve(configured, staged_dir), staged_dir) if configured else (None, "")
    stub = install.stub.parent.parent / version / STUB_NAME if version else None
    if stub is not None and not stub.exists():
        why_not = f"its Python {version} has no stub in nvidia-pytriton ({_stub_versions(install)})"
    if stub is None or why_not:
        return ModelEnvironment(
            model=model.directory or model.name,
            execution_env_path=configured or None,
            in_own_environment=False,
            python=f"Python {platform.python_version()} at {sys.executable}",
            reason=why_not or "no EXECUTION_ENV_PATH",
        )
    _use_environment(staged_dir, configured, stub)
    return ModelEnvironment(
        model=model.directory or model.name,
        execution_env_path=configured,
        in_own_environment=True,
        python=f"Python {version} from {configured}",
        reason="a relocatable environment with a matching Triton stub: Triton loaded the model in it",
    )


def _staged_name(staged: StagedModel, model: ParsedModel) -> str:
    """The model's name in the staged repository (as ``stage_tarball`` names it)."""
    from mmedeploy.local.mme.staging import MEMBER_SEPARATOR

    return staged.target if model.served else f"{staged.target}{MEMBER_SEPARATOR}{model.directory}"


def _resolve(configured: str, staged_dir: Path) -> Path | None:
    if not configured.startswith(MODEL_DIRECTORY_VARIABLE):
        return None  # an absolute path on the endpoint's image: not on this machine
    return staged_dir / configured[len(MODEL_DIRECTORY_VARIABLE) :].lstrip("/")


def _relocatable_python(archive: Path | None, staged_dir: Path) -> tuple[str | None, str]:
    """The Python version (``3.12``) of a conda-pack style archive, or why it is not one."""
    if archive is None:
        return None, "it names a path outside the model directory, which exists only on the endpoint's image"
    if not archive.is_file():
        return None, f"{archive.relative_to(staged_dir)} is not in the staged model"
    activate, version = False, None
    try:
        with tarfile.open(archive, "r:*") as env:
            for member in env:
                name = member.name.removeprefix("./")
                activate = activate or name == "bin/activate"
                match = PYTHON_DIR.match(name)
                version = version or (match["version"] if match else None)
                if activate and version:
                    return version, ""
    except (tarfile.TarError, OSError, EOFError) as exc:
        return None, f"it is not a readable tar archive ({exc})"
    missing = [what for what, ok in (("bin/activate", activate), ("lib/python3.X/", version)) if not ok]
    return None, f"it is not a relocatable (conda-pack) environment: it has no {' and no '.join(missing)}"


def _stub_versions(install: TritonInstall) -> str:
    shipped = sorted(p.name for p in install.stub.parent.parent.iterdir() if (p / STUB_NAME).exists())
    return "stubs for Python " + ", ".join(shipped)


def _use_environment(staged_dir: Path, configured: str, stub: Path) -> None:
    """Put EXECUTION_ENV_PATH back into the staged config (staging drops it) and the environment's
    stub into the model directory, where Triton's Python backend looks for one first."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    config_path = staged_dir / "config.pbtxt"
    config = text_format.Parse(config_path.read_text(), pb.ModelConfig())
    config.parameters[ENV_PARAMETER].string_value = configured
    config_path.write_text(text_format.MessageToString(config))
    shutil.copy2(stub, staged_dir / STUB_NAME)


# -- signals -------------------------------------------------------------------------------------
@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI runner cancelling the job) unwinds like Ctrl-C, so Triton is stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while Triton is being stopped (bounded: a few seconds), then act on
    one that came: it unwinds as KeyboardInterrupt once nothing is left running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, remember) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt


# -- the human-readable form -----------------------------------------------------------------------
def render_load(load: LoadReport, filename: str, console: Console) -> None:
    """The load check under the static report: the headline, where each Python model ran, Triton's
    own messages for a failed load, then one line per case."""
    from rich.text import Text

    took = f"{load.load_seconds:.2f} s" if load.load_seconds is not None else "-"
    if load.passed:
        headline = Text(f"✔ {filename} loads and passes its cases", style="bold green")
    elif load.loaded:
        headline = Text(f"✘ {filename} loaded but failed its cases", style="bold red")
    elif load.timed_out:
        headline = Text(f"✘ {filename} did not load in time", style="bold red")
    else:
        headline = Text(f"✘ Triton did not load {filename}", style="bold red")
    passed = sum(c.passed for c in load.cases)
    headline.append(
        f"  (load {took}, {passed} of {len(load.cases)} case(s) passed, {load.total_seconds:.1f} s in all)", style="dim"
    )
    console.print(headline)
    console.print(f"  {load.triton}", style="dim", markup=False, highlight=False)
    for environment in load.environments:
        where = "its own environment" if environment.in_own_environment else "this tool's environment"
        line = f"  {environment.model}: {'loaded' if load.loaded else 'loading'} in {where}, {environment.python}"
        if environment.execution_env_path and not environment.in_own_environment:
            line += f"; EXECUTION_ENV_PATH {environment.execution_env_path} not used: {environment.reason}"
        console.print(line, markup=False, highlight=False)
    for note in load.notes:
        console.print(f"  {note}", style="dim", markup=False, highlight=False)
    if load.error:
        console.print(Text("  Triton: ", style="bold").append(load.error, style="red"))
    if load.triton_log:
        console.print("  Triton's log:", style="bold")
        for line in load.triton_log:
            console.print(f"    {line}", markup=False, highlight=False)
    for case in load.cases:
        mark = Text("  ✔ " if case.passed else "  ✘ ", style="green" if case.passed else "red")
        mark.append(f"case {case.name}", style="bold").append(f" ({case.seconds * 1000:.0f} ms)", style="dim")
        console.print(mark)
        for problem in case.problems:
            console.print(f"      {problem}", markup=False, highlight=False)
