"""Provision the local stack from the packaged template (``build/dev/sam.yaml``, what ``make
package`` builds and AWS deploys), with the artifacts beside it.

Everything moto's CloudFormation can create is created by it, from the template itself. The few
resource types or properties it cannot handle are created from the same template entries through
the service APIs, and listed (``Provisioned.adapted``) with the reason, so nobody is surprised.
Each function is created from its own artifact (uploaded to an artifacts bucket, as ``aws
cloudformation package`` does) under its own execution role (:mod:`mmedeploy.local.iam`).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmedeploy.local import STACK_NAME
from mmedeploy.project_files import project

# The package the local stack runs: `make package STAGE=dev` (mmedeploy up builds it when stale).
PACKAGE_STAGE = "dev"
# moto's SageMaker knows no ml.g5.* instance types; the local MME ignores the type anyway.
LOCAL_PARAMETERS = {"Stage": PACKAGE_STAGE, "GpuInstanceType": "ml.g4dn.xlarge"}
# where `aws cloudformation package` would upload the artifacts
ARTIFACTS_BUCKET = f"{STACK_NAME}-artifacts"

# resource type -> how the local stack creates it instead of moto's CloudFormation, and why
NOT_IN_MOTO_CLOUDFORMATION = {
    "AWS::SecretsManager::Secret": "moto's CloudFormation has no Secrets Manager resources: created with CreateSecret",
    "AWS::Serverless::Function": "moto's CloudFormation has no SAM transform: created with CreateFunction from "
    "its artifact, under its own execution role (Globals applied; events as EventBridge rules); it runs under "
    "awslambdaric in processes of the local Lambda service (mmedeploy/local/lambdas/)",
    "AWS::Serverless::StateMachine": "moto's CloudFormation has no SAM transform: created with CreateStateMachine "
    "from the same ASL file, DefinitionSubstitutions applied, under its own role",
    "AWS::Serverless::Api": "moto's CloudFormation cannot create the Swagger-defined API: "
    "mmedeploy/local/rest_api.py serves the same definition (routes, TOKEN authorizer, proxy events)",
    "AWS::CloudWatch::Alarm": "moto's CloudFormation has no alarms: created with PutMetricAlarm",
    "AWS::ApiGateway::GatewayResponse": "answered by mmedeploy/local/rest_api.py from the same templates",
    "AWS::Lambda::Permission": "skipped: who may invoke a function is not checked locally "
    "(API Gateway and EventBridge invoke through the local Lambda service)",
    "AWS::SQS::QueuePolicy": "skipped: moto's CloudFormation has no queue policies (moto does not enforce them)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "skipped: the local MME is one process, there is nothing to scale",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "skipped: the local MME is one process, there is nothing to scale",
}


SKIPPED_DEPENDENT = (
    "skipped: they refer to resources created outside moto's CloudFormation; the execution roles "
    "made from them are created by mmedeploy/local/iam.py instead"
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
    # the template's Globals environment, resolved: what every function gets
    environment: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN of what was created here
    functions: dict[str, str] = field(default_factory=dict)  # function logical id -> function name
    template: dict[str, Any] = field(default_factory=dict)  # the packaged template, as provisioned


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template at ``path``; by default the project's (``infra/template.yaml``)."""
    with open(path or project().template) as handle:
        template: dict[str, Any] = yaml.safe_load(handle)
    return template


PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",  # moto's account
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
}

# Fn::GetAtt of what moto's CloudFormation created, from its physical id (Ref) and type
_ATTRIBUTES = {
    ("AWS::DynamoDB::Table", "Arn"): "arn:aws:dynamodb:{region}:{account}:table/{id}",
    ("AWS::S3::Bucket", "Arn"): "arn:aws:s3:::{id}",
    ("AWS::Events::EventBus", "Arn"): "arn:aws:events:{region}:{account}:event-bus/{id}",
    ("AWS::Events::EventBus", "Name"): "{id}",
    ("AWS::IAM::Role", "Arn"): "arn:aws:iam::{account}:role/{id}",
    ("AWS::SQS::Queue", "Arn"): "arn:aws:sqs:{region}:{account}:{name}",
    ("AWS::SageMaker::Endpoint", "EndpointName"): "{name}",
}


_NAME_PROPERTIES = ("Name", "BucketName", "TableName", "EndpointName", "RoleName", "QueueName", "TopicName")


