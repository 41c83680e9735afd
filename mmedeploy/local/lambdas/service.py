"""The local Lambda service: for each function, a pool of execution environments (``Sandbox``)
running the code Lambda holds for it.

As on AWS: a warm environment serves one invocation at a time and is reused; concurrent
invocations start more, up to a bound (further ones wait, as throttled ones would be retried); an
environment whose function's code or configuration changed is retired.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from mmedeploy.local.lambdas.function import FunctionConfig, Invocation, error_payload
from mmedeploy.local.lambdas.logs import FunctionLogs
from mmedeploy.local.lambdas.sandbox import UNHANDLED, Launch, Sandbox

log = logging.getLogger("mmedeploy.local.lambda")

# What Lambda's managed Python runtime holds in /var/runtime: AWS's runtime interface client, and
# the AWS SDK (Lambda's boto3 is AWS's choice of version; ours is the lock's, as requirements.txt's),
# each with what it needs, pinned: generated from requirements/lock.txt by make lock.
# A function's own packages come first on its path, as on AWS.
RUNTIME_REQUIREMENTS = Path(__file__).with_name("runtime-requirements.txt")
RUNTIME_PACKAGES = tuple(
    line.strip() for line in RUNTIME_REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")
)
DEFAULT_MAX_ENVIRONMENTS = 4
LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"

Credentials = Callable[[FunctionConfig], dict[str, str]]


class RuntimeClientMissing(RuntimeError):
    pass


def ensure_runtime_client(folder: Path, python: str = sys.executable) -> Path:
    """``folder`` holding :data:`RUNTIME_PACKAGES` (installed once, from PyPI or pip's cache): the
    local /var/runtime. Nothing else of the virtualenv is on a function's path."""
    marker = folder / ".installed"
    wanted = " ".join(RUNTIME_PACKAGES)
    if marker.exists() and marker.read_text().strip() == wanted:
        return folder
    partial = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    command += ["--target", str(partial)]
    done = subprocess.run([*command, *RUNTIME_PACKAGES], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
        raise RuntimeClientMissing(
            f"could not install {wanted} (what Lambda's Python runtime provides) into {folder}: "
            f"{lines[-1] if lines else 'pip failed'}"
        )
    (partial / ".installed").write_text(wanted)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        partial.rename(folder)
    except OSError:  # another stack installed it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return folder


class _Pool:
    def __init__(self) -> None:
        self.idle: list[Sandbox] = []
        self.count = 0
        self.ready = threading.Condition()
        self.cold_starts = 0
        self.invocations = 0


class LambdaService:
    def __init__(
        self,
        code_dir: Path,
        launch: Launch,
        credentials: Credentials,
        logs: FunctionLogs,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
    ) -> None:
        self._code_dir = code_dir
        self._launch = launch
        self._credentials = credentials
        self._logs = logs
        self._max = max_environments
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._code_lock = threading.Lock()

    def invoke(self, function: FunctionConfig, code: Callable[[], bytes], payload: bytes) -> Invocation:
        if function.runtime != LOCAL_RUNTIME:
            return Invocation(
                request_id=str(uuid.uuid4()),
                payload=error_payload(
                    "Runtime.InvalidRuntime",
                    f"the local stack runs {LOCAL_RUNTIME}, the one Python of every function; "
                    f"{function.name} has Runtime {function.runtime}",
                ),
                function_error=UNHANDLED,
            )
        try:
            task_root = self._task_root(function, code)
        except (zipfile.BadZipFile, OSError) as exc:
            return Invocation(
                request_id=str(uuid.uuid4()),
                payload=error_payload("Runtime.InvalidEntrypoint", f"cannot unpack {function.name}'s code: {exc}"),
                function_error=UNHANDLED,
            )
        sandbox, pool = self._acquire(function, task_root)
        try:
            return sandbox.invoke(payload)
        finally:
            self._release(pool, sandbox)

    def prepare(self, function: FunctionConfig, code: Callable[[], bytes]) -> None:
        """Unzip the function's code ahead of its first invocation (``up`` does it in the
        background, so a cold start is what Lambda's is: start the runtime, import the handler)."""
        self._task_root(function, code)

    def _task_root(self, function: FunctionConfig, code: Callable[[], bytes]) -> Path:
        """The function's code unzipped once per distinct package (Lambda's /var/task), kept
        between stacks: the folder is named by the package's SHA-256."""
        folder = self._code_dir / hashlib.sha256(function.code_sha256.encode()).hexdigest()[:24]
        with self._code_lock:
            if not folder.is_dir():
                self._code_dir.mkdir(parents=True, exist_ok=True)
                partial = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
                with zipfile.ZipFile(io.BytesIO(code())) as archive:
                    archive.extractall(partial)
                try:
                    partial.rename(folder)
                except OSError:  # another stack unzipped the same package meanwhile
                    shutil.rmtree(partial, ignore_errors=True)
        return folder

    def _acquire(self, function: FunctionConfig, task_root: Path) -> tuple[Sandbox, _Pool]:
        with self._lock:
            pool = self._pools.setdefault(function.name, _Pool())
        with pool.ready:
            while True:
                # retire environments of an older configuration or code
                for stale in [s for s in pool.idle if s.function.digest != function.digest]:
                    pool.idle.remove(stale)
                    pool.count -= 1
                    stale.stop()
                pool.invocations += 1
                if pool.idle:
                    return pool.idle.pop(), pool
                if pool.count < self._max:
                    pool.count += 1
                    pool.cold_starts += 1
                    break
                pool.invocations -= 1
                pool.ready.wait()
        logs = self._logs
        sandbox = Sandbox(
            function,
            task_root,
            self._launch,
            self._credentials(function),
            lambda stream: logs.stream(function.name, stream),
        )
        return sandbox, pool

    def _release(self, pool: _Pool, sandbox: Sandbox) -> None:
        with pool.ready:
            if sandbox.alive:
                pool.idle.append(sandbox)
            else:
                sandbox.stop()
                pool.count -= 1
            pool.ready.notify()

    def environments(self) -> dict[str, dict[str, int]]:
        """Per function: environments now, cold starts and invocations so far, peak RSS (MB)."""
        with self._lock:
            pools = dict(self._pools)
        return {
            name: {
                "environments": pool.count,
                "cold_starts": pool.cold_starts,
                "invocations": pool.invocations,
                "peak_rss_mb": max((s.peak_rss_mb for s in pool.idle), default=0),
            }
            for name, pool in pools.items()
        }

    def stop(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            with pool.ready:
                idle, pool.idle = pool.idle, []
                pool.count -= len(idle)
            for sandbox in idle:
                sandbox.stop()
        self._logs.stop()
