"""IAM enforced in the local AWS emulator: credentials it never issued are refused, and each
function's calls are allowed or denied by its own execution role, as on AWS.

What the stack does with it, in this order (each step needs the one before)::

    server.start()                                   # moto.server.ThreadedMotoServer, unenforced
    admin = create_administrator(iam)                # any credentials work until the next line
    enforcement = enforce_iam(endpoint_url, admin)   # from here on every request must be signed
    ...provision the template with admin-signed clients...
    roles = execution_role_policies(template, resolve) | state_machine_role_policies(template, resolve)
    arn = create_execution_role(iam, name, roles[logical_id])   # one per function / state machine
    credentials = assume(sts, arn, function_name)    # -> the function process's environment
    ...
    enforcement.restore()                            # on stop (tests: before the next test runs)

How enforcement works in moto 5.2.5 (``moto/core/authorization.py``, ``moto/iam/access_control.py``):
every request first counts against ``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`` (infinite by
default); once ``ActionAuthenticatorMixin.request_count`` reaches it, each request's SigV4
signature is checked against credentials moto issued (IAM user access keys, or STS AssumeRole
credentials with their session token) and the identity's policies are evaluated. Both are read
per request from this process's modules, so setting the count to 0 at any time, before or after
the server starts, switches enforcement on for every moto server (and ``mock_aws``) in the
process. :func:`enforce_iam` does that, and puts the previous values back on ``restore()``.

moto's evaluation differs from AWS's in ways a least-privilege template trips over; the local
workarounds are all here (:data:`AWS_AUTHORIZATION`, :data:`S3_ACTION_NAMES`, the copy source,
:data:`SFN_CLIENT_MODULES`, ``LOCAL_ONLY_*``, :data:`AWS_MANAGED_POLICIES`), and each case is in
``docs/local-stack.md`` ("IAM enforcement in moto") with a minimal reproduction.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from mmedeploy.deploy.policy_check import SAM_POLICY_TEMPLATES, document_statements, expand_sam_policy_template
from mmedeploy.deploy.template import (
    SERVERLESS_FUNCTION,
    SERVERLESS_STATE_MACHINE,
    effective_property,
    is_intrinsic,
    properties,
    resources,
    resources_of_type,
)

MOTO_VERSION = "5.2.5"  # the internals patched below were read in this version

ADMIN_USER = "mmedeploy-local-admin"
ADMIN_POLICY = "mmedeploy-local-admin-everything"
POLICY_VERSION = "2012-10-17"

# Local-only additions, named so that they cannot be mistaken for the template's.
# The trust statement: on AWS the service principal (lambda.amazonaws.com) assumes the role;
# locally the stack host does it on the service's behalf, as the local administrator.
LOCAL_ONLY_TRUST_SID = "LocalOnlyStackHostAssumesRoleForService"
# AWS managed policies (SAM's basic execution role, X-Ray) are copied in as inline policies with
# this prefix: moto does not load AWS's managed policies unless MOTO_IAM_LOAD_MANAGED_POLICIES is
# set, and then it loads about a thousand.
LOCAL_ONLY_MANAGED_COPY = "aws-managed-copy."

PolicyDocument = dict[str, Any]
Resolve = Callable[[Any], Any]
"""Turns one intrinsic (``{"Ref": ...}``, ``{"Fn::GetAtt": ...}``, ``{"Fn::Sub": "text"}``) into its
value, as the stack resolved the template; raises for what it cannot resolve."""


class RoleSpecError(ValueError):
    """The template gives a function a role this module cannot reproduce; the message says why."""


@functools.cache
def emulator_client_config() -> Any:
    """What every client of the emulator signs with: uncompressed bodies. moto verifies a request's
    SigV4 signature over its body *after* undoing ``Content-Encoding: gzip``, and botocore gzips a
    PutMetricData body over 10 KiB before signing it, so such a request fails with
    SignatureDoesNotMatch once IAM is enforced (the local MME's metrics and the EMF lines of a busy
    API did). docs/local-stack.md tells users' scripts to do the same."""
    from botocore.config import Config

    return Config(disable_request_compression=True)


class Credentials(BaseModel):
    """Credentials the emulator issued: an IAM user's access key, or an assumed role's session."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """The variables a process (a function's runtime, the CLI) reads its credentials from."""
        found = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            found["AWS_SESSION_TOKEN"] = self.session_token
        return found

    def client(self, service: str, region: str, endpoint_url: str, config: Any = None) -> Any:
        """A boto3 client signing with these credentials (with :func:`emulator_client_config`)."""
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            config=emulator_client_config().merge(config) if config else emulator_client_config(),
        )


