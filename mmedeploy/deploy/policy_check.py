"""``python -m mmedeploy.deploy.policy_check build/STAGE/sam.yaml``: no over-broad IAM in the template.

Every policy in the template is read: ``AWS::IAM::Role``/``User``/``Group`` ``Policies``,
``AWS::IAM::Policy`` and ``ManagedPolicy``, the ``Policies`` of SAM functions and state machines
(inline statements, and SAM policy templates expanded from :data:`SAM_POLICY_TEMPLATES`), and the
resource policies of queues, topics, buckets, event buses, secrets and KMS keys. An ``Allow``
statement is an offence when

- an action has a wildcard (``*``, ``s3:*``, ``s3:Put*``: any ``*`` or ``?``), or it uses ``NotAction``;
- it grants ``Resource: "*"`` (or ``NotResource``) for any action outside :data:`RESOURCE_STAR_ACTIONS`,
  the few actions AWS offers no resource-level permissions for.

A policy that cannot be read here (an AWS-managed policy by name or ARN, an unknown SAM policy
template) is an offence too: what it grants is not in the template. ``Deny`` statements are not
checked. Exit 0 with a one-line summary, 1 listing each offence, 2 if the file is not a template.

What this does not see: the policies SAM adds when it transforms the template (the basic
execution role's logs permissions, ``AWSXrayWriteOnlyAccess`` for ``Tracing: Active``); those are
AWS's managed policies for exactly those features.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mmedeploy.deploy.template import TemplateError, is_intrinsic, load_template, properties, resources

# Actions AWS does not support resource-level permissions for (the Service Authorization Reference
# lists no resource type for them), so "Resource": "*" is the only way to grant them.
RESOURCE_STAR_ACTIONS: Mapping[str, str] = {
    "cloudwatch:PutMetricData": "no resource type; scope it with the cloudwatch:namespace condition key",
    "cloudwatch:GetMetricData": "no resource type (the rollout's gates read both versions' figures)",
    "xray:PutTraceSegments": "no resource type; what Lambda's active tracing sends segments with",
    "xray:PutTelemetryRecords": "no resource type; the X-Ray SDK's telemetry",
    # Vended log delivery (Step Functions and API Gateway logging to CloudWatch Logs): AWS's
    # documented policy for it is these actions on "*"; none has a resource type.
    "logs:CreateLogDelivery": "vended log delivery (state machine logging): no resource type",
    "logs:GetLogDelivery": "vended log delivery: no resource type",
    "logs:UpdateLogDelivery": "vended log delivery: no resource type",
    "logs:DeleteLogDelivery": "vended log delivery: no resource type",
    "logs:ListLogDeliveries": "vended log delivery: no resource type",
    "logs:PutResourcePolicy": "vended log delivery: the log group's resource policy, account-wide",
    "logs:DescribeResourcePolicies": "vended log delivery: account-wide list",
    "logs:DescribeLogGroups": "vended log delivery: account-wide list",
}
_STAR_ACTIONS = {action.lower(): action for action in RESOURCE_STAR_ACTIONS}


# SAM policy templates known here, by the statements they expand to (samtranslator's
# policy_templates_data/policy_templates.json): actions, and resources as ``Fn::Sub`` texts over
# the pseudo parameters and the template's own parameters (``${TableName}``), or "*".
class SamStatement(NamedTuple):
    actions: tuple[str, ...]
    resources: tuple[str, ...]


_PARAMETER = re.compile(r"\$\{(\w+)\}")  # ${TableName}; not ${AWS::Region}
_REGIONAL = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
_TABLE = _REGIONAL % ("dynamodb", "table/${TableName}")
_TABLE_AND_INDEXES = (_TABLE, _TABLE + "/index/*")
_BUCKET_AND_OBJECTS = ("arn:${AWS::Partition}:s3:::${BucketName}", "arn:${AWS::Partition}:s3:::${BucketName}/*")
_QUEUE = (_REGIONAL % ("sqs", "${QueueName}"),)
SAM_POLICY_TEMPLATES: Mapping[str, tuple[SamStatement, ...]] = {
    "LambdaInvokePolicy": (
        SamStatement(("lambda:InvokeFunction",), (_REGIONAL % ("lambda", "function:${FunctionName}*"),)),
    ),
    "StepFunctionsExecutionPolicy": (
        SamStatement(("states:StartExecution",), (_REGIONAL % ("states", "stateMachine:${StateMachineName}"),)),
    ),
    "EventBridgePutEventsPolicy": (
        SamStatement(("events:PutEvents",), (_REGIONAL % ("events", "event-bus/${EventBusName}"),)),
    ),
    "AWSSecretsManagerGetSecretValuePolicy": (SamStatement(("secretsmanager:GetSecretValue",), ("${SecretArn}",)),),
    "KMSDecryptPolicy": (SamStatement(("kms:Decrypt",), (_REGIONAL % ("kms", "key/${KeyId}"),)),),
    "SNSPublishMessagePolicy": (SamStatement(("sns:Publish",), (_REGIONAL % ("sns", "${TopicName}"),)),),
    "SQSSendMessagePolicy": (SamStatement(("sqs:SendMessage*",), _QUEUE),),
    "SQSPollerPolicy": (
        SamStatement(
            (
                "sqs:ChangeMessageVisibility",
                "sqs:ChangeMessageVisibilityBatch",
                "sqs:DeleteMessage",
                "sqs:DeleteMessageBatch",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ),
            _QUEUE,
        ),
    ),
    "DynamoDBReadPolicy": (
        SamStatement(
            (
                "dynamodb:GetItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
            ),
            _TABLE_AND_INDEXES,
        ),
    ),
    "DynamoDBWritePolicy": (
        SamStatement(("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"), _TABLE_AND_INDEXES),
    ),
    "DynamoDBCrudPolicy": (
        SamStatement(
            (
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
                "dynamodb:ConditionCheckItem",
            ),
            _TABLE_AND_INDEXES,
        ),
    ),
    "S3ReadPolicy": (
        SamStatement(
            (
                "s3:GetObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetObjectVersion",
                "s3:GetLifecycleConfiguration",
            ),
            _BUCKET_AND_OBJECTS,
        ),
    ),
    "S3WritePolicy": (
        SamStatement(("s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"), _BUCKET_AND_OBJECTS),
    ),
    "S3CrudPolicy": (
        SamStatement(
            (
                "s3:GetObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:PutObjectAcl",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:DeleteObject",
            ),
            _BUCKET_AND_OBJECTS,
        ),
    ),
    "SSMParameterReadPolicy": (
        SamStatement(("ssm:DescribeParameters",), ("*",)),
        SamStatement(
            ("ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"),
            (_REGIONAL % ("ssm", "parameter/${ParameterName}"),),
        ),
    ),
    "CloudWatchPutMetricPolicy": (SamStatement(("cloudwatch:PutMetricData",), ("*",)),),
    "VPCAccessPolicy": (
        SamStatement(
            (
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DetachNetworkInterface",
            ),
            ("*",),
        ),
    ),
}


def expand_sam_policy_template(name: str, parameters: Any) -> tuple[dict[str, Any], ...]:
    """The statements SAM writes for ``{name: parameters}`` (a key of :data:`SAM_POLICY_TEMPLATES`).

    A scoped resource is ``{"Fn::Sub": [text, {parameter: value}]}``, as SAM writes it: the
    parameter values (literals or intrinsics) are left for whoever resolves the template.
    """
    values = dict(parameters) if isinstance(parameters, dict) else {}
    statements = []
    for actions, texts in SAM_POLICY_TEMPLATES[name]:
        arns = [
            text if text == "*" else {"Fn::Sub": [text, {key: values.get(key) for key in _PARAMETER.findall(text)}]}
            for text in texts
        ]
        statements.append({"Effect": "Allow", "Action": list(actions), "Resource": arns})
    return tuple(statements)


# Policy-bearing properties, by resource type: (property, shape).
# "policies": a list of {PolicyName, PolicyDocument}; "document": one policy document;
# "statement": one statement (EventBusPolicy); "sam": SAM's Policies (names, documents, templates).
POLICY_PROPERTIES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "AWS::IAM::Role": (("Policies", "policies"), ("ManagedPolicyArns", "managed")),
    "AWS::IAM::User": (("Policies", "policies"), ("ManagedPolicyArns", "managed")),
    "AWS::IAM::Group": (("Policies", "policies"), ("ManagedPolicyArns", "managed")),
    "AWS::IAM::Policy": (("PolicyDocument", "document"),),
    "AWS::IAM::ManagedPolicy": (("PolicyDocument", "document"),),
    "AWS::Serverless::Function": (("Policies", "sam"),),
    "AWS::Serverless::StateMachine": (("Policies", "sam"),),
    "AWS::SQS::QueuePolicy": (("PolicyDocument", "document"),),
    "AWS::SNS::TopicPolicy": (("PolicyDocument", "document"),),
    "AWS::S3::BucketPolicy": (("PolicyDocument", "document"),),
    "AWS::Events::EventBusPolicy": (("Statement", "statement"),),
    "AWS::SecretsManager::ResourcePolicy": (("ResourcePolicy", "document"),),
    "AWS::KMS::Key": (("KeyPolicy", "document"),),
}
# A key policy's "Resource": "*" means the key itself: the only form AWS accepts there.
STAR_MEANS_ITSELF = frozenset({"AWS::KMS::Key"})


@dataclass(frozen=True)
class Policy:
    logical_id: str
    name: str
    statements: tuple[Any, ...] = ()
    unreadable: str | None = None  # why this policy's grants cannot be checked here
    star_is_self: bool = False


@dataclass(frozen=True)
class Offence:
    logical_id: str
    policy: str
    statement: int | None  # 1-based; None for the policy as a whole
    reason: str
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.logical_id} ({self.policy}" + (f", statement {self.statement})" if self.statement else ")")
        return f"{where}: {self.reason}" + (f"\n      {self.text}" if self.text else "")


@dataclass
class Report:
    policies: int = 0
    statements: int = 0
    offences: list[Offence] = field(default_factory=list)
    star_actions: set[str] = field(default_factory=set)  # allow-listed actions granted on "*"

    @property
    def ok(self) -> bool:
        return not self.offences

    def summary(self) -> str:
        star = (
            f'Resource "*" only for {", ".join(sorted(self.star_actions))}' if self.star_actions else 'no Resource "*"'
        )
        return f"{self.statements} statements in {self.policies} policies: no wildcard actions, {star}"


# -- reading policies ---------------------------------------------------------------------------


def _branches(value: Any) -> list[Any]:
    """A value with ``Fn::If`` resolved both ways (either branch may be deployed)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list):
        args = value["Fn::If"]
        return [item for branch in args[1:3] for item in _branches(branch)]
    return [value]


