"""``mmedeploy doctor``'s checks (mmedeploy.doctor), each passing and failing on fakes of the AWS
clients and the API; every check runs whatever the others found; the command's lines, JSON and
exit code."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from mmedeploy.admin_api import ApiAnswer, ApiUnreachable
from mmedeploy.cli import main
from mmedeploy.doctor import CHECKS, NEEDED_OUTPUTS, PROBE_MODEL, Doctor, Finding, placeholder_reason, run_checks
from mmedeploy.target import DeploymentTarget

API = "https://api.example.com/api/"
API_TOKEN, ADMIN_TOKEN = "mmd_invoke-secret-token", "mmd_admin-secret-token"
SIGNING = "0123456789abcdef0123456789abcdef"
OUTPUTS = {
    "StagingBucket": "staging-bucket",
    "RegistryTable": "registry",
    "EndpointURL": API,
    "StagingEndpoint": "staging-mme",
    "ProductionEndpoint": "production-mme",
    "DeployModelStateMachine": "arn:aws:states:eu-west-1:1:stateMachine:mmedeploy-staging-deploy-model",
    "PromoteModelStateMachine": "arn:aws:states:eu-west-1:1:stateMachine:mmedeploy-staging-promote-model",
    "ApiTokens": "arn:aws:secretsmanager:eu-west-1:1:secret:mmedeploy/staging/api-tokens-abc",
    "SlackSigningSecret": "arn:aws:secretsmanager:eu-west-1:1:secret:mmedeploy/staging/slack-signing-secret-abc",
    "SlackBotToken": "arn:aws:secretsmanager:eu-west-1:1:secret:mmedeploy/staging/slack-bot-token-abc",
}


def denied(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, operation)


class FakeAws:
    """The answers of a healthy stack; a test changes what it breaks."""

    def __init__(self) -> None:
        self.notification: dict[str, Any] = {"EventBridgeConfiguration": {}}
        self.endpoints = {
            "staging-mme": {"EndpointStatus": "InService"},
            "production-mme": {"EndpointStatus": "InService"},
        }
        self.machines = {
            arn: "ACTIVE" for arn in (OUTPUTS["DeployModelStateMachine"], OUTPUTS["PromoteModelStateMachine"])
        }
        self.secrets: dict[str, str | Exception] = {
            OUTPUTS["ApiTokens"]: json.dumps({"tokens": [{"name": "x", "sha256": "0" * 64, "scopes": ["invoke"]}]}),
            OUTPUTS["SlackSigningSecret"]: SIGNING,
            OUTPUTS["SlackBotToken"]: "xoxb-1-2-3",
        }
        self.approvers = "U1,U2"
        self.broken: set[str] = set()  # services whose every call raises

    def __call__(self, service: str) -> Any:
        if service in self.broken:
            return Raising()
        return self

    def get_bucket_notification_configuration(self, Bucket: str) -> dict[str, Any]:
        assert Bucket == "staging-bucket"
        return self.notification

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return self.endpoints[EndpointName]

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        return {"status": self.machines[stateMachineArn]}

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        value = self.secrets[SecretId]
        if isinstance(value, Exception):
            raise value
        return {"SecretString": value}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        assert StackName == "mmedeploy-staging"
        return {"Stacks": [{"Parameters": [{"ParameterKey": "SlackApproverIds", "ParameterValue": self.approvers}]}]}


class Raising:
    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "the token expired"}}, name)

        return call


class FakeApi:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], ApiAnswer | Exception] = {
            ("GET", f"{API}health"): ApiAnswer(200, {"status": "ok"}),
            ("GET", f"{API}models?limit=1"): ApiAnswer(200, {"models": []}),
            ("DELETE", f"{API}models/{PROBE_MODEL}/canary"): ApiAnswer(404, {"error": "no canary"}),
        }
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, method: str, url: str, headers: Mapping[str, str]) -> ApiAnswer:
        self.sent.append((method, url, dict(headers)))
        token = headers.get("Authorization", "")
        if url.endswith("models?limit=1") and token != f"Bearer {API_TOKEN}":
            return ApiAnswer(401, {"message": "Unauthorized"})
        if "canary" in url and token != f"Bearer {ADMIN_TOKEN}":
            return ApiAnswer(403, {"message": "User is not authorized"})
        answer = self.answers[(method, url)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def target(**changes: Any) -> DeploymentTarget:
    made = DeploymentTarget(
        description="target staging (stack mmedeploy-staging in eu-west-1)",
        region="eu-west-1",
        staging_bucket="staging-bucket",
        registry_table="registry",
        session=boto3.session.Session(region_name="eu-west-1"),
        api_url=API,
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        name="staging",
        outputs=dict(OUTPUTS),
    )
    return replace(made, **changes)


@pytest.fixture
def aws() -> FakeAws:
    return FakeAws()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def check(name: str, aws: FakeAws, api: FakeApi, deployed: DeploymentTarget | None = None) -> Finding:
    findings = {f.check: f for f in run_checks(Doctor(deployed or target(), "mmedeploy-staging", aws, api))}
    return findings[name]


def test_a_healthy_target_passes_every_check(aws: FakeAws, api: FakeApi) -> None:
    findings = run_checks(Doctor(target(), "mmedeploy-staging", aws, api))
    assert [f.check for f in findings] == [name for name, _ in CHECKS]
    assert all(f.status == "ok" for f in findings), findings


def test_a_missing_output_fails_its_checks_and_not_the_others(aws: FakeAws, api: FakeApi) -> None:
    outputs = {k: v for k, v in OUTPUTS.items() if k != "ProductionEndpoint"}
    findings = {f.check: f for f in run_checks(Doctor(target(outputs=outputs), "mmedeploy-staging", aws, api))}
    assert findings["stack outputs"].failed and "ProductionEndpoint" in findings["stack outputs"].detail
    assert "update the stack" in findings["stack outputs"].fix
    assert findings["production endpoint"].failed
    assert [name for name, f in findings.items() if f.failed] == ["stack outputs", "production endpoint"]
    assert set(NEEDED_OUTPUTS) <= set(OUTPUTS)


def test_bucket_without_eventbridge_notifications_fails(aws: FakeAws, api: FakeApi) -> None:
    aws.notification = {"QueueConfigurations": []}
    finding = check("staging bucket events", aws, api)
    assert finding.failed and "EventBridgeConfiguration" in finding.fix


@pytest.mark.parametrize(("status", "fix"), [("Creating", "wait endpoint-in-service"), ("Failed", "its failure: OOM")])
def test_an_endpoint_not_in_service_fails(aws: FakeAws, api: FakeApi, status: str, fix: str) -> None:
    aws.endpoints["staging-mme"] = {"EndpointStatus": status, "FailureReason": "OOM"}
    finding = check("staging endpoint", aws, api)
    assert finding.failed and status in finding.detail and fix in finding.fix
    assert check("production endpoint", aws, api).status == "ok"


def test_a_state_machine_not_active_fails(aws: FakeAws, api: FakeApi) -> None:
    aws.machines[OUTPUTS["PromoteModelStateMachine"]] = "DELETING"
    assert check("promote state machine", aws, api).failed
    assert check("deploy state machine", aws, api).status == "ok"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ApiTokens", '{"tokens": []}'),
        ("ApiTokens", "not json"),
        ("SlackSigningSecret", "Ab3dEf9hIjKlMnOpQrStUvWxYz012345"),  # GenerateSecretString's kind
        ("SlackBotToken", "Ab3dEf9hIjKlMnOpQrStUvWxYz012345"),
    ],
)
def test_a_secret_left_at_its_placeholder_fails_without_printing_it(
    aws: FakeAws, api: FakeApi, key: str, value: str
) -> None:
    aws.secrets[OUTPUTS[key]] = value
    name = {"ApiTokens": "api-tokens", "SlackSigningSecret": "slack-signing-secret", "SlackBotToken": "slack-bot-token"}
    finding = check(f"secret {name[key]}", aws, api)
    assert finding.failed and "put-secret-value" in finding.fix
    assert value not in json.dumps(finding.as_json()) or value == '{"tokens": []}'


def test_real_secret_values_pass_and_are_not_shown(aws: FakeAws, api: FakeApi) -> None:
    for key in ("ApiTokens", "SlackSigningSecret", "SlackBotToken"):
        assert placeholder_reason(key, str(aws.secrets[OUTPUTS[key]])) is None
    findings = run_checks(Doctor(target(), "mmedeploy-staging", aws, api))
    assert SIGNING not in json.dumps([f.as_json() for f in findings])


def test_a_secret_the_caller_may_not_read_is_skipped(aws: FakeAws, api: FakeApi) -> None:
    aws.secrets[OUTPUTS["SlackBotToken"]] = denied("GetSecretValue")
    finding = check("secret slack-bot-token", aws, api)
    assert finding.status == "skipped" and "could not check" in finding.detail


def test_the_local_stack_needs_no_bot_token(aws: FakeAws, api: FakeApi) -> None:
    aws.secrets[OUTPUTS["SlackBotToken"]] = "generated"
    assert check("secret slack-bot-token", aws, api, target(name="local")).status == "ok"


def test_an_unhealthy_or_unreachable_api_fails(aws: FakeAws, api: FakeApi) -> None:
    api.answers[("GET", f"{API}health")] = ApiAnswer(502, {"message": "Internal server error"})
    assert check("API health", aws, api).failed
    api.answers[("GET", f"{API}health")] = ApiUnreachable(f"cannot reach {API}health: refused")
    finding = check("API health", aws, api)
    assert finding.failed and "does not answer" in finding.fix


def test_tokens_are_checked_with_a_read_and_an_admin_route_that_changes_nothing(aws: FakeAws, api: FakeApi) -> None:
    run_checks(Doctor(target(), "mmedeploy-staging", aws, api))
    sent = {(method, url): headers for method, url, headers in api.sent}
    assert sent[("GET", f"{API}models?limit=1")]["Authorization"] == f"Bearer {API_TOKEN}"
    assert sent[("DELETE", f"{API}models/{PROBE_MODEL}/canary")]["Authorization"] == f"Bearer {ADMIN_TOKEN}"


@pytest.mark.parametrize(
    ("changes", "name", "said"),
    [
        ({"api_token": "mmd_unknown"}, "invoke token", "401"),
        ({"api_token": None}, "invoke token", "not set"),
        ({"admin_token": API_TOKEN}, "admin token", "lacks the admin scope"),
        ({"admin_token": None}, "admin token", "not set"),
    ],
)
def test_a_refused_or_missing_token_fails(
    aws: FakeAws, api: FakeApi, changes: dict[str, Any], name: str, said: str
) -> None:
    finding = check(name, aws, api, target(**changes))
    assert finding.failed and said in finding.detail and "target login staging" in finding.fix
    assert API_TOKEN not in finding.detail + finding.fix


def test_no_approvers_fails(aws: FakeAws, api: FakeApi) -> None:
    aws.approvers = ""
    finding = check("Slack approvers", aws, api)
    assert finding.failed and "SlackApproverIds" in finding.fix


def test_a_check_that_raises_fails_alone(aws: FakeAws, api: FakeApi) -> None:
    aws.broken.add("sagemaker")
    findings = run_checks(Doctor(target(), "mmedeploy-staging", aws, api))
    failures = [f for f in findings if f.failed]
    assert [f.check for f in failures] == ["staging endpoint", "production endpoint"]
    assert "ExpiredToken" in failures[0].detail


def run_cli(monkeypatch: pytest.MonkeyPatch, aws: FakeAws, api: FakeApi, *args: str) -> tuple[int, str]:
    import mmedeploy.doctor

    monkeypatch.setattr(mmedeploy.doctor, "aws_client_factory", lambda target: aws)
    monkeypatch.setattr(mmedeploy.doctor, "http_client", api)
    out = io.StringIO()
    code = main(["doctor", *args], target=target(), out=Console(file=out, width=200), err=Console(file=io.StringIO()))
    return code, out.getvalue()


def test_the_command_prints_a_line_per_check_and_exits_1_on_a_failure(
    monkeypatch: pytest.MonkeyPatch, aws: FakeAws, api: FakeApi
) -> None:
    monkeypatch.setattr("mmedeploy.local.STACK_NAME", "mmedeploy-staging")
    code, printed = run_cli(monkeypatch, aws, api)
    assert code == 0 and "every check passed" in printed
    assert sum(line.strip().startswith("ok ") for line in printed.splitlines()) == len(CHECKS)

    aws.approvers = ""
    code, printed = run_cli(monkeypatch, aws, api, "--json")
    document = json.loads(printed)
    assert code == 1 and document["ok"] is False
    assert [c["check"] for c in document["checks"] if c["status"] == "failed"] == ["Slack approvers"]
    assert API_TOKEN not in printed and ADMIN_TOKEN not in printed and SIGNING not in printed
