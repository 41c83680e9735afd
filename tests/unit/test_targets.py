"""Targets (issue 18): the config in the user's config directory, which target a command acts on,
resolution from a CloudFormation stack's outputs (in-process moto: no network), the running local
stack found from any folder, and the tokens (an in-memory keyring, the 0600 file without one)."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from moto import mock_aws
from rich.console import Console

from mmedeploy import cli
from mmedeploy.local import running
from mmedeploy.local.stack import StackInfo
from mmedeploy.target import (
    TargetUnavailable,
    chosen_target,
    deployed_target,
    find_local_stack,
    resolve_target,
)
from mmedeploy.target_config import LOCAL, TargetConfig, TargetConfigError, TargetEntry, config_dir
from mmedeploy.tokens import Token, TokenStore

OUTPUTS = {
    "StagingBucket": "acme-staging-models",
    "RegistryTable": "mmedeploy-staging-registry",
    "EndpointURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/",
    "AlarmTopic": "arn:aws:sns:eu-west-1:123456789012:mmedeploy-staging-alarms",
}
API_TOKEN, ADMIN_TOKEN = "mmd_invoke-secret-value", "mmd_admin-secret-value"


class MemoryKeyring(KeyringBackend):
    """An OS keyring stand-in: in memory, viable."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "config"
    monkeypatch.setenv("MMEDEPLOY_CONFIG_DIR", str(directory))
    monkeypatch.setenv("MMEDEPLOY_USER_STATE_DIR", str(tmp_path / "user-state"))
    for name in ("MMEDEPLOY_TARGET", "MMEDEPLOY_API_TOKEN", "MMEDEPLOY_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return directory


def _use_keyring(backend: Any) -> Iterator[Any]:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    yield from _use_keyring(MemoryKeyring())


@pytest.fixture
def no_keyring() -> Iterator[Any]:
    yield from _use_keyring(fail.Keyring())


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out=Console(file=out, width=200), err=Console(file=err, width=200))
    return code, out.getvalue(), err.getvalue()


# -- the config ------------------------------------------------------------------------------------
def test_targets_are_kept_in_the_config_directory(config: Path) -> None:
    targets = TargetConfig.load()
    targets.add(TargetEntry("staging", "mmedeploy-staging", "eu-west-1", "ml-staging"))
    targets.add(TargetEntry("prod", "mmedeploy-prod"))
    targets.use("staging")
    targets.save()

    again = TargetConfig.load()
    assert again.path == config / "targets.json"
    assert again.targets["staging"] == TargetEntry("staging", "mmedeploy-staging", "eu-west-1", "ml-staging")
    assert again.targets["prod"] == TargetEntry("prod", "mmedeploy-prod") and again.current == "staging"
    # removing the target in use falls back to the local stack; 'use local' does too
    again.remove("staging")
    assert again.current is None
    again.use("prod")
    again.use(LOCAL)
    assert again.current is None


@pytest.mark.parametrize("name", [LOCAL, "bad name", "", "-dash", "x" * 64])
def test_target_names_are_checked(config: Path, name: str) -> None:
    with pytest.raises(TargetConfigError):
        TargetConfig.load().add(TargetEntry(name, "stack"))


def test_a_name_is_not_taken_twice_unless_replaced(config: Path) -> None:
    targets = TargetConfig.load()
    targets.add(TargetEntry("staging", "one"))
    with pytest.raises(TargetConfigError, match="--replace"):
        targets.add(TargetEntry("staging", "two"))
    targets.add(TargetEntry("staging", "two"), replace=True)
    assert targets.get("staging").stack == "two"
    with pytest.raises(TargetConfigError, match="target add nope --stack"):
        targets.get("nope")


def test_the_config_directory_is_the_platforms_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("MMEDEPLOY_CONFIG_DIR", raising=False)
    assert config_dir() == Path(platformdirs.user_config_dir("mmedeploy", appauthor=False))
    monkeypatch.setenv("MMEDEPLOY_CONFIG_DIR", "/somewhere/else")
    assert config_dir() == Path("/somewhere/else")


