"""``mmedeploy demo`` (``make demo``) as a new user runs it: on its own stack, every step shown and
done, exit 0, and the stack it started stopped afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmedeploy.local.stack import process_alive, read_stack
from testkit.stack_process import free_port_base, mmedeploy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_shows_the_whole_flow_and_stops_its_stack(tmp_path: Path) -> None:
    state_dir = tmp_path / ".mmedeploy"
    # WHEN the demo runs on a fresh state directory and free ports
    result = mmedeploy("demo", "--port-base", str(free_port_base()), "--state-dir", str(state_dir), timeout=600)
    out = result.stdout
    # THEN it succeeds, without a traceback
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert "Traceback" not in out + result.stderr
    # AND each step is shown: the pipeline to AWAITING_APPROVAL, with seconds since the push
    assert re.search(r"\+\d+\.\d\d s\s+AWAITING_APPROVAL\s+pipeline/request-approval", out), out
    assert "idcheck_1.tar.gz is valid" in out
    # the Slack approval request with its buttons, then the updated message without them
    assert "idcheck version 1 is staged and waits for approval" in out
    assert "[ Approve ]" in out and "[ Decline ]" in out
    assert re.search(r"PRODUCTION · approved by @U0LOCALAPPROVER", out), out
    # the promotion, and the inference API answering the example's cases with the new version
    assert re.search(r"\+\d+\.\d\d s\s+PRODUCTION\s+pipeline/promote", out), out
    assert re.search(r"tests/approved\.json .*DECISION approved .*served by idcheck 1", out), out
    assert re.search(r"tests/declined\.json .*DECISION declined .*served by idcheck 1", out), out
    # the broken model rejected, with its finding
    assert re.search(r"\+\d+\.\d\d s\s+REJECTED\s+pipeline/validate", out), out
    assert "ENSEMBLE_MAP_UNKNOWN_TENSOR" in out
    assert "idcheck_broken 1" in out
    # and the summary: all steps ok, the stack stopped
    assert out.count("✔ done in") == 8
    assert "demo finished: every step did what it should" in out
    stopped = re.search(r"stopping the local stack \(pid (\d+)\)", out)
    assert stopped is not None and "stopped" in out[stopped.end() :], out
    assert not process_alive(int(stopped[1]))
    assert read_stack(state_dir) is None and not (state_dir / "stack.json").exists()


def test_the_demo_refuses_taken_ports_and_names_the_option(tmp_path: Path) -> None:
    import socket

    base = free_port_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        result = mmedeploy("demo", "--port-base", str(base), "--state-dir", str(tmp_path / "s"), timeout=120)
    assert result.returncode == 1
    assert f"port {base + 1}" in result.stdout and "--port-base" in result.stdout
    assert "demo failed at step 1 (Start the local stack)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
