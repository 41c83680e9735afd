"""`mmedeploy push` then `mmedeploy status` against the session's local stack, as a user runs them.

The tarballs are rejected by validation (pushed with --no-validate: push itself refuses them
otherwise), so these tests do not depend on the staging warm-up. Model names are unique to this
module: other tests share the stack's bucket and registry. ``status`` reads through the API only:
with AWS credentials the emulator refuses, it still answers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from mmedeploy import cli
from mmedeploy.local.stack import StackInfo
from mmedeploy.target import local_stack_target
from testkit.stack_process import mmedeploy
from testkit.tarballs import pack, single_python_repo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def without_version_file(name: str) -> bytes:
    files = single_python_repo(name)
    del files["model_version.txt"]
    return pack(files)


def test_pushed_invalid_tarball_ends_rejected_with_its_findings(
    local_stack: StackInfo, local_stack_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a correctly named tarball whose content lacks model_version.txt
    tarball = tmp_path / "clirejected_1.tar.gz"
    tarball.write_bytes(without_version_file("clirejected"))
    state = ("--state-dir", str(local_stack_dir))

    # WHEN it is pushed (push validates first and refuses it: --no-validate lets the pipeline judge)
    refused = mmedeploy("push", str(tarball), *state)
    assert refused.returncode == 1 and "not uploaded" in refused.stderr and "VERSION_FILE_MISSING" in refused.stdout
    pushed = mmedeploy("push", str(tarball), *state, "--json", "--no-validate")
    assert pushed.returncode == 0, pushed.stderr
    document = json.loads(pushed.stdout)
    assert document["bucket"] == local_stack.staging_bucket and document["key"] == "clirejected_1.tar.gz"
    assert document["size"] == tarball.stat().st_size and document["etag"] and document["version_id"]

    # THEN watching it ends REJECTED (exit 1) with the finding codes and the whole history
    watched = mmedeploy("status", "clirejected", "1", "--watch", "--json", "--timeout", "60", *state)
    assert watched.returncode == 1, watched.stderr
    status = json.loads(watched.stdout)
    assert (status["name"], status["version"], status["status"]) == ("clirejected", "1", "REJECTED")
    assert "VERSION_FILE_MISSING" in {f["code"] for f in status["findings"]}
    statuses = [h["status"] for h in status["history"]]
    assert statuses[0] == "RECEIVED" and statuses[-1] == "REJECTED"
    assert status["size"] == tarball.stat().st_size and len(status["sha256"]) == 64

    # AND a plain status of the version exits 0, its human view names the finding
    plain = mmedeploy("status", "clirejected", "1", *state)
    assert plain.returncode == 0, plain.stderr
    assert "REJECTED" in plain.stdout and "VERSION_FILE_MISSING" in plain.stdout

    # AND the model's listing has the version, and an unknown version exits 3
    listing = mmedeploy("status", "clirejected", "--json", *state)
    assert listing.returncode == 0, listing.stderr
    model = json.loads(listing.stdout)
    assert model["aliases"] == {}
    assert [(v["version"], v["status"]) for v in model["versions"]] == [("1", "REJECTED")]
    missing = mmedeploy("status", "clirejected", "2", *state)
    assert missing.returncode == 3
    assert "no version 2 of model clirejected" in missing.stderr and "Traceback" not in missing.stderr


def test_push_human_output_then_watch_log(local_stack: StackInfo, local_stack_dir: Path, tmp_path: Path) -> None:
    tarball = tmp_path / "clilog_2.0.tar.gz"
    tarball.write_bytes(without_version_file("clilog"))
    state = ("--state-dir", str(local_stack_dir))

    pushed = mmedeploy("push", str(tarball), *state, "--no-validate")
    assert pushed.returncode == 0, pushed.stderr
    assert f"s3://{local_stack.staging_bucket}/clilog_2.0.tar.gz" in pushed.stdout
    assert "version id " in pushed.stdout and "version id -" not in pushed.stdout
    assert f"mmedeploy status clilog 2.0 --watch --state-dir {local_stack_dir}" in pushed.stdout

    # not a terminal: one line per status change as it happens, then the final view
    watched = mmedeploy("status", "clilog", "2.0", "--watch", "--interval", "0.2", "--timeout", "60", *state)
    assert watched.returncode == 1, watched.stderr
    lines = watched.stdout.splitlines()
    assert any("RECEIVED" in line and "s3-upload" in line for line in lines)
    assert "VERSION_FILE_MISSING" in watched.stdout


def test_push_refusals_upload_nothing(local_stack: StackInfo, local_stack_dir: Path, tmp_path: Path) -> None:
    misnamed = tmp_path / "cli-misnamed.tar.gz"
    misnamed.write_bytes(without_version_file("climisnamed"))
    refused = mmedeploy("push", str(misnamed), "--state-dir", str(local_stack_dir))
    assert refused.returncode == 2
    assert "<model_name>_<model_version>.tar.gz" in refused.stderr and "Traceback" not in refused.stderr
    nothing = mmedeploy("status", "cli-misnamed", "--state-dir", str(local_stack_dir))
    assert nothing.returncode == 3

    no_stack = mmedeploy("status", "clirejected", "1", "--state-dir", str(tmp_path / "elsewhere"))
    assert no_stack.returncode == 2 and "mmedeploy up --detach" in no_stack.stderr


def test_status_reads_only_the_api(
    local_stack: StackInfo, local_stack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pushed version that ends REJECTED
    tarball = tmp_path / "cliapionly_1.tar.gz"
    tarball.write_bytes(without_version_file("cliapionly"))
    state = ("--state-dir", str(local_stack_dir))
    assert mmedeploy("push", str(tarball), *state, "--no-validate").returncode == 0
    # AND a target whose AWS credentials the emulator refuses (it enforces IAM), and no table
    nobody = boto3.session.Session(
        aws_access_key_id="AKIANOBODY", aws_secret_access_key="nothing", region_name=local_stack.region
    )
    target = replace(local_stack_target(local_stack_dir), session=nobody, registry_table="no-such-table")
    # WHEN its status is watched and read / THEN the API answers it all, with the invoke token
    watch = ["status", "cliapionly", "1", "--watch", "--json", "--interval", "0.2", "--timeout", "60"]
    assert cli.main(watch, target=target) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "REJECTED"
    assert cli.main(["status", "cliapionly", "--json"], target=target) == 0
    assert [v["status"] for v in json.loads(capsys.readouterr().out)["versions"]] == ["REJECTED"]
