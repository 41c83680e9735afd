"""``mmedeploy doctor``: a target checked end to end, one :class:`Finding` per check, each with the
fix to apply where it fails. Every check runs whatever the others found (one failing, or raising,
stops none of the rest), with short timeouts (:data:`CLIENT_CONFIG`, :data:`HTTP_TIMEOUT_S`).

The checks, in order (:data:`CHECKS`):

- **stack outputs**: the outputs the CLI and these checks read (:data:`NEEDED_OUTPUTS`) are there;
- **staging bucket events**: the staging bucket sends EventBridge notifications (the pipeline
  starts from them): ``GetBucketNotificationConfiguration`` has ``EventBridgeConfiguration``;
- **staging endpoint**, **production endpoint**: ``DescribeEndpoint`` says ``InService``;
- **deploy state machine**, **promote state machine**: ``DescribeStateMachine`` says ``ACTIVE``;
- **secret api-tokens**, **secret slack-signing-secret**, **secret slack-bot-token**: each holds a
  real value, not the placeholder the template creates it with (:func:`placeholder_reason`). Values
  are read with ``GetSecretValue`` where the caller may, never printed; where it may not, the check
  says it could not check (``skipped``);
- **API health**: ``GET /health`` answers 200 ``{"status": "ok"}`` (no token);
- **invoke token**: ``GET /models?limit=1`` with it answers 200 (an invoke-scoped read);
- **admin token**: accepted by an admin route in a way that changes nothing: ``DELETE
  /models/{PROBE_MODEL}/canary`` of a model that cannot have a canary (its name is reserved for
  this probe): past the authorizer the API answers 404 (no canary, nothing ended); 401 (unknown
  token) or 403 (no admin scope) is the authorizer refusing it;
- **Slack approvers**: the stack's ``SlackApproverIds`` parameter is not empty (empty allows nobody
  to approve).

A finding is ``ok``, ``failed`` (with its fix) or ``skipped`` (could not be checked, and why).
:func:`run_checks` is what the command runs; the AWS clients and the HTTP client are handed in, so
the unit tests replace them with fakes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from botocore.config import Config

from mmedeploy.admin_api import ApiAnswer
from mmedeploy.target import REQUIRED_OUTPUTS, DeploymentTarget
from mmedeploy.target_config import LOCAL

Status = Literal["ok", "failed", "skipped"]
# A stopped or unreachable service must answer within seconds, not botocore's 60 s and retries.
CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
HTTP_TIMEOUT_S = 10.0
# What the CLI reads (REQUIRED_OUTPUTS) and what these checks read.
NEEDED_OUTPUTS: tuple[str, ...] = (
    *REQUIRED_OUTPUTS,
    "StagingEndpoint",
    "ProductionEndpoint",
    "DeployModelStateMachine",
    "PromoteModelStateMachine",
    "ApiTokens",
    "SlackSigningSecret",
    "SlackBotToken",
)
# A model name no one can register a canary under (the admin token's probe ends nothing).
PROBE_MODEL = "mmedeploy-doctor-probe"
UPDATE_STACK = "update the stack with the current template (make package, then deploy it: docs/aws.md)"
SECRETS_DOC = "docs/aws.md, Secrets"
# The template's placeholder for the API tokens' secret (infra/template.yaml, ApiTokens).
API_TOKENS_PLACEHOLDER = '{"tokens": []}'
SLACK_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32}$")  # what Slack issues: 32 hex digits

ClientFactory = Callable[[str], Any]  # service name -> a boto3 client
Http = Callable[[str, str, Mapping[str, str]], ApiAnswer]  # (method, url, headers) -> the answer


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str  # what was found (never a secret or token)
    fix: str = ""  # what to do, where it failed

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def failed(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "failed", detail, fix)


def skipped(check: str, detail: str) -> Finding:
    return Finding(check, "skipped", detail)


@dataclass(frozen=True)
class Doctor:
    """The checks of one target. ``stack`` is its CloudFormation stack's name (for its parameters),
    ``client`` makes the AWS clients, ``http`` sends the API requests."""

    target: DeploymentTarget
    stack: str
    client: ClientFactory
    http: Http

    # -- the stack --------------------------------------------------------------------------------
    def outputs(self) -> Finding:
        check = "stack outputs"
        missing = [key for key in NEEDED_OUTPUTS if not self.target.outputs.get(key)]
        if missing:
            return failed(check, f"stack {self.stack} lacks {', '.join(missing)}", UPDATE_STACK)
        return ok(check, f"{len(NEEDED_OUTPUTS)} needed outputs present")

    def _output(self, check: str, key: str) -> str | Finding:
        value = self.target.outputs.get(key)
        return value if value else failed(check, f"no stack output {key}", UPDATE_STACK)

    def bucket_events(self) -> Finding:
        check = "staging bucket events"
        bucket = self._output(check, "StagingBucket")
        if isinstance(bucket, Finding):
            return bucket
        configuration = self.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" in configuration:
            return ok(check, f"{bucket} sends its events to EventBridge")
        return failed(
            check,
            f"{bucket} does not send its events to EventBridge: an upload starts no pipeline",
            f"{UPDATE_STACK} (its StagingBucket turns them on), or: aws s3api put-bucket-notification-configuration "
            f"--bucket {bucket} --notification-configuration '{{\"EventBridgeConfiguration\": {{}}}}'",
        )

    def endpoint(self, which: str) -> Finding:
        check = f"{which} endpoint"
        name = self._output(check, f"{which.capitalize()}Endpoint")
        if isinstance(name, Finding):
            return name
        described = self.client("sagemaker").describe_endpoint(EndpointName=name)
        status = described.get("EndpointStatus", "unknown")
        if status == "InService":
            return ok(check, f"{name} InService")
        if status in ("Creating", "Updating", "SystemUpdating"):
            fix = f"wait for it: aws sagemaker wait endpoint-in-service --endpoint-name {name}"
        else:
            reason = described.get("FailureReason")
            fix = (
                f"{'its failure: ' + reason + '; ' if reason else ''}fix the cause and {UPDATE_STACK} "
                "(docs/troubleshooting.md)"
            )
        return failed(check, f"{name} is {status}, not InService", fix)

    def state_machine(self, which: str) -> Finding:
        check = f"{which} state machine"
        arn = self._output(check, f"{which.capitalize()}ModelStateMachine")
        if isinstance(arn, Finding):
            return arn
        status = self.client("stepfunctions").describe_state_machine(stateMachineArn=arn).get("status", "ACTIVE")
        if status == "ACTIVE":
            return ok(check, f"{arn.rsplit(':', 1)[-1]} ACTIVE")
        return failed(check, f"{arn.rsplit(':', 1)[-1]} is {status}, not ACTIVE", UPDATE_STACK)

    # -- the secrets ------------------------------------------------------------------------------
    def secret(self, key: str) -> Finding:
        label = {
            "ApiTokens": "api-tokens",
            "SlackSigningSecret": "slack-signing-secret",
            "SlackBotToken": "slack-bot-token",
        }
        check = f"secret {label[key]}"
        arn = self._output(check, key)
        if isinstance(arn, Finding):
            return arn
        if key == "SlackBotToken" and self.target.name == LOCAL:
            return ok(check, "not used: the local stack's Slack is its local sink")
        from botocore.exceptions import ClientError

        try:
            value = self.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString", "")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("AccessDeniedException", "AccessDenied"):
                return skipped(check, f"could not check: your credentials may not read it (GetSecretValue: {code})")
            raise
        reason = placeholder_reason(key, value)
        if reason:
            name = arn.rsplit(":", 1)[-1]
            return failed(
                check, reason, f"set it: aws secretsmanager put-secret-value --secret-id {name} ... ({SECRETS_DOC})"
            )
        return ok(check, "set (its value is not shown)")

    # -- the API ----------------------------------------------------------------------------------
    def _url(self, path: str) -> str | None:
        return f"{self.target.api_url.rstrip('/')}/{path}" if self.target.api_url else None

    def api_health(self) -> Finding:
        check = "API health"
        url = self._url("health")
        if url is None:
            return failed(check, "no stack output EndpointURL", UPDATE_STACK)
        answer = self.http("GET", url, {})
        if answer.http_status == 200 and answer.document.get("status") == "ok":
            return ok(check, f"{url} answers ok")
        return failed(
            check,
            f"{url} answered {answer.http_status}: {answer.error}",
            "look at the API function's logs (mmedeploy logs, or CloudWatch) and docs/troubleshooting.md",
        )

    def _with_token(self, check: str, kind: str, method: str, path: str) -> ApiAnswer | Finding:
        """``method path`` sent with the target's ``kind`` token, or the finding that it cannot be."""
        token = self.target.api_token if kind == "api" else self.target.admin_token
        if not token:
            variable = "MMEDEPLOY_API_TOKEN" if kind == "api" else "MMEDEPLOY_ADMIN_TOKEN"
            return failed(check, "not set", f"mmedeploy target login {self.target.name} (or set {variable})")
        url = self._url(path)
        if url is None:
            return failed(check, "no stack output EndpointURL", UPDATE_STACK)
        return self.http(method, url, {"Authorization": f"Bearer {token}"})

    def invoke_token(self) -> Finding:
        check = "invoke token"
        answer = self._with_token(check, "api", "GET", "models?limit=1")
        if isinstance(answer, Finding):
            return answer
        if answer.http_status == 200:
            return ok(check, "accepted for an invoke-scoped read (GET /models)")
        return failed(check, _refusal(answer, "invoke"), _token_fix(self.target.name, "invoke"))

    def admin_token(self) -> Finding:
        check = "admin token"
        # an admin route that changes nothing: the probe model has no canary to end
        answer = self._with_token(check, "admin", "DELETE", f"models/{PROBE_MODEL}/canary")
        if isinstance(answer, Finding):
            return answer
        if answer.http_status in (401, 403):
            return failed(check, _refusal(answer, "admin"), _token_fix(self.target.name, "admin"))
        if answer.http_status >= 500:
            return failed(check, f"the admin route answered {answer.http_status}: {answer.error}", "see API health")
        return ok(check, f"accepted by an admin route (DELETE /models/{PROBE_MODEL}/canary: {answer.http_status})")

    # -- Slack ------------------------------------------------------------------------------------
    def approvers(self) -> Finding:
        check = "Slack approvers"
        stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
        if "SlackApproverIds" not in parameters:
            return failed(check, f"stack {self.stack} has no parameter SlackApproverIds", UPDATE_STACK)
        ids = [i for i in parameters["SlackApproverIds"].split(",") if i.strip()]
        if ids:
            return ok(check, f"{len(ids)} approver(s)")
        return failed(
            check,
            "SlackApproverIds is empty: nobody may approve a version in Slack",
            f"update the stack with SlackApproverIds=U...,U... (aws cloudformation update-stack --stack-name "
            f"{self.stack} --use-previous-template --parameters ParameterKey=SlackApproverIds,ParameterValue=U1,U2 "
            "and UsePreviousValue=true for the others; docs/aws.md)",
        )