# -- which target ----------------------------------------------------------------------------------
def test_which_target_a_command_acts_on(config: Path) -> None:
    default = Path(".mmedeploy")
    assert chosen_target(default, None, {}) == LOCAL  # nothing chosen: the local stack
    targets = TargetConfig.load()
    targets.add(TargetEntry("staging", "s"))
    targets.use("staging")
    targets.save()
    assert chosen_target(default, None, {}) == "staging"  # target use
    assert chosen_target(default, None, {"MMEDEPLOY_TARGET": "prod"}) == "prod"  # the environment over it
    assert chosen_target(Path("/tmp/other"), None, {"MMEDEPLOY_TARGET": "prod"}) == LOCAL  # an explicit --state-dir
    assert chosen_target(Path("/tmp/other"), "dev", {"MMEDEPLOY_TARGET": "prod"}) == "dev"  # --target over all


def test_target_is_taken_before_and_after_the_command() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["--target", "a", "status", "m"]).target == "a"
    assert parser.parse_args(["status", "m", "--target", "b"]).target == "b"
    assert parser.parse_args(["status", "m"]).target is None
    assert parser.parse_args(["--target", "a", "models"]).target == "a"


def test_an_unknown_target_says_how_to_add_it(config: Path) -> None:
    with pytest.raises(TargetUnavailable, match="mmedeploy target add nope --stack STACK_NAME"):
        resolve_target(name="nope", environ={})