class RoleSpec(BaseModel):
    """An execution role as AWS would have it for one function or state machine, resolved."""

    model_config = ConfigDict(frozen=True)

    for_logical_id: str  # the function or state machine
    role_logical_id: str | None  # its AWS::IAM::Role in the template; None: SAM generates the role
    trusted_services: tuple[str, ...]  # the trust policy's service principals
    policies: dict[str, PolicyDocument]  # inline policies: the template's own, resolved
    managed_policies: dict[str, PolicyDocument]  # AWS managed policy ARN -> its document

    def statements(self) -> list[dict[str, Any]]:
        """Every statement the role grants (for assertions)."""
        documents = [*self.policies.values(), *self.managed_policies.values()]
        return [statement for document in documents for statement in document["Statement"]]

    def conditioned_statements(self) -> list[dict[str, Any]]:
        """Statements with a ``Condition``: moto 5.2.5 ignores conditions in identity policies (an
        Allow then grants unconditionally, a Deny denies unconditionally), so the stack should say
        so when this is not empty. No role of the template has one today."""
        return [statement for statement in self.statements() if "Condition" in statement]


# -- the roles of the template ------------------------------------------------------------------

LAMBDA_SERVICE = "lambda.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
_MANAGED = "arn:aws:iam::aws:policy/"
BASIC_EXECUTION_ROLE = _MANAGED + "service-role/AWSLambdaBasicExecutionRole"
XRAY_WRITE_ONLY = _MANAGED + "AWSXrayWriteOnlyAccess"
VPC_ACCESS_EXECUTION_ROLE = _MANAGED + "service-role/AWSLambdaVPCAccessExecutionRole"
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# The AWS managed policies SAM attaches, as AWS publishes them (default versions).
AWS_MANAGED_POLICIES: Mapping[str, PolicyDocument] = {
    BASIC_EXECUTION_ROLE: {
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    },
    XRAY_WRITE_ONLY: {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": ["*"],
            }
        ],
    },
    VPC_ACCESS_EXECUTION_ROLE: {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    *_LOGS,
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                "Resource": "*",
            }
        ],
    },
}
# Event sources for which SAM adds a managed policy to the function's role (not modelled here).
_POLLED_EVENT_SOURCES = frozenset({"SQS", "Kinesis", "DynamoDB", "MSK", "MQ", "SelfManagedKafka", "DocumentDB"})


def execution_role_policies(template: Mapping[str, Any], resolve: Resolve) -> dict[str, RoleSpec]:
    """``{function logical id: its execution role}`` for every ``AWS::Serverless::Function``.

    A function with ``Role`` gets that ``AWS::IAM::Role`` of the template (its ``Policies``, its
    ``ManagedPolicyArns``, and ``AWS::IAM::Policy`` resources attached to it). Without ``Role``,
    the role SAM generates: AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess for ``Tracing:
    Active``, AWSLambdaVPCAccessExecutionRole for ``VpcConfig``, the dead-letter target, and
    ``Policies`` (inline documents, SAM policy templates expanded by
    :func:`mmedeploy.deploy.policy_check.expand_sam_policy_template`, managed policies).
    ``Globals.Function`` applies. :class:`RoleSpecError` for what cannot be reproduced.
    """
    found = {}
    for lid, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        role = effective_property(template, resource, "Role")
        if role is not None:
            found[lid] = _template_role(template, lid, role, resolve)
            continue
        managed = [BASIC_EXECUTION_ROLE]
        if effective_property(template, resource, "Tracing") == "Active":
            managed.append(XRAY_WRITE_ONLY)
        if effective_property(template, resource, "VpcConfig") is not None:
            managed.append(VPC_ACCESS_EXECUTION_ROLE)
        polled = sorted({str(e.get("Type")) for e in _event_sources(resource)} & _POLLED_EVENT_SOURCES)
        if polled:
            raise RoleSpecError(f"{lid}: SAM adds a managed policy for {', '.join(polled)} events; not modelled here")
        extra = _dead_letter_statements(effective_property(template, resource, "DeadLetterQueue"))
        found[lid] = _sam_role(template, lid, resource, resolve, LAMBDA_SERVICE, managed, extra)
    return found