def document_statements(document: Any) -> tuple[Any, ...]:
    """The statements of a policy document (a mapping, or its JSON text)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return ("<policy document is not JSON>",)
    found: list[Any] = []
    for doc in _branches(document):
        statement = doc.get("Statement") if isinstance(doc, dict) else None
        for item in statement if isinstance(statement, list) else [statement]:
            found.extend(_branches(item))
    return tuple(item for item in found if item is not None)


def _template_statements(name: str, parameters: Any) -> tuple[Any, ...]:
    values = list(parameters.values()) if isinstance(parameters, dict) else []
    star_parameter = any(value == "*" for value in values)  # e.g. TableName: "*": every table
    return tuple(
        {**statement, "Resource": "*", "SAM": name} if star_parameter else {**statement, "SAM": name}
        for statement in expand_sam_policy_template(name, parameters)
    )


def _sam_policies(logical_id: str, value: Any, managed_here: set[str]) -> Iterator[Policy]:
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        label = f"Policies[{index}]"
        if isinstance(item, dict) and "Statement" in item:
            yield Policy(logical_id, label, document_statements(item))
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in SAM_POLICY_TEMPLATES:
            ((name, parameters),) = item.items()
            yield Policy(logical_id, f"{label} {name}", _template_statements(name, parameters))
        elif isinstance(item, dict) and len(item) == 1 and not is_intrinsic(item):
            unknown = f"SAM policy template {next(iter(item))} is not in SAM_POLICY_TEMPLATES"
            yield Policy(logical_id, label, unreadable=unknown)
        else:
            yield from _managed(logical_id, label, item, managed_here)


def _managed(logical_id: str, label: str, arn: Any, managed_here: set[str]) -> Iterator[Policy]:
    if isinstance(arn, dict) and arn.get("Ref") in managed_here:
        return  # an AWS::IAM::ManagedPolicy of this template: checked as itself
    shown = json.dumps(arn, sort_keys=True) if not isinstance(arn, str) else arn
    yield Policy(logical_id, label, unreadable=f"managed policy {shown} is not in the template")


def iam_policies(template: Mapping[str, Any]) -> list[Policy]:
    """Every policy of the template, in template order."""
    found: list[Policy] = []
    managed_here = {lid for lid, res in resources(template).items() if res.get("Type") == "AWS::IAM::ManagedPolicy"}
    for lid, resource in resources(template).items():
        kind = str(resource.get("Type"))
        props = properties(resource)
        star_is_self = kind in STAR_MEANS_ITSELF
        for prop, shape in POLICY_PROPERTIES.get(kind, ()):
            value = props.get(prop)
            if value is None:
                continue
            if shape == "policies":
                for index, policy in enumerate(value if isinstance(value, list) else []):
                    policy = policy if isinstance(policy, dict) else {}
                    name = policy.get("PolicyName")
                    label = name if isinstance(name, str) else f"Policies[{index}]"
                    found.append(Policy(lid, label, document_statements(policy.get("PolicyDocument"))))
            elif shape == "managed":
                for index, arn in enumerate(value if isinstance(value, list) else [value]):
                    found.extend(_managed(lid, f"ManagedPolicyArns[{index}]", arn, managed_here))
            elif shape == "document":
                found.append(Policy(lid, prop, document_statements(value), star_is_self=star_is_self))
            elif shape == "statement":
                found.append(Policy(lid, prop, tuple(_branches(value))))
            else:
                found.extend(_sam_policies(lid, value, managed_here))
    return found


def policy_statements(template: Mapping[str, Any], logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the resource's policies (SAM templates expanded), for assertions in tests."""
    return [
        statement
        for policy in iam_policies(template)
        if policy.logical_id == logical_id
        for statement in policy.statements
        if isinstance(statement, dict)
    ]


