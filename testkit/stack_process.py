"""Start and stop a local stack as a user does (``mmedeploy up --detach`` / ``down``), on a free
port range, for tests and benchmarks."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

from mmedeploy.local.stack import StackInfo

ROOT = Path(__file__).resolve().parent.parent


def free_port_base(count: int = 4) -> int:
    for _ in range(200):
        # below Linux's ephemeral range (32768+): the Runtime APIs and Tritons of stacks bind port 0
        base = random.randrange(20000, 32000)
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range found")


def mmedeploy(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mmedeploy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_stack(
    state_dir: Path, port_base: int | None = None, fresh: bool = True, extra: tuple[str, ...] = ()
) -> StackInfo:
    base = port_base or free_port_base()
    args = ["up", "--detach", "--port-base", str(base), "--state-dir", str(state_dir), *extra]
    result = mmedeploy(*args, *(["--fresh"] if fresh else []))
    if result.returncode != 0:
        raise RuntimeError(f"mmedeploy up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return StackInfo.model_validate_json((state_dir / "stack.json").read_text())


def stop_stack(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return mmedeploy("down", "--state-dir", str(state_dir))


def aws_client(info: StackInfo, service: str) -> Any:
    """A boto3 client of the stack's AWS emulator, signed as its local administrator."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=info.aws_endpoint_url,
        aws_access_key_id=info.aws_access_key_id,
        aws_secret_access_key=info.aws_secret_access_key,
        region_name=info.region,
    )