def state_machine_role_policies(template: Mapping[str, Any], resolve: Resolve) -> dict[str, RoleSpec]:
    """``{state machine logical id: its role}`` for every ``AWS::Serverless::StateMachine``:
    its ``Role``, or the role SAM generates from ``Policies`` (plus AWSXrayWriteOnlyAccess for
    ``Tracing: {Enabled: true}``). ``Logging`` is not modelled (:class:`RoleSpecError`)."""
    found = {}
    for lid, resource in resources_of_type(template, SERVERLESS_STATE_MACHINE).items():
        props = properties(resource)
        if "Role" in props:
            found[lid] = _template_role(template, lid, props["Role"], resolve)
            continue
        if "Logging" in props:
            raise RoleSpecError(f"{lid}: SAM adds log-delivery permissions for Logging; not modelled here")
        tracing = props.get("Tracing")
        managed = [XRAY_WRITE_ONLY] if isinstance(tracing, dict) and tracing.get("Enabled") is True else []
        found[lid] = _sam_role(template, lid, resource, resolve, STATES_SERVICE, managed, [])
    return found


def _event_sources(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = properties(resource).get("Events")
    return [e for e in events.values() if isinstance(e, dict)] if isinstance(events, dict) else []


def _dead_letter_statements(dead_letter: Any) -> list[dict[str, Any]]:
    if not isinstance(dead_letter, dict):
        return []
    action = {"SQS": "sqs:SendMessage", "SNS": "sns:Publish"}.get(str(dead_letter.get("Type")))
    if action is None:
        raise RoleSpecError(f"DeadLetterQueue of type {dead_letter.get('Type')!r} is not modelled here")
    return [{"Effect": "Allow", "Action": action, "Resource": dead_letter.get("TargetArn")}]


def _sam_role(
    template: Mapping[str, Any],
    lid: str,
    resource: Mapping[str, Any],
    resolve: Resolve,
    service: str,
    managed: list[str],
    extra: list[dict[str, Any]],
) -> RoleSpec:
    policies: dict[str, PolicyDocument] = {}
    value = properties(resource).get("Policies", [])
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        name = f"{lid}RolePolicy{index}"  # SAM's naming
        if isinstance(item, dict) and "Statement" in item:
            policies[name] = _document(document_statements(item), resolve)
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in SAM_POLICY_TEMPLATES:
            ((template_name, parameters),) = item.items()
            policies[name] = _document(expand_sam_policy_template(template_name, parameters), resolve)
        else:
            managed_name, document = _managed_policy(template, lid, item, resolve)
            if document is None:
                managed.append(managed_name)
            else:
                policies[managed_name] = document
    if extra:
        policies[f"{lid}RolePolicyDeadLetter"] = _document(tuple(extra), resolve)
    assume = properties(resource).get("AssumeRolePolicyDocument")
    services = _trusted_services(assume) if assume is not None else (service,)
    return RoleSpec(
        for_logical_id=lid,
        role_logical_id=None,
        trusted_services=services,
        policies=policies,
        managed_policies={arn: AWS_MANAGED_POLICIES[arn] for arn in dict.fromkeys(managed)},
    )


def _template_role(template: Mapping[str, Any], lid: str, role: Any, resolve: Resolve) -> RoleSpec:
    role_id = _role_logical_id(role)
    found = resources(template).get(role_id or "")
    if role_id is None or found is None or found.get("Type") != "AWS::IAM::Role":
        raise RoleSpecError(f"{lid}: Role {json.dumps(role)} is not an AWS::IAM::Role of the template")
    props = properties(found)
    policies: dict[str, PolicyDocument] = {}
    for index, policy in enumerate(props.get("Policies") or []):
        name = policy.get("PolicyName") if isinstance(policy, dict) else None
        document = policy.get("PolicyDocument") if isinstance(policy, dict) else None
        policies[str(name) if name else f"{role_id}Policy{index}"] = _document(document_statements(document), resolve)
    for policy_id, policy in resources_of_type(template, "AWS::IAM::Policy").items():
        attached = properties(policy).get("Roles") or []
        if any(_role_logical_id(item) == role_id for item in attached):
            name = properties(policy).get("PolicyName") or policy_id
            policies[str(name)] = _document(document_statements(properties(policy).get("PolicyDocument")), resolve)
    managed: list[str] = []
    for arn in props.get("ManagedPolicyArns") or []:
        managed_name, document = _managed_policy(template, lid, arn, resolve)
        if document is None:
            managed.append(managed_name)
        else:
            policies[managed_name] = document
    return RoleSpec(
        for_logical_id=lid,
        role_logical_id=role_id,
        trusted_services=_trusted_services(props.get("AssumeRolePolicyDocument")),
        policies=policies,
        managed_policies={arn: AWS_MANAGED_POLICIES[arn] for arn in managed},
    )


def _role_logical_id(role: Any) -> str | None:
    """``X`` of ``{"Fn::GetAtt": ["X", "Arn"]}`` (or ``"X.Arn"``) or ``{"Ref": "X"}``."""
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        parts = target if isinstance(target, list) else str(target).split(".", 1)
        return str(parts[0]) if parts and list(parts[1:]) == ["Arn"] else None
    if isinstance(role, dict) and isinstance(role.get("Ref"), str):
        return str(role["Ref"])
    return None


def _managed_policy(
    template: Mapping[str, Any], lid: str, item: Any, resolve: Resolve
) -> tuple[str, PolicyDocument | None]:
    """(AWS managed policy ARN, None), or (name, document) of the template's own managed policy."""
    if isinstance(item, dict) and isinstance(item.get("Ref"), str):
        own = resources(template).get(item["Ref"])
        if own is not None and own.get("Type") == "AWS::IAM::ManagedPolicy":
            document = properties(own).get("PolicyDocument")
            return str(item["Ref"]), _document(document_statements(document), resolve)
    value = _resolved(item, resolve)
    tail = value.split(":iam::aws:policy/", 1)[-1] if isinstance(value, str) else None  # any partition
    for arn in AWS_MANAGED_POLICIES:
        if tail in (arn.split(":policy/", 1)[1], arn.rsplit("/", 1)[1]):
            return arn, None
    known = ", ".join(AWS_MANAGED_POLICIES)
    raise RoleSpecError(f"{lid}: managed policy {json.dumps(item)} is neither the template's nor one of {known}")


def _trusted_services(document: Any) -> tuple[str, ...]:
    services: list[str] = []
    for statement in document_statements(document):
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        service = principal.get("Service") if isinstance(principal, dict) else None
        services += [service] if isinstance(service, str) else [s for s in service or [] if isinstance(s, str)]
    return tuple(dict.fromkeys(services))


def _document(statements: tuple[Any, ...], resolve: Resolve) -> PolicyDocument:
    kept = [{k: v for k, v in s.items() if k != "SAM"} for s in statements if isinstance(s, dict)]
    return {"Version": POLICY_VERSION, "Statement": _resolved(kept, resolve)}


def _resolved(value: Any, resolve: Resolve) -> Any:
    """``value`` with every intrinsic resolved. ``Fn::Sub`` with a variable map (SAM's policy
    templates) is reduced to the plain-text form first, so ``resolve`` only needs that form."""
    if isinstance(value, list):
        return [_resolved(item, resolve) for item in value]
    if not isinstance(value, dict):
        return value
    sub = value.get("Fn::Sub") if len(value) == 1 else None
    if isinstance(sub, list) and len(sub) == 2 and isinstance(sub[0], str) and isinstance(sub[1], dict):
        text = sub[0]
        for name, variable in sub[1].items():
            text = text.replace("${" + name + "}", str(_resolved(variable, resolve)))
        return resolve({"Fn::Sub": text}) if "${" in text else text
    if is_intrinsic(value):
        return resolve(value)
    return {key: _resolved(item, resolve) for key, item in value.items()}


# -- identities in the emulator -----------------------------------------------------------------


def create_administrator(iam_client: Any, user_name: str = ADMIN_USER) -> Credentials:
    """The local administrator (an IAM user allowed ``*`` on ``*``) and a fresh access key for it.

    Idempotent: the user and its policy are created or kept; earlier access keys are deleted, so
    the returned key is the user's only one (a caller signing with an earlier key may make the
    call: its key is deleted last). Call it before :func:`enforce_iam` (any credentials
    work then), or afterwards with the administrator's own credentials.
    """
    with contextlib.suppress(iam_client.exceptions.EntityAlreadyExistsException):
        iam_client.create_user(UserName=user_name)
    everything = {"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam_client.put_user_policy(UserName=user_name, PolicyName=ADMIN_POLICY, PolicyDocument=json.dumps(everything))
    # IAM allows two keys per user: make room, create the new one, then retire the rest (the
    # caller's own key, if it is one of them, last: its request is authorized before it goes).
    old = sorted(iam_client.list_access_keys(UserName=user_name)["AccessKeyMetadata"], key=lambda k: k["CreateDate"])
    while len(old) > 1:
        iam_client.delete_access_key(UserName=user_name, AccessKeyId=old.pop(0)["AccessKeyId"])
    key = iam_client.create_access_key(UserName=user_name)["AccessKey"]
    for retired in old:
        iam_client.delete_access_key(UserName=user_name, AccessKeyId=retired["AccessKeyId"])
    return Credentials(access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])


def local_trust_policy(spec: RoleSpec, trusted_principal: str) -> PolicyDocument:
    """The role's trust policy locally: its service principals, and the stack host (the local
    administrator, ``trusted_principal``) that assumes the role on the services' behalf.

    One statement naming both: moto 5.2.5 fails AssumeRole with a 500 (TypeError) on a statement
    whose principal has no ``AWS`` key, so the template's own trust statements cannot be kept.
    """
    principal: dict[str, Any] = {"AWS": trusted_principal}
    if spec.trusted_services:
        principal["Service"] = list(spec.trusted_services)
    statement = {"Sid": LOCAL_ONLY_TRUST_SID, "Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def create_execution_role(iam_client: Any, name: str, spec: RoleSpec, *, trusted_principal: str | None = None) -> str:
    """Create (or bring up to date) the role ``name`` as ``spec`` describes; its ARN.

    Inline policies: the spec's own under their names, AWS managed ones as copies named
    ``aws-managed-copy.<Name>``; any other inline policy of the role is removed. The trust policy
    is :func:`local_trust_policy` for ``trusted_principal`` (default: the caller of ``iam_client``,
    which should be the local administrator).
    """
    principal = trusted_principal or iam_client.get_user()["User"]["Arn"]
    trust = json.dumps(local_trust_policy(spec, principal))
    try:
        arn: str = iam_client.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Description=f"local execution role of {spec.for_logical_id}",
        )["Role"]["Arn"]
    except iam_client.exceptions.EntityAlreadyExistsException:
        iam_client.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        arn = iam_client.get_role(RoleName=name)["Role"]["Arn"]
    wanted = dict(spec.policies)
    wanted.update({LOCAL_ONLY_MANAGED_COPY + a.rsplit("/", 1)[-1]: d for a, d in spec.managed_policies.items()})
    for stale in set(iam_client.list_role_policies(RoleName=name)["PolicyNames"]) - set(wanted):
        iam_client.delete_role_policy(RoleName=name, PolicyName=stale)
    for policy_name, document in wanted.items():
        iam_client.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    return arn


_SESSION_NAME = re.compile(r"[^\w+=,.@-]")


def assume(sts_client: Any, role_arn: str, session_name: str, duration_s: int = 3600) -> Credentials:
    """Credentials of ``role_arn``, as Lambda gets them for a function's execution environment.

    ``session_name`` is made valid for STS (``[\\w+=,.@-]``, 2 to 64 characters). moto 5.2.5 never
    expires assumed-role credentials; AWS does after ``duration_s``.
    """
    name = (_SESSION_NAME.sub("-", session_name) or "session")[:64].ljust(2, "-")
    found = sts_client.assume_role(RoleArn=role_arn, RoleSessionName=name, DurationSeconds=duration_s)["Credentials"]
    return Credentials(
        access_key_id=found["AccessKeyId"],
        secret_access_key=found["SecretAccessKey"],
        session_token=found["SessionToken"],
    )


# -- enforcement --------------------------------------------------------------------------------

Check = tuple[str, str]
"""(IAM action, resource ARN): one authorization AWS makes for a request."""


class _Operation(Protocol):
    def __call__(self, request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None: ...


def _arn(request: Any, service: str, resource: str) -> str:
    return f"arn:{request.partition}:{service}:{request.region}:{request.current_account}:{resource}"


def _dynamodb(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    def table(name: Any) -> str:
        return str(name) if str(name).startswith("arn:") else _arn(request, "dynamodb", f"table/{name}")

    items = params.get("TransactItems") or []
    if operation == "TransactWriteItems":  # moto: dynamodb:TransactWriteItems, no such IAM action
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [(f"dynamodb:{kinds[k]}", table(v.get("TableName"))) for i in items for k, v in i.items() if k in kinds]
    if operation == "TransactGetItems":
        return [("dynamodb:GetItem", table(i["Get"].get("TableName"))) for i in items if "Get" in i]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems") or {}]
    if "TableName" in params:
        index = params.get("IndexName") if operation in ("Query", "Scan") else None
        return [(f"dynamodb:{operation}", table(params["TableName"]) + (f"/index/{index}" if index else ""))]
    if "ResourceArn" in params:
        return [(f"dynamodb:{operation}", str(params["ResourceArn"]))]
    return None


def _eventbridge(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    if operation != "PutEvents":
        return None
    buses = [str(entry.get("EventBusName") or "default") for entry in params.get("Entries") or []]
    return [
        ("events:PutEvents", b if b.startswith("arn:") else _arn(request, "events", f"event-bus/{b}")) for b in buses
    ]


def _machine_of_token(request: Any, token: str) -> str | None:
    """The state machine whose execution issued ``token`` (moto's Step Functions interpreter)."""
    from moto.stepfunctions.responses import get_backend

    for machine in list(get_backend(request.current_account, request.region).state_machines):
        for execution in list(getattr(machine, "executions", [])):
            pool = getattr(getattr(getattr(execution, "exec_worker", None), "env", None), "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return str(machine.arn)
    return None


def _states(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        # Authorized on the state machine that issued the token. A token no execution issued is
        # only authenticated: Step Functions answers InvalidToken or TaskTimedOut, as on AWS.
        machine = _machine_of_token(request, str(params.get("taskToken", "")))
        return [(f"states:{operation}", machine)] if machine else []
    for key in ("stateMachineArn", "executionArn"):
        if isinstance(params.get(key), str):
            return [(f"states:{operation}", params[key])]
    return None


def _secretsmanager(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    secret_id = params.get("SecretId")
    if not isinstance(secret_id, str):
        return None
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[request.current_account][request.region].secrets.get(secret_id)
    if secret is not None:  # a name resolves to the ARN with its random suffix, as on AWS
        return [(f"secretsmanager:{operation}", str(secret.arn))]
    arn = secret_id if secret_id.startswith("arn:") else _arn(request, "secretsmanager", f"secret:{secret_id}")
    return [(f"secretsmanager:{operation}", arn)]


_LOG_STREAM_OPERATIONS = frozenset({"CreateLogStream", "DeleteLogStream", "PutLogEvents", "GetLogEvents"})


def _logs(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    group, stream = params.get("logGroupName"), params.get("logStreamName")
    if not isinstance(group, str):
        return None
    arn = _arn(request, "logs", f"log-group:{group}")
    if operation in _LOG_STREAM_OPERATIONS and isinstance(stream, str):
        arn += f":log-stream:{stream}"
    return [(f"logs:{operation}", arn)]


def _cloudwatch(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    return [(f"cloudwatch:{operation}", "*")]  # moto: monitoring:<Operation> (the signing name)


_FUNCTION_PATH = re.compile(r"/functions/([^/]+)/invocations")


def _lambda(request: Any, operation: str, params: dict[str, Any]) -> list[Check] | None:
    match = _FUNCTION_PATH.search(str(getattr(request, "raw_path", "") or request.path))
    if operation != "Invoke" or match is None:
        return None
    name = unquote(match.group(1))
    arn = name if name.startswith("arn:") else _arn(request, "lambda", f"function:{name}")
    qualifier = request.querystring.get("Qualifier")
    if qualifier and arn.count(":") == 6:
        arn += f":{qualifier[0]}"
    return [("lambda:InvokeFunction", arn)]  # moto: lambda:Invoke, no such IAM action


# What AWS authorizes, by moto service name: the IAM action(s) and resource ARN(s) of each
# operation the stack's functions use. moto 5.2.5 itself checks every operation of these services
# against the resource "*" (so no statement scoped to an ARN ever matches) and under the name
# "<signing name>:<operation>". An operation returning None is left to moto's own check.
AWS_AUTHORIZATION: Mapping[str, _Operation] = {
    "dynamodb": _dynamodb,
    "events": _eventbridge,
    "stepfunctions": _states,
    "secretsmanager": _secretsmanager,
    "logs": _logs,
    "cloudwatch": _cloudwatch,
    "awslambda": _lambda,
}
# S3's own check computes bucket and object ARNs; these of its action names differ from AWS's.
S3_ACTION_NAMES: Mapping[str, str] = {"HeadBucket": "ListBucket"}
# Errors of services that answer in JSON, by moto's (XML) error code: AWS's codes.
_JSON_ERROR_CODES: Mapping[str, str] = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def aws_checks(request: Any) -> list[Check] | None:
    """What AWS would authorize for this moto request (a ``BaseResponse`` after ``setup_class``):
    a list of checks (empty: authenticate only), or None to leave the request to moto's check."""
    operation_checks = AWS_AUTHORIZATION.get(str(request.service_name))
    if operation_checks is None:
        return None
    try:
        params = json.loads(request.raw_body or b"{}") if request.headers.get("X-Amz-Target") else {}
        found = operation_checks(request, str(request._get_action()), params if isinstance(params, dict) else {})
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # malformed: moto's own check, then moto's own validation error
    return None if found is None else list(dict.fromkeys(found))


@functools.cache
def _protocol(service: str) -> str:
    from moto.core.utils import get_service_model

    return str(get_service_model(service).protocol)


def _in_service_protocol(request: Any, error: Any, resource: str) -> Any:
    """moto raises authorization errors as XML whatever the service; JSON services get JSON, as
    on AWS (otherwise botocore reports the code as "403")."""
    from moto.core.exceptions import JsonRESTError

    if _protocol(str(request.boto3_service_name)) not in ("json", "rest-json"):
        return error
    message = str(error.message) + (f" on resource: {resource}" if resource != "*" else "")
    return JsonRESTError(_JSON_ERROR_CODES.get(str(error.error_type), str(error.error_type)), message)


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return bool(ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT)


@functools.cache
def _signed_as_sent() -> type[Any]:
    """moto's ``IAMRequest``, verifying the signature over the body as it was sent.

    moto signs ``body or data`` to compare signatures; for a request with an empty body and no
    query string ``data`` is the request's *headers*, so every such request (Lambda's Invoke
    without a payload, REST GETs) fails with a signature mismatch. ``data`` is the payload only
    for a form post (the query protocols: IAM, STS), where the framework consumed the body.
    """
    from moto.iam.access_control import IAMRequest

    class SignedAsSent(IAMRequest):
        def _create_aws_request(self) -> Any:
            form = "x-www-form-urlencoded" in str(self._headers.get("Content-Type", ""))
            if not self._body and not form:
                self._data = {}
            return super()._create_aws_request()

    return SignedAsSent


@functools.cache
def _request_for(action: str) -> type[Any]:
    """:func:`_signed_as_sent` evaluating ``action`` instead of the name moto gives the operation."""

    class AwsAction(_signed_as_sent()):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._action = action

    return AwsAction


@functools.cache
def _authenticate_only() -> type[Any]:
    class AuthenticateOnly(_signed_as_sent()):  # type: ignore[misc]
        def check_action_permitted(self, resource: str) -> None:
            return None

    return AuthenticateOnly


def _authorize_as_aws(original: Callable[..., None]) -> Callable[..., None]:
    from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError

    def authorize(self: Any, resource: str = "*") -> None:
        if not _enforcing():
            original(self, resource)
            return
        checks = aws_checks(self)
        checked = resource
        try:
            if checks is None:  # moto's own check, but with the signature verified as sent
                self._authenticate_and_authorize_action(_signed_as_sent(), resource)
            elif not checks:
                self._authenticate_and_authorize_action(_authenticate_only(), "*")
            for action, arn in checks or []:
                checked = arn
                self._authenticate_and_authorize_action(_request_for(action), arn)
        except (AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError) as error:
            raise _in_service_protocol(self, error, checked) from error

    return authorize


def _copy_source(header: str) -> tuple[str, str, str | None]:
    """(bucket, key, version) of ``x-amz-copy-source`` (``/bucket/key?versionId=v``, URL-encoded)."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    version = query.partition("versionId=")[2] or None
    return bucket, key, version


def _authorize_s3_as_aws(original: Callable[..., None]) -> Callable[..., None]:
    def authorize(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        if not _enforcing():
            original(self, bucket_name, key_name)
            return
        named = self.data.get("Action")
        self.data["Action"] = S3_ACTION_NAMES.get(str(named), named)
        try:
            original(self, bucket_name, key_name)
            source = self.headers.get("x-amz-copy-source") if key_name else None
            if source:  # CopyObject, UploadPartCopy: AWS also needs read access to the source
                bucket, key, version = _copy_source(str(source))
                self.data["Action"] = "GetObjectVersion" if version else "GetObject"
                original(self, bucket, key)
        finally:
            self.data["Action"] = named

    return authorize


# Modules of moto's Step Functions interpreter that call other services through boto_client_for.
_SFN = "moto.stepfunctions.parser.asl"
_STATE_TASK = f"{_SFN}.component.state.exec.state_task"
SFN_CLIENT_MODULES: tuple[str, ...] = (
    f"{_SFN}.utils.boto_client",
    f"{_STATE_TASK}.lambda_eval_utils",
    *(
        f"{_STATE_TASK}.service.state_task_service_{name}"
        for name in ("unsupported", "glue", "events", "ecs", "sqs", "sfn", "dynamodb", "batch", "sns", "aws_sdk")
    ),
    f"{_SFN}.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    f"{_SFN}.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
)


def _state_machine_clients(endpoint_url: str, administrator: Credentials) -> Callable[..., Any]:
    """``boto_client_for`` signing as the execution's role. moto's own signs with the fixed keys
    ``ak``/``sk`` (refused once IAM is enforced) and sends to ``localhost:$MOTO_PORT``."""
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    assumed: dict[str, Credentials] = {}
    lock = threading.Lock()
    timeout = TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    config = Config(
        parameter_validation=False,
        retries={"max_attempts": 0, "total_max_attempts": 1},
        connect_timeout=timeout,
        read_timeout=timeout,
    )

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        credentials = administrator
        if role_arn:
            with lock:
                if role_arn not in assumed:
                    sts = administrator.client("sts", region, endpoint_url)
                    assumed[role_arn] = assume(sts, str(role_arn), "states-execution")
                credentials = assumed[role_arn]
        return credentials.client(service, region, endpoint_url, config)

    return boto_client_for


@dataclass
class _Patch:
    target: Any
    name: str
    previous: Any  # None: the attribute was inherited (or absent) and is deleted on restore

    def undo(self) -> None:
        if self.previous is None:
            delattr(self.target, self.name)
        else:
            setattr(self.target, self.name, self.previous)


def _patch(target: Any, name: str, value: Any) -> _Patch:
    patch = _Patch(target, name, vars(target).get(name))
    setattr(target, name, value)
    return patch


class IamEnforcement:
    """IAM enforcement switched on in this process; :meth:`restore` (or leaving the ``with``
    block) switches it off and puts moto's settings and code back as they were."""

    def __init__(self, previous_count: float, previous_requests: int, patches: list[_Patch]) -> None:
        self._previous = (previous_count, previous_requests)
        self._patches = patches
        self.active = True

    def restore(self) -> None:
        global _active
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        with _lock:
            if not self.active:
                return
            for patch in reversed(self._patches):
                patch.undo()
            settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = self._previous
            self.active = False
            _active = None

    def __enter__(self) -> IamEnforcement:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.restore()


_lock = threading.Lock()
_active: IamEnforcement | None = None


def enforce_iam(endpoint_url: str, administrator: Credentials) -> IamEnforcement:
    """Switch IAM enforcement on for every moto server in this process, from the next request.

    Sets ``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`` and ``ActionAuthenticatorMixin.request_count``
    to 0 (enforced from the next request on), and installs the local workarounds: requests are
    authorized as AWS would (:data:`AWS_AUTHORIZATION`, :data:`S3_ACTION_NAMES`, the copy source),
    refusals of JSON services are JSON, and Step Functions calls other services at
    ``endpoint_url`` as the execution's role (assumed by ``administrator``). Then checks that
    ``administrator`` is accepted. One enforcement at a time per process (:class:`RuntimeError`).
    """
    global _active
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse

    with _lock:
        if _active is not None:
            raise RuntimeError("IAM enforcement is already on in this process")
        patches = [
            _patch(
                BaseResponse,
                "_authenticate_and_authorize_normal_action",
                _authorize_as_aws(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action),
            ),
            _patch(
                BaseResponse,
                "_authenticate_and_authorize_s3_action",
                _authorize_s3_as_aws(ActionAuthenticatorMixin._authenticate_and_authorize_s3_action),
            ),
        ]
        clients = _state_machine_clients(endpoint_url, administrator)
        for name in SFN_CLIENT_MODULES:
            module = importlib.import_module(name)
            if hasattr(module, "boto_client_for"):
                patches.append(_patch(module, "boto_client_for", clients))
        enforcement = IamEnforcement(
            settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count, patches
        )
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        _active = enforcement
    try:
        administrator.client("sts", "us-east-1", endpoint_url).get_caller_identity()
    except Exception:
        enforcement.restore()
        raise
    return enforcement


def enforcement_active() -> bool:
    """Whether :func:`enforce_iam` is in effect in this process."""
    return _active is not None