# -- checking -----------------------------------------------------------------------------------


def _literals(value: Any) -> tuple[list[str], bool]:
    """The literal strings of an Action/Resource value, and whether any part is computed."""
    strings: list[str] = []
    computed = False
    for branch in _branches(value):
        for item in branch if isinstance(branch, list) else [branch]:
            for leaf in _branches(item):
                if isinstance(leaf, str):
                    strings.append(leaf)
                else:
                    computed = True
    return strings, computed


def check_statement(statement: Any, *, star_is_self: bool = False) -> tuple[list[str], set[str]]:
    """The offences of one statement, and the allow-listed actions it grants on "*"."""
    if not isinstance(statement, dict):
        return [f"not a statement: {statement!r}"], set()
    if statement.get("Effect", "Allow") == "Deny":
        return [], set()
    offences: list[str] = []
    if "NotAction" in statement:
        offences.append("NotAction in an Allow statement grants every other action")
    actions, computed = _literals(statement.get("Action", []))
    if computed:
        offences.append("Action is computed (an intrinsic), so it cannot be checked")
    wildcards = [action for action in actions if "*" in action or "?" in action]
    offences += [f"wildcard action {action!r}" for action in wildcards]
    resource_values, _ = _literals(statement.get("Resource", []))
    on_star = "*" in resource_values or "NotResource" in statement
    if not on_star or star_is_self:
        return offences, set()
    unscoped = [a for a in actions if a not in wildcards and a.lower() not in _STAR_ACTIONS]
    if unscoped:
        how = "NotResource" if "NotResource" in statement else 'Resource "*"'
        offences.append(
            f"{how} with {', '.join(unscoped)}: only actions without resource-level permissions may use it "
            f"({', '.join(RESOURCE_STAR_ACTIONS)})"
        )
    granted = {_STAR_ACTIONS[a.lower()] for a in actions if a.lower() in _STAR_ACTIONS}
    return offences, granted


def check_template(template: Mapping[str, Any]) -> Report:
    report = Report()
    for policy in iam_policies(template):
        report.policies += 1
        if policy.unreadable:
            report.offences.append(Offence(policy.logical_id, policy.name, None, f"{policy.unreadable}: inline it"))
            continue
        for number, statement in enumerate(policy.statements, start=1):
            report.statements += 1
            offences, granted = check_statement(statement, star_is_self=policy.star_is_self)
            report.star_actions |= granted
            text = json.dumps(statement, sort_keys=True, default=str)
            report.offences += [Offence(policy.logical_id, policy.name, number, reason, text) for reason in offences]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m mmedeploy.deploy.policy_check TEMPLATE", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        report = check_template(load_template(path))
    except TemplateError as exc:
        print(f"policy check: {exc}", file=sys.stderr)
        return 2
    if report.ok:
        print(f"policy check: {path}: {report.summary()}")
        return 0
    print(f"policy check: {path}: {len(report.offences)} offence(s) in {report.policies} policies", file=sys.stderr)
    for offence in report.offences:
        print(f"  {offence}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