# -- the CloudFormation path -----------------------------------------------------------------------
@pytest.fixture
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A profile ``ml`` in a temporary AWS config (region eu-west-1) and credentials file."""
    (tmp_path / "aws-config").write_text("[profile ml]\nregion = eu-west-1\n")
    (tmp_path / "aws-credentials").write_text("[ml]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return "ml"


def create_stack(name: str, outputs: dict[str, str], region: str = "eu-west-1") -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=region).create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_a_deployed_target_is_resolved_from_its_stack_outputs(config: Path, aws_profile: str) -> None:
    with mock_aws():
        create_stack("mmedeploy-staging", OUTPUTS)
        entry = TargetEntry("staging", "mmedeploy-staging", profile=aws_profile)
        target = deployed_target(entry, {"MMEDEPLOY_API_TOKEN": API_TOKEN})

    assert (target.name, target.region) == ("staging", "eu-west-1")  # the profile's region
    assert target.staging_bucket == OUTPUTS["StagingBucket"] and target.registry_table == OUTPUTS["RegistryTable"]
    assert target.api_url == OUTPUTS["EndpointURL"] and target.outputs["AlarmTopic"] == OUTPUTS["AlarmTopic"]
    # boto3's chain: the profile's credentials, no endpoint or credential of the CLI's own
    assert target.endpoint_url is None and target.session.get_credentials().access_key == "AKIAPROFILE"
    assert (target.api_token, target.admin_token) == (API_TOKEN, None)
    assert API_TOKEN not in repr(target) and "stack mmedeploy-staging in eu-west-1" in target.description


def test_a_stack_without_the_outputs_is_named_with_what_it_lacks(config: Path, aws_profile: str) -> None:
    with mock_aws():
        create_stack("old", {"StagingBucket": "b"})
        with pytest.raises(TargetUnavailable, match=r"lacks the output\(s\) RegistryTable, EndpointURL"):
            deployed_target(TargetEntry("old", "old", profile=aws_profile), {})


def test_an_unknown_stack_or_profile_says_so(config: Path, aws_profile: str) -> None:
    with mock_aws():
        with pytest.raises(TargetUnavailable, match="no CloudFormation stack missing in eu-west-1"):
            deployed_target(TargetEntry("x", "missing", profile=aws_profile), {})
        with pytest.raises(TargetUnavailable, match="no AWS profile nobody"):
            deployed_target(TargetEntry("x", "missing", profile="nobody"), {})


def test_target_add_checks_the_stack_then_commands_use_it(config: Path, aws_profile: str) -> None:
    with mock_aws():
        create_stack("mmedeploy-staging", OUTPUTS)
        code, out, err = run("target", "add", "staging", "--stack", "mmedeploy-staging", "--profile", aws_profile)
        assert code == 0, err
        assert f"API {OUTPUTS['EndpointURL']}" in out and "mmedeploy target login staging" in out
        code, _, err = run("target", "add", "broken", "--stack", "nope", "--profile", aws_profile)
        assert code == 2 and "no CloudFormation stack nope" in err and "nothing was added" in err
    assert set(TargetConfig.load().targets) == {"staging"}
    code, out, _ = run("target", "use", "staging")
    assert code == 0
    code, out, _ = run("target", "list")
    assert code == 0
    assert "* staging" in out and "  local" in out and "profile ml" in out


# -- the local stack, found from any folder --------------------------------------------------------
def fake_stack(state_dir: Path, pid: int | None = None) -> StackInfo:
    info = StackInfo(
        api_url="http://127.0.0.1:4001",
        aws_endpoint_url="http://127.0.0.1:4000",
        mme_url="http://127.0.0.1:4003",
        slack_url="http://127.0.0.1:4002",
        region="us-east-1",
        staging_bucket="s",
        production_bucket="p",
        staging_endpoint="se",
        production_endpoint="pe",
        slack_signing_secret="signing",
        slack_approver_ids=["U1"],
        api_token="local-api",
        admin_token="local-admin",
        registry_table="r",
        idempotency_table="i",
        aws_access_key_id="AKIALOCALADMIN",
        aws_secret_access_key="local-admin-secret",
        pid=pid or os.getpid(),
        started_at=0.0,
        ready_seconds=0.0,
    )
    state_dir.mkdir(parents=True)
    (state_dir / "stack.json").write_text(info.model_dump_json())
    running.record(state_dir, info.pid)
    return info


def test_the_running_local_stack_is_found_from_any_folder(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "project" / ".mmedeploy"
    fake_stack(state_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    seen: list[tuple[Any, ...]] = []

    def outputs(session: Any, stack: str, endpoint_url: str | None = None, client_config: Any = None) -> dict[str, str]:
        seen.append((stack, endpoint_url, session.get_credentials().access_key))
        return {"StagingBucket": "s", "RegistryTable": "r", "EndpointURL": "http://127.0.0.1:4001"}

    monkeypatch.setattr("mmedeploy.target.stack_outputs", outputs)
    assert find_local_stack() == state_dir.resolve()
    target = resolve_target(environ={})
    # through the same CloudFormation path: the emulator's outputs, as the local administrator
    assert seen == [("mmedeploy-dev", "http://127.0.0.1:4000", "AKIALOCALADMIN")]
    assert target.name == LOCAL and str(state_dir.resolve()) in target.description
    # what Slack would know, from stack.json: the local stack's approve/decline sign as Slack does
    assert (target.slack_url, target.slack_signing_secret, target.slack_approver_ids) == (
        "http://127.0.0.1:4002",
        "signing",
        ("U1",),
    )
    assert "signing" not in repr(target) and "local-admin" not in repr(target)
    assert (target.api_url, target.api_token, target.endpoint_url) == (
        "http://127.0.0.1:4001",
        "local-api",
        "http://127.0.0.1:4000",
    )


def test_several_running_stacks_need_a_state_dir(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stack(tmp_path / "a" / ".mmedeploy")
    fake_stack(tmp_path / "b" / ".mmedeploy")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetUnavailable, match=r"2 local stacks are running .* --state-dir DIR"):
        find_local_stack()
    assert find_local_stack(tmp_path / "a" / ".mmedeploy") == tmp_path / "a" / ".mmedeploy"


def test_a_stopped_stacks_record_is_dropped(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir = tmp_path / "gone" / ".mmedeploy"
    fake_stack(state_dir)
    (state_dir / "stack.json").unlink()  # stopped without `down` (killed)
    monkeypatch.chdir(tmp_path)
    assert running.running_state_dirs() == []
    assert not list((tmp_path / "user-state" / "stacks").glob("*.json"))
    with pytest.raises(TargetUnavailable, match="no local stack is running"):
        find_local_stack()


def test_the_emulator_answers_every_output_of_the_local_stack() -> None:
    from mmedeploy.local.provision import publish_outputs

    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Topic": {"Value": "t"}}}
        cloudformation.create_stack(StackName="mmedeploy-dev", TemplateBody=json.dumps(template))
        publish_outputs("us-east-1", {"EndpointURL": "http://127.0.0.1:4751", "StagingBucket": "mmedeploy-staging"})
        stack = cloudformation.describe_stacks(StackName="mmedeploy-dev")["Stacks"][0]
    answered = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
    assert answered == {"EndpointURL": "http://127.0.0.1:4751", "StagingBucket": "mmedeploy-staging"}


# -- tokens ----------------------------------------------------------------------------------------
def test_tokens_go_to_the_keyring_where_one_exists(config: Path, memory_keyring: MemoryKeyring) -> None:
    store = TokenStore()
    assert "keyring" in store.store("staging", {"api": API_TOKEN, "admin": ADMIN_TOKEN})
    assert memory_keyring.passwords == {
        ("mmedeploy", "staging/api"): API_TOKEN,
        ("mmedeploy", "staging/admin"): ADMIN_TOKEN,
    }
    assert not (config / "tokens.json").exists()
    assert store.get("staging", "api") == Token(API_TOKEN, "keyring")
    store.forget("staging")
    assert memory_keyring.passwords == {} and store.get("staging", "admin") == Token(None, "not set")


def test_without_a_keyring_tokens_go_to_a_file_only_the_user_can_read(config: Path, no_keyring: Any) -> None:
    store = TokenStore()
    store.store("staging", {"api": API_TOKEN})
    store.store("staging", {"admin": ADMIN_TOKEN})  # the invoke token is kept
    store.store("prod", {"api": "other"})
    path = config / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o700
    assert store.get("staging", "api") == Token(API_TOKEN, f"file {path}")
    assert store.get("staging", "admin").value == ADMIN_TOKEN
    store.forget("staging")
    assert store.get("staging", "api").value is None and store.get("prod", "api").value == "other"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unreadable_token_file_says_so_without_its_content(config: Path, no_keyring: Any, aws_profile: str) -> None:
    config.mkdir(parents=True)
    (config / "tokens.json").write_text(f"{API_TOKEN} not json")
    with pytest.raises(OSError, match="cannot read the stored tokens") as raised:
        TokenStore().get("staging", "api")
    assert API_TOKEN not in str(raised.value)
    with mock_aws():
        create_stack("mmedeploy-staging", OUTPUTS)
        with pytest.raises(TargetUnavailable, match="target staging: cannot read the stored tokens"):
            deployed_target(TargetEntry("staging", "mmedeploy-staging", profile=aws_profile), {})


def test_environment_tokens_come_first_and_are_never_in_a_repr(config: Path, no_keyring: Any) -> None:
    TokenStore().store("staging", {"api": "stored"})
    store = TokenStore(environ={"MMEDEPLOY_API_TOKEN": API_TOKEN})
    token = store.get("staging", "api")
    assert token == Token(API_TOKEN, "environment (MMEDEPLOY_API_TOKEN)") and API_TOKEN not in repr(token)


def test_login_then_show_never_prints_a_token(
    config: Path, no_keyring: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    targets = TargetConfig.load()
    targets.add(TargetEntry("staging", "mmedeploy-staging", "eu-west-1"))
    targets.save()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{API_TOKEN}\n{ADMIN_TOKEN}\n"))  # a pipe: one a line
    code, out, err = run("target", "login", "staging")
    assert code == 0, err
    assert "stored the invoke token and admin token of staging" in out and "readable only by you" in out

    monkeypatch.setattr("mmedeploy.target.stack_outputs", lambda *args, **kwargs: OUTPUTS)
    shown = [run("target", "show", "staging"), run("target", "show", "staging", "--json"), run("target", "list")]
    for code, out, err in shown:
        assert code == 0, err
        assert API_TOKEN not in out + err + caplog.text and ADMIN_TOKEN not in out + err + caplog.text
    assert "invoke token               set (file " in shown[0][1]
    assert json.loads(shown[1][1])["tokens"]["admin"]["set"] is True

    code, out, _ = run("target", "remove", "staging")
    assert code == 0 and TokenStore().get("staging", "api").value is None


def test_login_refuses_the_local_stack_and_nothing_given(
    config: Path, no_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("target", "login", LOCAL)[0] == 2
    targets = TargetConfig.load()
    targets.add(TargetEntry("staging", "s"))
    targets.save()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    code, _, err = run("target", "login", "staging")
    assert code == 2 and "no token given" in err and not (config / "tokens.json").exists()