class Resolver:
    """Ref, Fn::GetAtt and Fn::Sub over the template's parameters (pseudo parameters included),
    what moto's CloudFormation created (by physical id and type) and what was created here."""

    def __init__(self, parameters: dict[str, str], region: str) -> None:
        self.parameters = {**PSEUDO_PARAMETERS, "AWS::Region": region, **parameters}
        self.region = region
        self.refs: dict[str, str] = {}  # logical id -> what Ref gives
        self.types: dict[str, str] = {}
        self.arns: dict[str, str] = {}  # logical id -> ARN (GetAtt Arn) of what was created here

    def attribute(self, logical: str, attribute: str) -> str:
        if attribute == "Arn" and logical in self.arns:
            return self.arns[logical]
        pattern = _ATTRIBUTES.get((self.types.get(logical, ""), attribute))
        if pattern is None or logical not in self.refs:
            raise ValueError(f"the local provisioner cannot resolve {logical}.{attribute}")
        physical = self.refs[logical]
        return pattern.format(
            region=self.region,
            account=PSEUDO_PARAMETERS["AWS::AccountId"],
            id=physical,
            name=physical.rsplit("/", 1)[-1],
        )

    def ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise ValueError(f"the local provisioner cannot resolve Ref {name}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            found = value["Fn::GetAtt"]
            logical, attribute = found if isinstance(found, list) else found.split(".", 1)
            return self.attribute(logical, attribute)
        if "Fn::Sub" in value:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            resolved: dict[str, str] = {key: str(self(item)) for key, item in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in resolved:
                    return resolved[name]
                if "." in name:
                    return self.attribute(*name.split(".", 1))
                return self.ref(name)

            return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
        if "Fn::Join" in value:
            separator, items = value["Fn::Join"]
            return separator.join(str(item) for item in self(items))
        return {key: self(item) for key, item in value.items()}


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
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and any(f"${{{lid}" in sub for lid in logical_ids):
            return True
        return any(_mentions(v, logical_ids) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, logical_ids) for v in value)
    return False


# listed where they are created: secrets first (roles name them), state machines last (they name functions)
_CREATED_ELSEWHERE_IN_ORDER = ("AWS::SecretsManager::Secret", "AWS::Serverless::StateMachine")


def function_name(logical: str, properties: dict[str, Any], resolve: Resolver) -> str:
    """The function's FunctionName, or the name CloudFormation would generate (stack name first,
    which the Chalice roles' log permissions rely on), without its random suffix."""
    if "FunctionName" in properties:
        return str(resolve(properties["FunctionName"]))
    return f"{STACK_NAME}-{logical}"


def provision(session: Any, package_dir: Path, overrides: dict[str, str] | None = None) -> Provisioned:
    """Create the stack of ``package_dir/sam.yaml`` in the moto server that ``session``'s clients
    (the local administrator's) point at."""
    from mmedeploy.local import iam

    template = load_template(package_dir / "sam.yaml")
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    parameters.update(LOCAL_PARAMETERS)
    parameters.update(overrides or {})
    result = Provisioned(template=template)
    resolve = Resolver(
        {k: v for k, v in parameters.items() if k in template.get("Parameters", {})}, session.region_name
    )
    resources = {logical: resource for logical, resource in template["Resources"].items() if "Type" in resource}
    resolve.types = {logical: resource["Type"] for logical, resource in resources.items()}
    supported = {k: r for k, r in resources.items() if r["Type"] not in NOT_IN_MOTO_CLOUDFORMATION}
    elsewhere = set(template["Resources"]) - set(supported)
    # What refers to those cannot be created by moto's CloudFormation either: the Chalice
    # functions' roles (they name secrets), made by iam.py from the same entries instead.
    while dependent := {k for k, r in supported.items() if _mentions(r.get("Properties", {}), elsewhere)}:
        for logical in sorted(dependent):
            result.adapted.append((logical, SKIPPED_DEPENDENT))
            del supported[logical]
        elsewhere |= dependent
    # An ordering on AWS (e.g. a rule after the state machine it targets by ARN) means nothing to
    # moto for a resource created outside its CloudFormation.
    supported = {logical: _without_depends_on(resource, elsewhere) for logical, resource in supported.items()}
    body = {
        **{k: v for k, v in template.items() if k not in ("Globals", "Transform")},
        "Resources": supported,
        "Outputs": {k: v for k, v in template.get("Outputs", {}).items() if not _mentions(v, elsewhere)},
    }
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(body),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in resolve.parameters.items()
            if k in template["Parameters"]
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack creation ended {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    result.created = sorted(supported)
    # moto leaves some physical ids out (an event bus's): the name the template gives stands in
    for logical, resource in supported.items():
        named = [k for k in _NAME_PROPERTIES if k in resource.get("Properties", {})]
        if named:
            resolve.refs[logical] = str(resolve(resource["Properties"][named[0]]))
    resolve.refs.update(
        {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
            if "PhysicalResourceId" in r  # moto leaves it out for types it only warns about
        }
    )
    for logical, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SecretsManager::Secret":
            name = resolve(properties["Name"])
            value = properties.get("SecretString") or secrets.token_urlsafe(24)
            created = session.client("secretsmanager").create_secret(Name=name, SecretString=value)
            resolve.refs[logical] = created["ARN"]  # Ref of a secret is its ARN
            result.secrets[logical] = name
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::Serverless::Function":
            name = function_name(logical, properties, resolve)
            result.functions[logical] = name
            resolve.refs[logical] = name
            resolve.arns[logical] = (
                f"arn:aws:lambda:{session.region_name}:{PSEUDO_PARAMETERS['AWS::AccountId']}:function:{name}"
            )
        elif kind == "AWS::Serverless::StateMachine":
            name = resolve(properties["Name"])
            resolve.refs[logical] = resolve.arns[logical] = (
                f"arn:aws:states:{session.region_name}:{PSEUDO_PARAMETERS['AWS::AccountId']}:stateMachine:{name}"
            )
        elif kind == "AWS::Serverless::Api":
            resolve.refs[logical] = "local"  # the local API's id (rest_api.LOCAL_API_ID)
        elif kind == "AWS::S3::Bucket":
            _bucket_settings(session, logical, properties, resolve, result)
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    result.environment = {key: str(resolve(value)) for key, value in variables.items()}
    roles = iam.execution_role_policies(template, resolve) | iam.state_machine_role_policies(template, resolve)
    iam_client = session.client("iam")
    role_arns = {}
    for logical, spec in roles.items():
        role_name = f"{STACK_NAME}-{logical}"[:64]
        role_arns[logical] = iam.create_execution_role(iam_client, role_name, spec)
        result.adapted.append((f"{logical}.Role", "the execution role SAM or the template gives it, made by iam.py"))
    artifacts = _upload_artifacts(session, template, package_dir)
    for logical, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::CloudWatch::Alarm":
            alarm = resolve(properties)
            # parameters arrive as strings; CloudFormation converts them, the API does not
            alarm["Threshold"] = float(alarm["Threshold"])
            for key in ("Period", "EvaluationPeriods"):
                alarm[key] = int(alarm[key])
            session.client("cloudwatch").put_metric_alarm(**alarm)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind == "AWS::Serverless::Function":
            _create_function(session, template, logical, properties, resolve, result, role_arns[logical], artifacts)
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
        elif kind in NOT_IN_MOTO_CLOUDFORMATION and kind not in _CREATED_ELSEWHERE_IN_ORDER:
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[kind]))
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            _create_state_machine(session, package_dir, resource["Properties"], resolve, role_arns[logical])
            result.adapted.append((logical, NOT_IN_MOTO_CLOUDFORMATION[resource["Type"]]))
    result.arns = dict(resolve.arns)
    for key, output in template.get("Outputs", {}).items():
        result.outputs[key] = str(resolve(output["Value"]))
    return result


