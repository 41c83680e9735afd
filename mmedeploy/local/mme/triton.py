"""A real Triton Inference Server for one local endpoint: found in the ``nvidia-pytriton`` wheel,
started in explicit model-control mode (as SageMaker's Triton container runs it), health-checked,
restarted if it dies, stopped with the stack.

Facts this relies on are in ``docs/local-stack.md`` ("Verified facts for the local MME": library
path, Python stub, PATH).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mmedeploy.local.mme")

HEALTH_INTERVAL_S = 1.0
HEALTH_FAILURES_BEFORE_RESTART = 5
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 5


class TritonUnavailable(RuntimeError):
    """The bundled Triton cannot be found or does not start."""


class TritonInstall:
    """Where the wheel keeps the server, its libraries and the Python backend."""

    def __init__(self) -> None:
        try:
            import pytriton
        except ImportError:
            raise TritonUnavailable(
                "the local MME needs Triton from the nvidia-pytriton wheel: install mmedeploy[local] "
                "(pipx install 'mmedeploy[local]'), or in a clone run 'make examples'"
            ) from None
        package = Path(pytriton.__file__).parent
        self.binary = package / "tritonserver" / "bin" / "tritonserver"
        self.libraries = package.parent / "nvidia_pytriton.libs"
        self.python_backend = package / "tritonserver" / "backends" / "python"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        self.stub = package / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub"
        for path in (self.binary, self.libraries, self.python_backend, self.stub):
            if not path.exists():
                raise TritonUnavailable(f"nvidia-pytriton is incomplete or not for Python {version}: {path} is missing")

    def prepare_backends(self, directory: Path) -> Path:
        """A backend directory whose ``python/`` holds the stub for the running Python."""
        python = directory / "python"
        if not (python / "triton_python_backend_stub").exists():
            partial = directory / "python.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(self.python_backend, partial)
            shutil.copy2(self.stub, partial / "triton_python_backend_stub")
            shutil.rmtree(python, ignore_errors=True)
            os.replace(partial, python)
        return directory


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()  # looked up here: the child of a threaded process should only call it
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in the child: Linux sends SIGTERM when the supervising thread exits (or the stack
    dies), so a killed stack leaves no Triton behind."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class TritonClient:
    """Triton's HTTP/REST API over one keep-alive connection per calling thread.

    A minimal HTTP/1.1 client rather than http.client: the invoke path forwards every request
    through it, and http.client's header parsing alone costs about as much as the rest of the
    proxy. Triton always answers with Content-Length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[tuple[socket.socket, Any]] = set()  # every thread's connection, for close_all()

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 600.0,
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        while True:
            sock, reader, reused = self._connection(timeout)
            try:
                sock.sendall(message)
                return _read_response(reader)
            except _NothingReceived:
                self._close()
                # Triton closed a kept-alive connection while it idled: the request never reached
                # it, so sending it again on a new connection is safe. Anything else is not
                # retried (an inference must not run twice).
                if not reused:
                    raise ConnectionResetError("Triton closed the connection") from None
            except BaseException:
                self._close()
                raise

    def _connection(self, timeout: float) -> tuple[socket.socket, Any, bool]:
        connection: tuple[socket.socket, Any] | None = getattr(self._local, "connection", None)
        if connection is not None and connection[0].fileno() == -1:  # closed by close_all()
            connection = None
        if connection is None:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.connection = (sock, sock.makefile("rb"))
            with self._lock:
                self._open.add(self._local.connection)
            return sock, self._local.connection[1], False
        if connection[0].gettimeout() != timeout:
            connection[0].settimeout(timeout)
        return connection[0], connection[1], True

    def close(self) -> None:
        """Close the calling thread's connection: Triton's shutdown waits (--exit-timeout-secs)
        for open HTTP connections, kept-alive idle ones included."""
        self._close()

    def close_all(self) -> None:
        """Close every thread's connection, idle or not: before Triton is stopped, so its shutdown
        neither waits out --exit-timeout-secs for kept-alive connections nor exits without
        cleaning up (the Python backend removes its /tmp/python_env_* directories only then)."""
        with self._lock:
            connections, self._open = self._open, set()
        for sock, reader in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
            reader.close()
            sock.close()

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._open.discard(connection)
            connection[1].close()
            connection[0].close()

    def live(self) -> bool:
        try:
            status, _, _ = self.request("GET", "/v2/health/live", timeout=2.0)
        except Exception:  # noqa: BLE001 - any failure means not live; the supervisor must go on
            return False
        return status == 200

    def load(self, name: str) -> None:
        status, _, body = self.request("POST", f"/v2/repository/models/{name}/load", b"{}")
        if status != 200:
            raise TritonRefused(status, error_text(body))

    def unload(self, name: str) -> None:
        status, _, body = self.request("POST", f"/v2/repository/models/{name}/unload", b"{}")
        if status != 200:
            raise TritonRefused(status, error_text(body))


