"""``mmedeploy up`` / ``down``: start the stack here or detached, find it, stop it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mmedeploy.local.stack import (
    PortInUse,
    StackConfig,
    StackInfo,
    check_ports_free,
    describe,
    process_alive,
    read_stack,
    run_foreground,
)

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class StackError(RuntimeError):
    """A user-facing problem with starting or stopping the stack."""


def _refuse_if_running(state_dir: Path) -> None:
    """The one check that a stack already runs (both `up` paths, and the detached child, call it)."""
    info = read_stack(state_dir)
    if info:
        raise StackError(
            f"a local stack is already running (pid {info.pid}, API at {info.api_url}); run 'mmedeploy down' first"
        )


def up_foreground(config: StackConfig, say: Callable[[str], None]) -> int:
    _refuse_if_running(config.state_dir)
    try:
        return run_foreground(config, say)
    except PortInUse as exc:
        raise StackError(str(exc)) from None


def up_detached(config: StackConfig, say: Callable[[str], None]) -> int:
    state_dir = config.state_dir
    _refuse_if_running(state_dir)
    try:
        check_ports_free(config)  # fail here, with the message, rather than in the child's log
    except PortInUse as exc:
        raise StackError(str(exc)) from None
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "stack.log"
    command = [sys.executable, "-m", "mmedeploy", "up", *config.as_arguments()]
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        info = read_stack(state_dir)
        if info and info.pid == child.pid:
            describe(info, config, say)
            say(f"  log            {log_path}   (stop with: mmedeploy down)")
            return 0
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise StackError("the local stack failed to start:\n  " + "\n  ".join(tail))
        time.sleep(0.1)
    _terminate(child.pid)
    raise StackError(f"the local stack was not ready within {READY_TIMEOUT_S} s; see {log_path}")


def _terminate(pid: int) -> bool:
    """SIGTERM, wait, then SIGKILL: True once the process is gone."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not our child: poll its existence instead
                finished = 0 if process_alive(pid) else pid
            if finished == pid or not process_alive(pid):
                return True
            time.sleep(0.1)
    return False


def down(state_dir: Path, say: Callable[[str], None]) -> int:
    info: StackInfo | None = read_stack(state_dir)
    if info is None:
        say("no local stack is running")
        return 0
    say(f"stopping the local stack (pid {info.pid}) ...")
    if not _terminate(info.pid):
        raise StackError(f"process {info.pid} did not stop; kill it by hand")
    (state_dir / "stack.json").unlink(missing_ok=True)
    say("stopped")
    return 0