def _bucket_settings(
    session: Any, logical: str, properties: dict[str, Any], resolve: Resolver, result: Provisioned
) -> None:
    """What moto's CloudFormation ignores on a bucket, applied through the S3 API."""
    bucket = resolve(properties["BucketName"])
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


def _upload_artifacts(session: Any, template: dict[str, Any], package_dir: Path) -> dict[str, str]:
    """Each distinct CodeUri uploaded once to the artifacts bucket, as `aws cloudformation
    package` does: CodeUri -> key."""
    s3 = session.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    keys: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        uri = str(resource["Properties"]["CodeUri"])
        if uri not in keys:
            path = (package_dir / uri).resolve()
            keys[uri] = path.name
            s3.upload_file(str(path), ARTIFACTS_BUCKET, path.name)
    return keys


def _create_function(
    session: Any,
    template: dict[str, Any],
    logical: str,
    properties: dict[str, Any],
    resolve: Resolver,
    result: Provisioned,
    role_arn: str,
    artifacts: dict[str, str],
) -> None:
    globals_ = template.get("Globals", {}).get("Function", {})

    def setting(key: str, default: Any) -> Any:
        return properties.get(key, globals_.get(key, default))

    own = properties.get("Environment", {}).get("Variables", {})
    environment = {**result.environment, **{k: str(resolve(v)) for k, v in own.items()}}
    name = result.functions[logical]
    created = session.client("lambda").create_function(
        FunctionName=name,
        Runtime=setting("Runtime", "python3.12"),
        Role=role_arn,
        Handler=properties["Handler"],
        Code={"S3Bucket": ARTIFACTS_BUCKET, "S3Key": artifacts[str(properties["CodeUri"])]},
        Timeout=int(setting("Timeout", 3)),
        MemorySize=int(setting("MemorySize", 128)),
        Environment={"Variables": environment},
        TracingConfig={"Mode": "Active" if setting("Tracing", "PassThrough") == "Active" else "PassThrough"},
    )
    resolve.arns[logical] = created["FunctionArn"]
    events = session.client("events")
    for event_name, event in properties.get("Events", {}).items():
        if event.get("Type") not in ("CloudWatchEvent", "EventBridgeRule", "Schedule"):
            raise NotImplementedError(f"the local stack wires EventBridge events only, not {logical}.{event_name}")
        rule = f"{name}-{event_name}"[:64]
        event_properties = event.get("Properties", {})
        if event["Type"] == "Schedule":
            # moto keeps the rule; the local stack runs it (mmedeploy/local/schedules.py)
            events.put_rule(Name=rule, ScheduleExpression=str(resolve(event_properties["Schedule"])), State="ENABLED")
            events.put_targets(Rule=rule, Targets=[{"Id": "function", "Arn": created["FunctionArn"]}])
            result.adapted.append((f"{logical}.Events.{event_name}", "SAM's schedule: a rule the local stack runs"))
            continue
        events.put_rule(
            Name=rule,
            EventPattern=json.dumps(resolve(event_properties["Pattern"])),
            EventBusName=str(resolve(event_properties.get("EventBusName", "default"))),
            State="ENABLED",
        )
        events.put_targets(
            Rule=rule,
            EventBusName=str(resolve(event_properties.get("EventBusName", "default"))),
            Targets=[{"Id": "function", "Arn": created["FunctionArn"]}],
        )
        result.adapted.append((f"{logical}.Events.{event_name}", "SAM's EventBridge rule, created with PutRule"))


