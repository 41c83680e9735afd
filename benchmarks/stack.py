"""What the stack benchmarks share: the artifacts built before the clock starts, a local stack
started as a user starts it (``mmedeploy up --detach`` on its own port range and state directory)
and always stopped, the example ensemble deployed the way ``mmedeploy demo`` does it (package,
push, the signed Slack approval), and the functions' ``REPORT`` lines read from CloudWatch Logs.

Not a benchmark itself: ``bench_api.py`` and ``bench_stack_up.py`` import it.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.domain.lifecycle import SETTLED, TERMINAL, Status  # noqa: E402
from chalicelib.domain.records import ModelVersion  # noqa: E402
from mmedeploy.local.stack import StackInfo  # noqa: E402
from mmedeploy.target import DeploymentTarget, local_stack_target  # noqa: E402
from testkit.stack_process import free_port_base, mmedeploy  # noqa: E402

EXAMPLE = ROOT / "examples" / "models" / "idcheck"
MODEL = "idcheck"
UP_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 180.0
POLL_S = 0.1
LOG_SHIP_WAIT_S = 1.5  # the stack ships function output to CloudWatch Logs every 0.5 s
_START = re.compile(r"^START RequestId: (\S+)")
_REPORT = re.compile(r"^REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms.*?(?:\tInit Duration: ([\d.]+) ms)?$")


class BenchError(RuntimeError):
    """The stack or the deployment did not do what the benchmark needs; the message says what."""


def guarded(name: str, work: Callable[[], int]) -> int:
    """``work``'s exit status; 2 with a line (no traceback) on a BenchError, 130 on Ctrl-C. The
    stack ``work`` started is stopped either way (``running_stack``)."""
    try:
        return work()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted (the stack was stopped)", file=sys.stderr)
        return 130


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def verdict(value: float, goal: float) -> str:
    return f"<= {goal:g}x {'met' if value <= goal else 'MISSED'}"


def epoch(at: str) -> float:
    """A registry timestamp (``2026-01-01T08:40:31.969Z``) as seconds since the epoch."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


# -- the artifacts ---------------------------------------------------------------------------------
def ensure_artifacts() -> str:
    """Build (or reuse) what ``mmedeploy up`` runs, before any clock starts: the package (build/dev)
    and the local runtime (awslambdaric and the SDK in build/.runtime); a line saying which."""
    from mmedeploy.deploy.package import ensure_built
    from mmedeploy.local.lambdas.service import LOCAL_RUNTIME, ensure_runtime_client
    from mmedeploy.local.provision import PACKAGE_STAGE

    out = ROOT / "build" / PACKAGE_STAGE
    built = ensure_built(PACKAGE_STAGE, out)
    if built.rebuilt:
        line = f"artifacts: {out.relative_to(ROOT)} rebuilt ({', '.join(built.rebuilt)}) in {built.seconds:.1f} s"
    else:
        line = f"artifacts: {out.relative_to(ROOT)} reused, inputs unchanged (checked in {built.seconds:.2f} s)"
    runtime = ROOT / "build" / ".runtime" / LOCAL_RUNTIME
    started = time.monotonic()
    ensure_runtime_client(runtime)
    took = time.monotonic() - started
    if took > 1.0:  # it installed
        line += f"; the local runtime installed into {runtime.relative_to(ROOT)} in {took:.1f} s"
    return line


def example_tarball(version: str, out: Path) -> Path:
    """The example ensemble packaged and validated as ``idcheck_<version>.tar.gz``."""
    from mmedeploy.packaging import package

    if not (EXAMPLE / "idcheck_inferencer" / "1" / "model.onnx").is_file():
        raise BenchError("the example's generated parts (model.onnx) are missing: run 'make examples' first")
    return package(EXAMPLE, MODEL, version, out).path


# -- the stack -------------------------------------------------------------------------------------
@dataclass
class RunningStack:
    state_dir: Path
    info: StackInfo
    up_wall_s: float  # `mmedeploy up --detach`, from its start to its return (the stack is ready)
    packaged: str  # what `up` said about building build/dev, if it built anything

    @property
    def target(self) -> DeploymentTarget:
        return local_stack_target(self.state_dir)


