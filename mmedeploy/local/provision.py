"""Provision the local stack from infra/template.yaml, the template AWS deploys.

Everything moto's CloudFormation can create is created by it, from the template itself. The few
resource types or properties it cannot handle are created from the same template entries through
the service APIs, and listed (``Provisioned.adapted``) with the reason, so nobody is surprised.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
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
    "AWS::Serverless::Function": "moto's CloudFormation has no SAM transform: created with CreateFunction "
    "(Globals applied; the code runs from the working tree, see moto_seams.py)",
    "AWS::Serverless::StateMachine": "moto's CloudFormation has no SAM transform: created with CreateStateMachine "
    "from the same ASL file, DefinitionSubstitutions applied",
    "AWS::CloudWatch::Alarm": "moto's CloudFormation has no alarms: created with PutMetricAlarm",
    "AWS::ApiGateway::GatewayResponse": "served by Chalice's local server instead of API Gateway: "
    "mmedeploy/local/api_gateway.py answers these errors in the same shape",
    "AWS::SQS::QueuePolicy": "skipped: moto's CloudFormation has no queue policies (moto does not enforce them)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "skipped: the local MME is one process, there is nothing to scale",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "skipped: the local MME is one process, there is nothing to scale",
}


CHALICE_COMPLETION = (
    "completes a function or role `chalice package` generates from app.py: locally the Chalice app runs in "
    "the stack's process (API on Chalice's local server, on_cw_event handlers as functions behind rules)"
)


SKIPPED_DEPENDENT = (
    "skipped: they refer to resources created outside moto's CloudFormation (secrets); "
    "nothing assumes them locally (moto does not enforce IAM)"
)


@dataclass
class Provisioned:
    outputs: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # logical ids made by moto's CloudFormation
    adapted: list[tuple[str, str]] = field(default_factory=list)  # (logical id, how and why)
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret name
    # bucket -> the NotificationConfiguration applied from the template. moto's
    # GetBucketNotificationConfiguration omits EventBridgeConfiguration, so this is the record.
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the template's Globals environment, resolved: what every function (and the API) gets
    environment: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN of what was created here


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path) as handle:
        template: dict[str, Any] = yaml.safe_load(handle)
    return template


PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012"}  # moto's account


def _resolve(value: Any, parameters: dict[str, str], arns: dict[str, str] | None = None) -> Any:
    """Ref, Fn::GetAtt ``Arn`` and Fn::Sub over parameters (pseudo parameters included) and what
    was created (``arns``: logical id -> ARN or physical id), through lists and maps: enough for
    the names and ARNs the adapted resources use."""
    arns = arns or {}
    if isinstance(value, list):
        return [_resolve(item, parameters, arns) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return parameters.get(value["Ref"]) or arns[value["Ref"]]
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        if attribute != "Arn":
            raise ValueError(f"the local provisioner resolves only Arn attributes, not {logical}.{attribute}")
        return arns[logical]
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for key, param in parameters.items():
            text = text.replace("${" + key + "}", param)
        return text
    return {key: _resolve(item, parameters, arns) for key, item in value.items()}


def _without_depends_on(resource: dict[str, Any], elsewhere: set[str]) -> dict[str, Any]:
    depends = resource.get("DependsOn")
    if depends is None:
        return resource
    kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in elsewhere]
    trimmed = {k: v for k, v in resource.items() if k != "DependsOn"}
    return {**trimmed, "DependsOn": kept} if kept else trimmed


def _mentions(value: Any, logical_ids: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in logical_ids:
            return True
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and attribute[0] in logical_ids:
            return True
        return any(_mentions(v, logical_ids) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, logical_ids) for v in value)
    return False


ENV_OUTPUT = "LocalGlobalsEnv"


def provision(session: Any, overrides: dict[str, str] | None = None, template_path: Path = TEMPLATE) -> Provisioned:
    """Create the stack in the moto server that ``session``'s clients point at."""
    template = load_template(template_path)
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    parameters.update(LOCAL_PARAMETERS)
    parameters.update(overrides or {})
    result = Provisioned()
    # Entries without a Type complete what `chalice package` generates for app.py (merged over
    # it); locally the Chalice app runs in the stack's process instead.
    for logical, resource in template["Resources"].items():
        if "Type" not in resource:
            result.adapted.append((logical, CHALICE_COMPLETION))
    resources = {logical: resource for logical, resource in template["Resources"].items() if "Type" in resource}
    supported = {k: r for k, r in resources.items() if r["Type"] not in NOT_IN_MOTO_CLOUDFORMATION}
    elsewhere = set(template["Resources"]) - set(supported)  # Chalice's own included
    # What refers to those cannot be created by moto's CloudFormation either: only IAM roles of
    # Chalice's functions today, which nothing assumes locally (moto does not enforce IAM).
    while dependent := {k for k, r in supported.items() if _mentions(r.get("Properties", {}), elsewhere)}:
        for logical in sorted(dependent):
            result.adapted.append((logical, SKIPPED_DEPENDENT))
            del supported[logical]
        elsewhere |= dependent
    # An ordering on AWS (e.g. a rule after the state machine it targets by ARN) means nothing to
    # moto for a resource created outside its CloudFormation.
    supported = {logical: _without_depends_on(resource, elsewhere) for logical, resource in supported.items()}
    # The Globals' expressions are resolved by moto's CloudFormation itself, as extra outputs.
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    outputs = {k: v for k, v in template.get("Outputs", {}).items() if not _mentions(v, elsewhere)}
    outputs.update({f"{ENV_OUTPUT}{i}": {"Value": expr} for i, expr in enumerate(variables.values())})
    body = {
        **{k: v for k, v in template.items() if k != "Globals"},
        "Resources": supported,
        "Outputs": outputs,
    }
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
    resolved = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    result.environment = {key: resolved[f"{ENV_OUTPUT}{i}"] for i, key in enumerate(variables)}
    result.outputs = {k: v for k, v in resolved.items() if not k.startswith(ENV_OUTPUT)}
    result.created = sorted(supported)

    # Ref of what moto's CloudFormation created (an alarm's topic) is its physical id.
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
        if "PhysicalResourceId" in r  # moto leaves it out for types it only warns about
    }
    for logical, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SecretsManager::Secret":
            name = _resolve(properties["Name"], parameters)
            value = properties.get("SecretString") or secrets.token_urlsafe(24)
            session.client("secretsmanager").create_secret(Name=name, SecretString=value)
            result.secrets[logical] = name
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::CloudWatch::Alarm":
            pseudo = {**PSEUDO_PARAMETERS, "AWS::Region": session.region_name}
            alarm = _resolve(properties, {**pseudo, **parameters}, physical)
            # parameters arrive as strings; CloudFormation converts them, the API does not
            alarm["Threshold"] = float(alarm["Threshold"])
            for key in ("Period", "EvaluationPeriods"):
                alarm[key] = int(alarm[key])
            session.client("cloudwatch").put_metric_alarm(**alarm)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::Serverless::Function":
            result.arns[logical] = _create_function(session, template, properties, parameters, result)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind in NOT_IN_MOTO_CLOUDFORMATION:
            if kind != "AWS::Serverless::StateMachine":  # after the functions it refers to, below
                result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::S3::Bucket":
            _bucket_settings(session, logical, properties, parameters, result)
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            result.arns[logical] = _create_state_machine(session, resource["Properties"], parameters, result)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[resource["Type"]]))
    for key, output in template.get("Outputs", {}).items():
        if key not in result.outputs:
            result.outputs[key] = str(_resolve(output["Value"], parameters, result.arns))
    return result