def placeholder_reason(key: str, value: str) -> str | None:
    """Why ``value`` of the secret output ``key`` is still the template's placeholder, or None.

    The template creates ``ApiTokens`` as ``{"tokens": []}`` and the Slack secrets with
    ``GenerateSecretString`` (32 letters and digits); docs/aws.md has them set to what Slack issues:
    a signing secret of 32 hex digits and a bot token starting ``xoxb-``."""
    if key == "ApiTokens":
        try:
            tokens = json.loads(value).get("tokens")
        except (ValueError, AttributeError):
            return 'not the JSON docs/aws.md shows ({"tokens": [...]})'
        return None if tokens else f"still the placeholder {API_TOKENS_PLACEHOLDER}: no token can call the API"
    if key == "SlackSigningSecret":
        return (
            None if SLACK_SIGNING_SECRET.match(value) else "still the generated placeholder, not Slack's signing secret"
        )
    if key == "SlackBotToken":
        return None if value.startswith("xoxb-") else "still the generated placeholder, not a Slack bot token (xoxb-)"
    return None


def _refusal(answer: ApiAnswer, scope: str) -> str:
    if answer.http_status == 401:
        return "refused (401): the API does not know this token"
    if answer.http_status == 403:
        return f"refused (403): the token lacks the {scope} scope"
    return f"the API answered {answer.http_status}: {answer.error}"