@contextmanager
def running_stack(state_dir: Path) -> Iterator[RunningStack]:
    """``mmedeploy up --detach --fresh`` on a free port range; ``mmedeploy down`` when done, also
    on an error or Ctrl-C."""
    base = free_port_base()
    started = time.monotonic()
    try:
        try:
            result = mmedeploy(
                "up",
                "--detach",
                "--fresh",
                "--port-base",
                str(base),
                "--state-dir",
                str(state_dir),
                timeout=UP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"mmedeploy up did not return within {UP_TIMEOUT_S:.0f} s") from None
        wall = time.monotonic() - started
        if result.returncode != 0:
            raise BenchError(f"mmedeploy up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        info = StackInfo.model_validate_json((state_dir / "stack.json").read_text())
        log = state_dir / "stack.log"
        packaged = next((line for line in log.read_text(errors="replace").splitlines() if "packaged " in line), "")
        yield RunningStack(state_dir, info, wall, packaged.strip())
    finally:
        stopped = mmedeploy("down", "--state-dir", str(state_dir))
        if stopped.returncode not in (0, 1):  # 1: nothing was running (up failed)
            print(f"mmedeploy down: {stopped.stdout}{stopped.stderr}", file=sys.stderr)


# -- the pipeline ----------------------------------------------------------------------------------
@dataclass
class Upload:
    version: str
    pushed_at: float  # epoch seconds, just before the push began
    record: ModelVersion  # settled, with its history

    def at(self, status: Status) -> float:
        return max(epoch(entry.at) for entry in self.record.history if entry.status is status)

    @property
    def to_awaiting_s(self) -> float:
        """From the push's start to AWAITING_APPROVAL, by the registry's timestamp."""
        return self.at(Status.AWAITING_APPROVAL) - self.pushed_at


def settle(
    target: DeploymentTarget, version: str, wanted: set[Status], timeout: float = SETTLE_TIMEOUT_S
) -> ModelVersion:
    registry = target.registry()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = registry.find(MODEL, version)
        if record is not None and record.status in wanted:
            return registry.get(MODEL, version, with_history=True)
        time.sleep(POLL_S)
    record = registry.find(MODEL, version)
    now = f"{record.status.value}: {record.reason}" if record else "not registered"
    raise BenchError(f"{MODEL} {version} did not reach {'/'.join(s.value for s in wanted)} in {timeout:.0f} s ({now})")


def push_until_awaiting(target: DeploymentTarget, tarball: Path, version: str) -> Upload:
    """Push the tarball (``mmedeploy push``) and follow it to AWAITING_APPROVAL."""
    from mmedeploy.push import push_tarball

    pushed_at = time.time()
    push_tarball(target, tarball)
    record = settle(target, version, set(SETTLED))
    if record.status is not Status.AWAITING_APPROVAL:
        raise BenchError(f"{MODEL} {version} settled {record.status.value}: {record.reason}")
    return Upload(version, pushed_at, record)


def approve_until_production(target: DeploymentTarget, version: str) -> ModelVersion:
    """The Approve click (``mmedeploy approve``: a signed Slack interaction), followed to PRODUCTION."""
    from chalicelib.domain.approvals import Decision
    from mmedeploy.decision import decided, default_user, send_decision

    registry = target.registry()
    record = registry.get(MODEL, version)
    user = default_user(target)
    if not user or not record.approval_id:
        raise BenchError(f"{MODEL} {version} cannot be approved (approver {user}, approval {record.approval_id})")
    answer = send_decision(target, record, Decision.APPROVE, user, registry.find_approval(record.approval_id))
    if not decided(answer):
        raise BenchError(
            f"the Slack webhook did not approve {MODEL} {version} (HTTP {answer.http_status}): {answer.error}"
        )
    final = settle(target, version, {Status.PRODUCTION, *TERMINAL})
    if final.status is not Status.PRODUCTION:
        raise BenchError(f"{MODEL} {version} ended {final.status.value}: {final.reason}")
    return final


# -- the functions' REPORT lines -----------------------------------------------------------------
@dataclass
class Report:
    function: str
    request_id: str
    timestamp_ms: int
    duration_ms: float
    init_ms: float | None  # set on a cold start (a new execution environment)
    started_ms: int | None = None  # the invocation's START line, when it is in the window


def log_events(target: DeploymentTarget, group: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    logs = target.client("logs")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "endTime": end_ms}
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return events
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token or not page["events"]:
            return events
        kwargs["nextToken"] = token


def lambda_groups(target: DeploymentTarget) -> list[str]:
    logs = target.client("logs")
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/aws/lambda/")
    return [group["logGroupName"] for page in pages for group in page["logGroups"]]


def reports(target: DeploymentTarget, start: float, end: float, groups: list[str] | None = None) -> list[Report]:
    """Every function's ``REPORT`` line logged between ``start`` and ``end`` (epoch seconds), read
    from the emulator's CloudWatch Logs once the stack has shipped them."""
    time.sleep(max(0.0, end + LOG_SHIP_WAIT_S - time.time()))
    found: list[Report] = []
    for group in groups if groups is not None else lambda_groups(target):
        starts: dict[str, int] = {}
        for event in log_events(target, group, int(start * 1000), int(end * 1000) + 1):
            report = parse_report(group, event)
            if report is not None:
                report.started_ms = starts.get(report.request_id)
                found.append(report)
            elif match := _START.match(event["message"]):
                starts[match[1]] = event["timestamp"]
    return sorted(found, key=lambda report: report.started_ms or report.timestamp_ms)


def parse_report(group: str, event: dict[str, Any]) -> Report | None:
    """The ``REPORT`` line in a log event of ``/aws/lambda/<function>``, else None."""
    match = _REPORT.match(event["message"].rstrip("\n"))
    if match is None:
        return None
    init = float(match[3]) if match[3] else None
    return Report(group.removeprefix("/aws/lambda/"), match[1], event["timestamp"], float(match[2]), init)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