def _bucket_settings(
    session: Any, logical: str, properties: dict[str, Any], parameters: dict[str, str], result: Provisioned
) -> None:
    """What moto's CloudFormation ignores on a bucket, applied through the S3 API."""
    bucket = _resolve(properties["BucketName"], parameters)
    s3 = session.client("s3")
    if "VersioningConfiguration" in properties:
        # The pipeline depends on it: refused re-uploads are undone by restoring the registered version.
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
        result.adapted.append(
            (f"{logical}.VersioningConfiguration", "moto's CloudFormation ignores it: applied with PutBucketVersioning")
        )
    if "NotificationConfiguration" in properties:
        if properties["NotificationConfiguration"].get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            result.notifications[bucket] = {"EventBridgeConfiguration": {}}
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=result.notifications[bucket]
            )
        result.adapted.append(
            (
                f"{logical}.NotificationConfiguration",
                "moto's CloudFormation ignores it: applied with PutBucketNotificationConfiguration",
            )
        )


ROOT = TEMPLATE.parents[1]
LOCAL_ROLE = "mmedeploy-local-functions"


def _local_role(session: Any) -> str:
    """One role for everything created here: moto checks only that a role ARN is given."""
    iam = session.client("iam")
    try:
        return str(iam.get_role(RoleName=LOCAL_ROLE)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
        return str(iam.create_role(RoleName=LOCAL_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def placeholder_code() -> bytes:
    """Lambda wants a package; the local stack runs the handler from the working tree instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "the local stack runs this function from the working tree")
    return buffer.getvalue()


def create_local_function(
    session: Any,
    name: str,
    handler: str,
    environment: dict[str, str],
    timeout: int = 60,
    memory: int = 512,
    runtime: str = "python3.12",
) -> str:
    created = session.client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=_local_role(session),
        Handler=handler,
        Code={"ZipFile": placeholder_code()},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": environment},
    )
    return str(created["FunctionArn"])


def _create_function(
    session: Any, template: dict[str, Any], properties: dict[str, Any], parameters: dict[str, str], result: Provisioned
) -> str:
    globals_ = template.get("Globals", {}).get("Function", {})
    own = properties.get("Environment", {}).get("Variables", {})
    environment = {**result.environment, **{k: str(_resolve(v, parameters)) for k, v in own.items()}}
    return create_local_function(
        session,
        name=_resolve(properties["FunctionName"], parameters),
        handler=properties["Handler"],
        environment=environment,
        timeout=int(properties.get("Timeout", globals_.get("Timeout", 60))),
        memory=int(properties.get("MemorySize", globals_.get("MemorySize", 512))),
        runtime=properties.get("Runtime", globals_.get("Runtime", "python3.12")),
    )


def _create_state_machine(
    session: Any, properties: dict[str, Any], parameters: dict[str, str], result: Provisioned
) -> str:
    definition = (ROOT / properties["DefinitionUri"]).read_text()
    for key, expr in properties.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(_resolve(expr, parameters, result.arns)))
    json.loads(definition)  # a substitution left out would leave invalid JSON: fail here, clearly
    created = session.client("stepfunctions").create_state_machine(
        name=_resolve(properties["Name"], parameters), definition=definition, roleArn=_local_role(session)
    )
    return str(created["stateMachineArn"])


def wire_chalice_event_sources(session: Any, chalice_app: Any, stage: str, environment: dict[str, str]) -> list[str]:
    """What ``chalice package`` generates for ``@app.on_cw_event``: a function and a rule on the
    default bus targeting it. Returns the function names."""
    events = session.client("events")
    names = []
    for source in chalice_app.event_sources:
        pattern = getattr(source, "event_pattern", None)
        if pattern is None:
            raise NotImplementedError(f"the local stack wires only on_cw_event handlers, not {type(source).__name__}")
        name = f"{chalice_app.app_name}-{stage}-{source.name}"
        arn = create_local_function(session, name, source.handler_string, environment)
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "handler", "Arn": arn}])
        names.append(name)
    return names
