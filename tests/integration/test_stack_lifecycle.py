"""`mmedeploy up` / `down` as a user meets them: readiness, refusals, clean stop, kept state."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from mmedeploy.local.stack import StackInfo
from testkit.stack_process import aws_client, free_port_base, mmedeploy, start_stack, stop_stack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def s3_client(info: StackInfo) -> Any:
    return aws_client(info, "s3")


def assert_uploads_reach_eventbridge(info: StackInfo, s3: Any) -> None:
    sfn, events = aws_client(info, "stepfunctions"), aws_client(info, "events")
    machine = sfn.create_state_machine(
        name="upload-probe",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/probe",
    )["stateMachineArn"]
    events.put_rule(Name="upload-probe", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="upload-probe", Targets=[{"Id": "sfn", "Arn": machine, "RoleArn": "arn:aws:iam::1:role/p"}])
    s3.put_object(Bucket=info.staging_bucket, Key="probe_1.tar.gz", Body=b"probe")
    wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], 10, "the upload's event")


def port_is_free(port: int) -> bool:
    """Whether a new stack could listen on `port` — as the stack binds, with SO_REUSEADDR.

    A plain bind would also fail on the closed connections the server left in TIME_WAIT
    (the pipeline's Lambdas talk to moto over HTTP), which is not a port still held.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_refusals_down_and_kept_state(tmp_path: Path) -> None:
    state_dir = tmp_path / ".mmedeploy"
    base = free_port_base()
    # GIVEN a running stack with an object in the staging bucket: two versions (the first with
    # metadata, as the production copy carries its sha256), and a deleted key (a delete marker);
    # not tarballs, so the pipeline leaves them alone (it restores the first bytes of a version
    # that other bytes were pushed over, racing this test's restart)
    info = start_stack(state_dir, base)
    s3 = s3_client(info)
    s3.put_object(Bucket=info.staging_bucket, Key="kept.bin", Body=b"first", Metadata={"sha256": "abc"})
    s3.put_object(Bucket=info.staging_bucket, Key="kept.bin", Body=b"kept", ContentType="application/gzip")
    s3.put_object(Bucket=info.staging_bucket, Key="gone.bin", Body=b"gone")
    s3.delete_object(Bucket=info.staging_bucket, Key="gone.bin")
    versions_before = s3.list_object_versions(Bucket=info.staging_bucket)
    try:
        # WHEN it is started again: refused, non-zero, saying so
        again = mmedeploy("up", "--detach", "--port-base", str(base), "--state-dir", str(state_dir))
        assert again.returncode == 1
        assert "already running" in again.stderr
        # AND another stack on the same ports: refused naming the port and the way out
        clash = mmedeploy("up", "--detach", "--port-base", str(base), "--state-dir", str(tmp_path / "other"))
        assert clash.returncode == 1
        assert f"port {base}" in clash.stderr and "--port-base" in clash.stderr
    finally:
        # WHEN it is stopped: no process, no bound port, no stack.json
        stopped = stop_stack(state_dir)
    assert stopped.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)
    assert all(port_is_free(port) for port in range(base, base + 4))
    assert not (state_dir / "stack.json").exists()
    assert mmedeploy("down", "--state-dir", str(state_dir)).stdout.strip() == "no local stack is running"

    # THEN a plain `up` keeps the bucket's content, and uploads still reach EventBridge after the restore
    info = start_stack(state_dir, base, fresh=False)
    s3 = s3_client(info)
    try:
        assert s3.get_object(Bucket=info.staging_bucket, Key="kept.bin")["Body"].read() == b"kept"
        # every version kept with its id (the registry pins them), order, metadata and delete markers
        versions_after = s3.list_object_versions(Bucket=info.staging_bucket)
        for kind in ("Versions", "DeleteMarkers"):
            assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions_after[kind]] == [
                (v["Key"], v["VersionId"], v["IsLatest"]) for v in versions_before[kind]
            ]
        first = next(v for v in versions_before["Versions"] if v["Key"] == "kept.bin" and not v["IsLatest"])
        old = s3.get_object(Bucket=info.staging_bucket, Key="kept.bin", VersionId=first["VersionId"])
        assert (old["Body"].read(), old["Metadata"]) == (b"first", {"sha256": "abc"})
        latest = s3.head_object(Bucket=info.staging_bucket, Key="kept.bin")
        assert latest["ContentType"] == "application/gzip"
        with pytest.raises(s3.exceptions.ClientError):
            s3.head_object(Bucket=info.staging_bucket, Key="gone.bin")
        assert_uploads_reach_eventbridge(info, s3)
    finally:
        stop_stack(state_dir)
    info = start_stack(state_dir, base, fresh=True)
    s3 = s3_client(info)
    try:
        assert "Contents" not in s3.list_objects_v2(Bucket=info.staging_bucket)
        assert info.ready_seconds < 15
    finally:
        stop_stack(state_dir)


def test_ctrl_c_in_the_foreground_stops_everything(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from testkit.stack_process import ROOT

    state_dir, base = tmp_path / ".mmedeploy", free_port_base()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mmedeploy", "up", "--port-base", str(base), "--state-dir", str(state_dir)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "stack.json").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "local stack ready" in output and "stopped" in output
    assert all(port_is_free(port) for port in range(base, base + 4))
    assert not (state_dir / "stack.json").exists()
