"""One Lambda execution environment: a process of AWS's runtime client (``awslambdaric``) running
the function's handler from its unzipped code, with its own Runtime API, one invocation at a time.

What Lambda does around the runtime is done here: the environment variables Lambda sets, the
Timeout (the process is killed and the invocation fails ``Sandbox.Timedout``), init errors and a
runtime that exits (``Runtime.ExitError``) reported in Lambda's error shape, and the platform's
``START``/``END``/``REPORT`` log lines with the process's peak memory.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmedeploy.local.lambdas.function import FunctionConfig, Invocation, error_payload
from mmedeploy.local.lambdas.logs import LogStream
from mmedeploy.local.lambdas.runtime_api import Offered, RuntimeApi

log = logging.getLogger("mmedeploy.local.lambda")

# Lambda gives an on-demand init 10 s before it retries it inside the invocation's own timeout.
INIT_TIMEOUT_S = 10.0
UNHANDLED = "Unhandled"


@dataclass(frozen=True)
class Launch:
    """How this machine starts a runtime process: the interpreter of the function's Runtime, the
    folder holding the runtime client (Lambda's /var/runtime), and what the platform adds to every
    environment (the local endpoints)."""

    python: str
    runtime_dir: Path
    platform_environment: dict[str, str]
    region: str


class Sandbox:
    def __init__(
        self,
        function: FunctionConfig,
        task_root: Path,
        launch: Launch,
        credentials: dict[str, str],
        logs: Callable[[str], LogStream],
    ) -> None:
        self.function = function
        self.id = uuid.uuid4().hex
        self._task_root = task_root
        self._launch = launch
        self._credentials = credentials
        self._stream_name = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{self.id}"
        self._log = logs(self._stream_name)
        self._process: subprocess.Popen[bytes] | None = None
        self._api: RuntimeApi | None = None
        self._rss: PeakRss | None = None
        self._started_at = 0.0
        self.peak_rss_mb = 0
        self._warned_memory = False

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None and not self._api_ended

    @property
    def _api_ended(self) -> bool:
        return self._api is None or self._api.ended

    def environment(self, runtime_api: str) -> dict[str, str]:
        """Exactly what a function's process sees: the function's Environment, what Lambda sets,
        the local endpoints. Nothing of the developer's shell or virtualenv."""
        function = self.function
        env = {
            **function.environment,
            **self._launch.platform_environment,
            **self._credentials,
            "AWS_REGION": self._launch.region,
            "AWS_DEFAULT_REGION": self._launch.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self._stream_name,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "_HANDLER": function.handler,
            "LAMBDA_TASK_ROOT": str(self._task_root),
            "LAMBDA_RUNTIME_DIR": str(self._launch.runtime_dir),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": f"{self._task_root}:{self._launch.runtime_dir}",
        }
        if function.tracing_active:
            env.update({"AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"})
        return env

    def _start(self) -> None:
        self._api = RuntimeApi()
        # -S: no site-packages, as Lambda's task root and runtime folder are plain path entries
        command = [self._launch.python, "-S", "-m", "awslambdaric", self.function.handler]
        self._started_at = time.monotonic()
        self._process = subprocess.Popen(
            command,
            cwd=self._task_root,
            env=self.environment(self._api.address),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills whatever it started too
        )
        self._rss = PeakRss(self._process.pid)
        threading.Thread(
            target=self._pump_output, args=(self._process, self._api), daemon=True, name=f"lambda-log-{self.id[:8]}"
        ).start()

    def _pump_output(self, process: subprocess.Popen[bytes], api: RuntimeApi) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._log.write(line.decode("utf-8", "replace").rstrip("\n"))
        process.wait()
        api.process_ended()

    def invoke(self, payload: bytes) -> Invocation:
        request_id = str(uuid.uuid4())
        cold = not self.alive
        if cold:
            self.stop()
            self._start()
        assert self._api is not None and self._process is not None
        api, function = self._api, self.function
        timeout = float(function.timeout_s)
        self._log.write(f"START RequestId: {request_id} Version: $LATEST")
        offered_at = time.monotonic()
        exchanged = api.exchange(
            Offered(
                request_id,
                payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + timeout) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": function.arn,
                    "Lambda-Runtime-Trace-Id": _trace_id(),
                },
            ),
            fetch_timeout=max(INIT_TIMEOUT_S, timeout) if cold else timeout,
            answer_timeout=timeout,
        )
        fetched_at, answer = exchanged.fetched_at, exchanged.answer
        ended_at = time.monotonic()
        init_ms = ((fetched_at or ended_at) - self._started_at) * 1000 if cold else None
        duration_ms = (ended_at - (fetched_at or offered_at)) * 1000
        if answer is not None and exchanged.init_failed:
            result = Invocation(request_id=request_id, payload=answer.payload, function_error=UNHANDLED)
        elif answer is not None:
            function_error = UNHANDLED if answer.error_type else None
            result = Invocation(request_id=request_id, payload=answer.payload, function_error=function_error)
        elif api.ended:
            result = Invocation(
                request_id=request_id,
                payload=error_payload(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited {_exit_reason(self._process)}",
                ),
                function_error=UNHANDLED,
            )
        else:
            self.stop()
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            self._log.write(f"{_timestamp()} {message}")
            result = Invocation(
                request_id=request_id, payload=error_payload("Sandbox.Timedout", message), function_error=UNHANDLED
            )
        self._report(request_id, duration_ms, init_ms)
        return result

    def _report(self, request_id: str, duration_ms: float, init_ms: float | None) -> None:
        if self._rss is not None:
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss.read_mb())
        memory = self.function.memory_mb
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {self.peak_rss_mb} MB"
        )
        if init_ms is not None:
            line += f"\tInit Duration: {init_ms:.2f} ms"
        self._log.write(f"END RequestId: {request_id}")
        self._log.write(line)
        if self.peak_rss_mb > memory and not self._warned_memory:
            self._warned_memory = True
            warning = (
                f"function {self.function.name} used {self.peak_rss_mb} MB, over its MemorySize {memory} MB: "
                "on AWS this invocation would fail with Runtime.OutOfMemory; raise MemorySize in the template"
            )
            self._log.write(f"WARNING {warning}")
            log.warning(warning)

    def stop(self) -> None:
        process, api = self._process, self._api
        self._process = None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if api is not None:
            api.close()
            self._api = None
        if self._rss is not None:
            self._rss.close()
            self._rss = None


class PeakRss:
    """A process's peak resident set (VmHWM), what Lambda reports as Max Memory Used. The status
    file stays open: it is read on every invocation, and reopening it cost more than reading it."""

    def __init__(self, pid: int) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:  # no procfs (macOS): no figure
            self._fd = None

    def read_mb(self) -> int:
        if self._fd is None:
            return 0
        try:
            status = os.pread(self._fd, 8192, 0)
            start = status.index(b"VmHWM:")
            return int(status[start + 6 : status.index(b"kB", start)]) // 1024
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _exit_reason(process: subprocess.Popen[bytes]) -> str:
    code = process.wait()
    if code < 0:
        return f"with error: signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
    return f"with error: exit status {code}" if code else "without providing a reason"


def _trace_id() -> str:
    # X-Ray's format; Sampled=0, so the SDK records nothing and sends nothing locally
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
