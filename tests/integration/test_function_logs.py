"""`mmedeploy logs` against the session's local stack: an API request's invocation shows up in the
API function's CloudWatch Logs group, read through the CLI as a user does."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest

from mmedeploy.local.stack import StackInfo
from testkit.stack_process import mmedeploy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LINE = re.compile(r"^([0-9a-f]{8}) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (START|END|REPORT) RequestId: ([0-9a-f-]+)")


def invocations(output: str) -> dict[str, dict[str, str]]:
    """request id -> {"START"/"END"/"REPORT": the stream id printed with that line}."""
    found: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        match = LINE.match(line)
        if match:
            stream, _, kind, request_id = match.groups()
            found.setdefault(request_id, {})[kind] = stream
    return found


def test_an_api_request_s_invocation_is_in_the_api_function_s_logs(
    local_stack: StackInfo, local_stack_dir: Path
) -> None:
    state = ("--state-dir", str(local_stack_dir))
    before = mmedeploy("logs", "APIHandler", "--since", "1d", *state)
    assert before.returncode == 0, before.stderr
    seen = set(invocations(before.stdout))

    # WHEN the API serves a request (one invocation of the API function)
    with urllib.request.urlopen(f"{local_stack.api_url}/health", timeout=30) as answer:
        assert answer.status == 200

    # THEN its START, END and REPORT lines are printed, from one execution environment, within the
    # shipping delay (the stack sends function output to CloudWatch Logs every ~0.5 s)
    deadline = time.monotonic() + 20
    while True:
        result = mmedeploy("logs", "APIHandler", "--since", "5m", *state)
        assert result.returncode == 0, result.stderr
        new = {rid: lines for rid, lines in invocations(result.stdout).items() if rid not in seen}
        complete = {rid: lines for rid, lines in new.items() if {"START", "END", "REPORT"} <= lines.keys()}
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert complete, f"no new invocation of the API function in:\n{result.stdout}\n{result.stderr}"
    request_id, lines = next(iter(complete.items()))
    assert len(set(lines.values())) == 1  # one invocation runs in one environment (one stream)
    report = next(line for line in result.stdout.splitlines() if f"REPORT RequestId: {request_id}" in line)
    assert "\tDuration: " in report and "\tMax Memory Used: " in report  # printed as logged: tabs kept

    # the same lines are kept in the function's file in the state directory, <function name>.log
    [file] = (local_stack_dir / "logs").glob("*-APIHandler.log")
    kept = file.read_text()
    assert f"START RequestId: {request_id}" in kept and f"REPORT RequestId: {request_id}" in kept

    # the full name (mmedeploy-dev-APIHandler) reads the same group
    full = mmedeploy("logs", file.stem, "--since", "5m", *state)
    assert full.returncode == 0 and f"REPORT RequestId: {request_id}" in full.stdout


def test_a_name_that_fits_several_functions_names_them(local_stack: StackInfo, local_stack_dir: Path) -> None:
    result = mmedeploy("logs", "warm", "--state-dir", str(local_stack_dir))
    assert result.returncode == 1
    assert "mmedeploy-dev-warm-production, mmedeploy-dev-warm-staging" in result.stderr
    assert "Traceback" not in result.stderr
