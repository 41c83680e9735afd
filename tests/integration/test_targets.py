"""Targets on the session's local stack, as a user on AWS runs them (issue 18): from a folder
outside the repository, with a profile in a temporary AWS config file and ``AWS_ENDPOINT_URL``, a
target resolved only through the CloudFormation path (the emulator's stack outputs), and tokens
stored by ``target login`` or given in the environment; every command of a release acts on it
(push, status, models, approve's refusal, promote, invoke, canary, rollback, logs). Without a
target, the running local stack is found from any folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmedeploy.local.stack import StackInfo
from testkit.tarballs import echo_repo, pack, single_python_repo

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def mmedeploy(*args: str, cwd: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmedeploy", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def as_aws_user(local_stack: StackInfo, tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose only way to the stack is AWS's: a profile (the emulator's
    administrator, as an SSO or IAM user's would be), AWS_ENDPOINT_URL, their own config directory,
    and no local stack to be found."""
    (tmp_path / "aws-config").write_text(f"[profile team]\nregion = {local_stack.region}\n")
    (tmp_path / "aws-credentials").write_text(
        f"[team]\naws_access_key_id = {local_stack.aws_access_key_id}\n"
        f"aws_secret_access_key = {local_stack.aws_secret_access_key}\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "MMEDEPLOY_")) or key == "MMEDEPLOY_DEBUG"
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        AWS_ENDPOINT_URL=local_stack.aws_endpoint_url,
        MMEDEPLOY_CONFIG_DIR=str(tmp_path / "config"),
        MMEDEPLOY_USER_STATE_DIR=str(tmp_path / "no-stacks-recorded"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def test_push_status_models_on_a_target_resolved_from_the_stack_outputs(
    local_stack: StackInfo, as_aws_user: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"  # outside the repository
    work.mkdir()
    env = as_aws_user

    # GIVEN a target added from the stack's name and a profile, and its tokens stored by login
    added = mmedeploy(
        "target", "add", "team", "--stack", local_stack.stack_name, "--profile", "team", cwd=work, env=env
    )
    assert added.returncode == 0, added.stderr
    assert f"API {local_stack.api_url}" in added.stdout
    tokens = f"{local_stack.api_token}\n{local_stack.admin_token}\n"
    login = mmedeploy("target", "login", "team", cwd=work, env=env, stdin=tokens)
    assert login.returncode == 0, login.stderr
    assert local_stack.api_token not in login.stdout + login.stderr
    assert mmedeploy("target", "use", "team", cwd=work, env=env).returncode == 0
    shown = mmedeploy("target", "show", "--json", cwd=work, env=env)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["name"] == "team" and document["staging_bucket"] == local_stack.staging_bucket
    assert document["tokens"]["admin"]["set"] and local_stack.admin_token not in shown.stdout

    # WHEN a tarball is pushed to it
    tarball = work / "targetpush_1.tar.gz"
    files = single_python_repo("targetpush")
    del files["model_version.txt"]  # rejected by validation: no dependency on the staging warm-up
    tarball.write_bytes(pack(files))
    pushed = mmedeploy("push", str(tarball), "--json", "--no-validate", cwd=work, env=env)  # for the pipeline
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["bucket"] == local_stack.staging_bucket

    # THEN its status is followed to REJECTED, and the API lists the models, all through the target
    watched = mmedeploy("status", "targetpush", "1", "--watch", "--json", "--timeout", "60", cwd=work, env=env)
    assert watched.returncode == 1, watched.stderr
    assert json.loads(watched.stdout)["status"] == "REJECTED"
    models = mmedeploy("--target", "team", "models", "--json", cwd=work, env=env)
    assert models.returncode == 0, models.stderr

    # AND no local stack was found or used: without the target there is none
    local = mmedeploy("status", "targetpush", "--target", "local", cwd=work, env=env)
    assert local.returncode == 2 and "no local stack is running" in local.stderr


def test_the_running_local_stack_is_found_from_any_folder(local_stack: StackInfo, tmp_path: Path) -> None:
    # cd /tmp && mmedeploy status x: the stack records where it runs in the user's state directory
    found = mmedeploy("status", "nosuchmodel", cwd=tmp_path, env=dict(os.environ))
    assert found.returncode == 3, found.stderr  # no such model: the stack was found and read
    assert "no local stack" not in found.stderr


def test_every_command_of_a_release_acts_on_a_target_with_tokens_from_the_environment(
    local_stack: StackInfo, as_aws_user: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"  # outside the repository
    work.mkdir()
    env = {
        **as_aws_user,
        "MMEDEPLOY_API_TOKEN": local_stack.api_token,
        "MMEDEPLOY_ADMIN_TOKEN": local_stack.admin_token,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return mmedeploy("--target", "ops", *args, cwd=work, env=env)

    added = mmedeploy("target", "add", "ops", "--stack", local_stack.stack_name, "--profile", "team", cwd=work, env=env)
    assert added.returncode == 0, added.stderr
    request = work / "request.json"
    request.write_text(
        json.dumps({"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
    )

    def release(version: str) -> None:
        tarball = work / f"targetrel_{version}.tar.gz"
        tarball.write_bytes(pack(echo_repo("targetrel", version)))
        pushed = run("push", str(tarball))  # validated first, then uploaded
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert "--target ops" in pushed.stdout  # the follow-it hint names the target
        watched = run("status", "targetrel", version, "--watch", "--json", "--timeout", "120")
        assert json.loads(watched.stdout)["status"] == "AWAITING_APPROVAL", watched.stdout + watched.stderr

    # push, status: version 1 to approval
    release("1")
    # approve on a deployed target is Slack's: the CLI says so and points at promote
    approve = run("approve", "targetrel", "1")
    assert approve.returncode == 1 and "mmedeploy promote" in approve.stderr, approve.stderr
    # promote (admin): through the gate to production; invoke through the API
    promoted = run("promote", "targetrel", "1")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    answered = run("invoke", "targetrel", "--data", str(request), "--json")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["served_version"] == "1"
    # version 2: canary, then stop it, promote it, and roll back to 1
    release("2")
    canary = run("canary", "targetrel", "2", "--weight", "10%")
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert run("canary", "targetrel", "--stop").returncode == 0
    assert run("promote", "targetrel", "2").returncode == 0
    rolled = run("rollback", "targetrel")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    status = run("status", "targetrel", "--json")
    versions = {v["version"]: v["status"] for v in json.loads(status.stdout)["versions"]}
    assert versions == {"1": "PRODUCTION", "2": "RETIRED"}, status.stdout
    # logs: the validator's log, read from CloudWatch Logs with the profile's credentials
    logs = run("logs", "validate", "--since", "30m")
    assert logs.returncode == 0 and "targetrel" in logs.stdout, logs.stderr