class _NothingReceived(ConnectionError):
    """The connection was closed before any byte of a response."""


def _read_response(reader: Any) -> tuple[int, dict[str, str], bytes]:
    try:
        status_line = reader.readline(65537)
    except (ConnectionResetError, BrokenPipeError):
        raise _NothingReceived from None
    if not status_line:
        raise _NothingReceived
    status = int(status_line.split(None, 2)[1])
    headers: dict[str, str] = {}
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    data = reader.read(length) if length else b""
    if len(data) != length:
        raise ConnectionResetError("Triton closed the connection mid-response")
    return status, headers, data


class TritonRefused(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_text(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")


class TritonProcess:
    """One supervised ``tritonserver``: a thread owns the process, restarts it if it exits or
    stops answering, and calls ``on_restart`` so the model cache forgets what was loaded."""

    def __init__(
        self,
        install: TritonInstall,
        repository: Path,
        backends: Path,
        log_path: Path,
        on_restart: Callable[[], None],
        host: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.install, self.repository, self.backends, self.log_path = install, repository, backends, log_path
        self.on_restart = on_restart
        self.host = host
        self.extra_args = extra_args
        self.port = 0
        self.client = TritonClient(host, 0)
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._live = threading.Event()  # set while the current process answers
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, daemon=True, name=f"triton-{log_path.parent.name}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def wait_live(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Wait out a restart: True once the current Triton answers."""
        return self._live.wait(timeout)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def _spawn(self) -> None:
        # a fresh port each time: the old one may have been taken while Triton was down
        self.port = free_port(self.host)
        self.client = TritonClient(self.host, self.port)
        env = dict(os.environ)
        # The stub links the shared libpython of this Python: a version manager's build (pyenv)
        # keeps it in its own LIBDIR, which the loader does not search.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(
                None,
                [str(self.install.libraries), sysconfig.get_config_var("LIBDIR"), env.get("LD_LIBRARY_PATH")],
            )
        )
        # The Python stub runs isolated (it ignores PYTHONPATH) and finds Python on PATH: put this
        # environment's interpreter first so models import numpy, onnxruntime, ... from it.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        command = [
            str(self.install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={self.backends}",
            "--model-control-mode=explicit",
            f"--http-address={self.host}",
            f"--http-port={self.port}",
            "--allow-grpc=false",
            "--allow-metrics=false",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            *self.extra_args,
        ]
        with self._lock:
            if self._stopping.is_set():
                raise TritonUnavailable("the local MME is stopping")
            with open(self.log_path, "ab") as log_file:
                self._process = subprocess.Popen(
                    command,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.client.live():
            if self._process.poll() is not None:
                raise TritonUnavailable(
                    f"tritonserver exited with code {self._process.returncode} while starting; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self._kill()
                raise TritonUnavailable(
                    f"tritonserver did not become live in {READY_TIMEOUT_S:.0f} s; see {self.log_path}"
                )
            time.sleep(0.05)
        self._live.set()

    def _supervise(self) -> None:
        try:
            self._spawn()
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        failures = 0
        while not self._stopping.wait(HEALTH_INTERVAL_S):
            process = self._process
            assert process is not None
            code = process.poll()
            if code is None:
                failures = 0 if self.client.live() else failures + 1
                if failures < HEALTH_FAILURES_BEFORE_RESTART:
                    continue
                reason = f"stopped answering health checks for {failures * HEALTH_INTERVAL_S:.0f} s"
                self._kill()
            else:
                reason = f"exited with code {code}"
            self._live.clear()
            if self._stopping.is_set():
                return
            log.warning(
                "local MME: tritonserver for %s %s; restarting it (models reload on their next "
                "invocation; its log: %s)",
                self.log_path.parent.name,
                reason,
                self.log_path,
            )
            self.restarts += 1
            self.on_restart()
            for attempt in range(1, 1000):
                try:
                    self._spawn()
                    failures = 0
                    break
                except TritonUnavailable as exc:
                    if self._stopping.is_set():
                        return
                    log.error("local MME: restarting tritonserver failed (attempt %d): %s", attempt, exc)
                    if self._stopping.wait(min(2.0**attempt, 30.0)):
                        return

    def stop(self, wait_s: float = EXIT_TIMEOUT_S + 5) -> None:
        """Stop Triton and its Python stubs (one process group): SIGTERM, then SIGKILL if Triton
        has not exited in ``wait_s``."""
        with self._lock:  # after this no spawn can start a new process
            self._stopping.set()
            process = self._process
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            # The supervisor ends at once now; its health-check connection closes with it, and
            # Triton's shutdown would otherwise wait a second for that open connection.
            self._thread.join(timeout=3 * HEALTH_INTERVAL_S)
        self.client.close_all()
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(wait_s)
            except subprocess.TimeoutExpired:
                self._kill()
            except ProcessLookupError:
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=READY_TIMEOUT_S)

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
