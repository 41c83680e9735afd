"""``mmedeploy doctor`` on the session's local stack: every check passes; then on a deliberately
broken stack it names each broken check. The broken stack is a second CloudFormation stack on the
emulator whose outputs are the local stack's but one (ProductionEndpoint left out), whose signing
secret output names a secret left at a placeholder (as the template's GenerateSecretString makes
it) and whose SlackApproverIds is empty; it is added as a target, resolved only through the
CloudFormation path. Nothing of the session's stack is changed, and the extra stack and secret go
at the end, so later tests are unaffected.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmedeploy.local.stack import StackInfo

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BROKEN_STACK = "mmedeploy-doctor-broken"


def doctor(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "mmedeploy", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        document = json.loads(done.stdout) if "--json" in args else {}
    except ValueError:
        document = {}
    return done.returncode, document, done.stdout + done.stderr


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["check"]: check["status"] for check in document.get("checks", [])}


def test_doctor_passes_on_the_local_stack_and_names_each_broken_check(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any], tmp_path: Path
) -> None:
    # GIVEN the running local stack: every check passes, and no secret or token is printed
    code, document, printed = doctor(
        "doctor", "--json", "--state-dir", str(local_stack_dir), cwd=tmp_path, env=dict(os.environ)
    )
    assert code == 0, printed
    assert set(statuses(document).values()) == {"ok"}, printed
    assert local_stack.api_token not in printed and local_stack.admin_token not in printed
    assert local_stack.slack_signing_secret not in printed
    code, _, printed = doctor("doctor", "--state-dir", str(local_stack_dir), cwd=tmp_path, env=dict(os.environ))
    assert code == 0 and "every check passed" in printed, printed

    # AND a broken stack: an output missing, the signing secret at its placeholder, no approvers
    cloudformation, secretsmanager = aws("cloudformation"), aws("secretsmanager")
    outputs = {
        output["OutputKey"]: output["OutputValue"]
        for output in cloudformation.describe_stacks(StackName=local_stack.stack_name)["Stacks"][0]["Outputs"]
    }
    placeholder = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    secret = secretsmanager.create_secret(
        Name=f"mmedeploy/{BROKEN_STACK}/slack-signing-secret", SecretString=placeholder
    )
    outputs["SlackSigningSecret"] = secret["ARN"]
    del outputs["ProductionEndpoint"]
    template = {
        "Parameters": {"SlackApproverIds": {"Type": "String", "Default": ""}},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=BROKEN_STACK, TemplateBody=json.dumps(template))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MMEDEPLOY_"))}
    env.update(
        AWS_ACCESS_KEY_ID=local_stack.aws_access_key_id,
        AWS_SECRET_ACCESS_KEY=local_stack.aws_secret_access_key,
        AWS_ENDPOINT_URL=local_stack.aws_endpoint_url,
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        MMEDEPLOY_CONFIG_DIR=str(tmp_path / "config"),
        MMEDEPLOY_USER_STATE_DIR=str(tmp_path / "no-stacks-recorded"),
        MMEDEPLOY_API_TOKEN=local_stack.api_token,
        MMEDEPLOY_ADMIN_TOKEN=local_stack.admin_token,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    try:
        added = doctor(
            "target", "add", "broken", "--stack", BROKEN_STACK, "--region", local_stack.region, cwd=tmp_path, env=env
        )
        assert added[0] == 0, added[2]

        # WHEN doctor checks it
        code, document, printed = doctor("doctor", "--target", "broken", "--json", cwd=tmp_path, env=env)

        # THEN it exits 1 and names exactly the broken checks, each with its fix; the rest pass
        assert code == 1, printed
        found = statuses(document)
        broken = {
            "stack outputs",
            "production endpoint",
            "secret slack-signing-secret",
            "Slack approvers",
            "secret slack-bot-token",  # the local stack never sets one: on a deployed target, a placeholder
        }
        assert {name for name, status in found.items() if status == "failed"} == broken, printed
        assert {name for name, status in found.items() if status == "ok"} == set(found) - broken, printed
        checks = {check["check"]: check for check in document["checks"]}
        assert "ProductionEndpoint" in checks["stack outputs"]["detail"]
        assert "put-secret-value" in checks["secret slack-signing-secret"]["fix"]
        assert placeholder not in printed and local_stack.admin_token not in printed
        code, _, printed = doctor("doctor", "--target", "broken", cwd=tmp_path, env=env)
        assert code == 1 and "FAILED" in printed and "5 of 13 checks failed" in printed, printed
    finally:
        cloudformation.delete_stack(StackName=BROKEN_STACK)
        secretsmanager.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