def _create_state_machine(
    session: Any, package_dir: Path, properties: dict[str, Any], resolve: Resolver, role_arn: str
) -> str:
    definition = (package_dir / properties["DefinitionUri"]).read_text()
    for key, expr in properties.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(resolve(expr)))
    json.loads(definition)  # a substitution left out would leave invalid JSON: fail here, clearly
    created = session.client("stepfunctions").create_state_machine(
        name=resolve(properties["Name"]), definition=definition, roleArn=role_arn
    )
    return str(created["stateMachineArn"])


def publish_outputs(region: str, outputs: dict[str, str]) -> None:
    """Make the emulator's ``DescribeStacks`` of the local stack answer every output of the
    template, resolved as the stack runs (its API's local URL included): moto's CloudFormation
    created only part of the stack, so it knows only the outputs of what it created. A command
    resolves the local stack from these outputs as it resolves a stack on AWS."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import Output

    backend = cloudformation_backends[PSEUDO_PARAMETERS["AWS::AccountId"]][region]
    stack = next(s for s in backend.stacks.values() if s.name == STACK_NAME and s.status == "CREATE_COMPLETE")
    output_map = stack.output_map
    # moto parses an output's Value on demand (Fn:: functions over what it created); these values
    # are resolved already: plain strings, parsed up front
    output_map._output_json_map = {key: {"Value": value} for key, value in outputs.items()}
    output_map._parsed_outputs = {key: Output(key, value, "") for key, value in outputs.items()}