def _token_fix(target: str, scope: str) -> str:
    return (
        f"log in again with a token whose hash is in the api-tokens secret with the {scope} scope: "
        f"mmedeploy target login {target} ({SECRETS_DOC})"
    )


Check = Callable[[Doctor], Finding]
CHECKS: tuple[tuple[str, Check], ...] = (
    ("stack outputs", Doctor.outputs),
    ("staging bucket events", Doctor.bucket_events),
    ("staging endpoint", lambda d: d.endpoint("staging")),
    ("production endpoint", lambda d: d.endpoint("production")),
    ("deploy state machine", lambda d: d.state_machine("deploy")),
    ("promote state machine", lambda d: d.state_machine("promote")),
    ("secret api-tokens", lambda d: d.secret("ApiTokens")),
    ("secret slack-signing-secret", lambda d: d.secret("SlackSigningSecret")),
    ("secret slack-bot-token", lambda d: d.secret("SlackBotToken")),
    ("API health", Doctor.api_health),
    ("invoke token", Doctor.invoke_token),
    ("admin token", Doctor.admin_token),
    ("Slack approvers", Doctor.approvers),
)


def run_checks(doctor: Doctor) -> list[Finding]:
    """Every check, each whatever the others found: one that raises is a failed finding saying why."""
    findings = []
    for name, check in CHECKS:
        try:
            findings.append(check(doctor))
        except Exception as exc:  # noqa: BLE001 - a check that cannot run fails alone
            findings.append(failed(name, _error(exc), _error_fix(exc)))
    return findings


def _error_fix(exc: Exception) -> str:
    from mmedeploy.admin_api import ApiUnreachable

    if isinstance(exc, ApiUnreachable):
        return "the API does not answer: check the stack's EndpointURL output and its API (docs/troubleshooting.md)"
    return "check the target's credentials, region and stack (mmedeploy target show)"


def _error(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"could not check: {error.get('Code')}: {error.get('Message')}"
    return f"could not check: {type(exc).__name__}: {exc}"


def aws_client_factory(target: DeploymentTarget) -> ClientFactory:
    """The target's clients with :data:`CLIENT_CONFIG`'s short timeouts."""

    def client(service: str) -> Any:
        return target.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=target.endpoint_url,
            config=CLIENT_CONFIG,
        )

    return client


def http_client(method: str, url: str, headers: Mapping[str, str]) -> ApiAnswer:
    from mmedeploy.admin_api import request

    return request(method, url, None, dict(headers), HTTP_TIMEOUT_S)
