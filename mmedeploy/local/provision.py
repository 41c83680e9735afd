"""Provision the local stack from infra/template.yaml, the template AWS deploys.

Everything moto's CloudFormation can create is created by it, from the template itself. The few
resource types or properties it cannot handle are created from the same template entries through
the service APIs, and listed (``Provisioned.adapted``) with the reason, so nobody is surprised.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
STACK_NAME = "mmedeploy-dev"
# moto's SageMaker knows no ml.g5.* instance types; the local MME ignores the type anyway.
LOCAL_PARAMETERS = {"Stage": "dev", "GpuInstanceType": "ml.g4dn.xlarge"}

# resource type -> how the local stack creates it instead of moto's CloudFormation, and why
NOT_IN_MOTO_CLOUDFORMATION = {
    "AWS::SecretsManager::Secret": "moto's CloudFormation has no Secrets Manager resources: created with CreateSecret",
    "AWS::CloudWatch::Alarm": "moto's CloudFormation has no alarms: created with PutMetricAlarm",
    "AWS::ApplicationAutoScaling::ScalableTarget": "skipped: the local MME is one process, there is nothing to scale",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "skipped: the local MME is one process, there is nothing to scale",
}


@dataclass
class Provisioned:
    outputs: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # logical ids made by moto's CloudFormation
    adapted: list[tuple[str, str]] = field(default_factory=list)  # (logical id, how and why)
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret name
    # bucket -> the NotificationConfiguration applied from the template. moto's
    # GetBucketNotificationConfiguration omits EventBridgeConfiguration, so this is the record.
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path) as handle:
        template: dict[str, Any] = yaml.safe_load(handle)
    return template


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """Ref and Fn::Sub over parameters: enough for the names the adapted resources use."""
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for key, param in parameters.items():
            text = text.replace("${" + key + "}", param)
        return text
    return value


def provision(session: Any, overrides: dict[str, str] | None = None, template_path: Path = TEMPLATE) -> Provisioned:
    """Create the stack in the moto server that ``session``'s clients point at."""
    template = load_template(template_path)
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    parameters.update(LOCAL_PARAMETERS)
    parameters.update(overrides or {})
    result = Provisioned()
    supported = {
        logical: resource
        for logical, resource in template["Resources"].items()
        if resource["Type"] not in NOT_IN_MOTO_CLOUDFORMATION
    }
    body = {**template, "Resources": supported}
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(body),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items() if k in template["Parameters"]
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack creation ended {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    result.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    result.created = sorted(supported)

    for logical, resource in template["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SecretsManager::Secret":
            name = _resolve(properties["Name"], parameters)
            value = properties.get("SecretString") or secrets.token_urlsafe(24)
            session.client("secretsmanager").create_secret(Name=name, SecretString=value)
            result.secrets[logical] = name
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::CloudWatch::Alarm":
            alarm = {k: _resolve(v, parameters) for k, v in properties.items()}
            session.client("cloudwatch").put_metric_alarm(**alarm)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind in NOT_IN_MOTO_CLOUDFORMATION:
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::S3::Bucket" and "NotificationConfiguration" in properties:
            # moto's CloudFormation ignores a bucket's NotificationConfiguration.
            bucket = _resolve(properties["BucketName"], parameters)
            if properties["NotificationConfiguration"].get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
                result.notifications[bucket] = {"EventBridgeConfiguration": {}}
                session.client("s3").put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration=result.notifications[bucket]
                )
            result.adapted.append(
                (
                    f"{logical}.NotificationConfiguration",
                    "moto's CloudFormation ignores it: applied with PutBucketNotificationConfiguration",
                )
            )
    return result
