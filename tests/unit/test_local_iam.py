"""The execution roles ``mmedeploy/local/iam.py`` reads from a template, on small synthetic ones.

Enforcement itself (a moto server refusing and allowing) is tested in
``tests/integration/test_iam_enforcement.py`` with the packaged template's real roles.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from mmedeploy.deploy.policy_check import expand_sam_policy_template
from mmedeploy.local import iam
from mmedeploy.local.iam import RoleSpecError

ACCOUNT = "123456789012"
NAMES = {
    "Table": "registry",
    "Bus": "lifecycle",
    "Fn": "validate",
    "Secret": f"arn:aws:secretsmanager:r:{ACCOUNT}:secret:s-AbCdEf",
}


def resolve(value: Any) -> Any:
    """Ref -> a name, GetAtt Arn -> a made-up ARN, Sub over the pseudo parameters."""
    if "Ref" in value:
        return NAMES[value["Ref"]]
    if "Fn::GetAtt" in value:
        return f"arn:aws:x:us-east-1:{ACCOUNT}:{value['Fn::GetAtt'][0]}"
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": ACCOUNT, "Stage": "dev"}
    return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m[1]], value["Fn::Sub"])


def function(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "h.handler", **properties}}


def test_sam_generates_the_basic_role_with_the_functions_policies_resolved() -> None:
    # GIVEN a SAM function with an inline statement, a policy template and Tracing from Globals
    template = {
        "Globals": {"Function": {"Tracing": "Active"}},
        "Resources": {
            "Validate": function(
                Policies=[
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "events:PutEvents",
                                "Resource": {"Fn::GetAtt": ["Bus", "Arn"]},
                            }
                        ]
                    },
                    {"DynamoDBCrudPolicy": {"TableName": {"Ref": "Table"}}},
                ]
            )
        },
    }

    # WHEN its execution role is read
    spec = iam.execution_role_policies(template, resolve)["Validate"]

    # THEN it is SAM's: basic execution and X-Ray managed policies, the statements resolved
    assert spec.role_logical_id is None and spec.trusted_services == (iam.LAMBDA_SERVICE,)
    assert set(spec.managed_policies) == {iam.BASIC_EXECUTION_ROLE, iam.XRAY_WRITE_ONLY}
    assert spec.policies["ValidateRolePolicy0"]["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": f"arn:aws:x:us-east-1:{ACCOUNT}:Bus"}
    ]
    crud = spec.policies["ValidateRolePolicy1"]["Statement"][0]
    assert "dynamodb:ConditionCheckItem" in crud["Action"]
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/registry"
    assert crud["Resource"] == [table, f"{table}/index/*"]
    assert spec.conditioned_statements() == []


def test_a_function_with_a_role_gets_the_templates_role() -> None:
    # GIVEN a function whose Role is an AWS::IAM::Role with an attached AWS::IAM::Policy
    statement = {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}
    template = {
        "Resources": {
            "Api": function(Role={"Fn::GetAtt": ["ApiRole", "Arn"]}, Tracing="Active"),
            "ApiRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ]
                    },
                    "Policies": [{"PolicyName": "own", "PolicyDocument": {"Statement": [statement]}}],
                    "ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"}],
                },
            },
            "Extra": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "extra",
                    "Roles": [{"Ref": "ApiRole"}],
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "q"}]
                    },
                },
            },
        }
    }

    # WHEN its execution role is read
    spec = iam.execution_role_policies(template, resolve)["Api"]

    # THEN it is that role: its policies, the attached one, its managed ARNs, and no SAM additions
    assert spec.role_logical_id == "ApiRole" and spec.trusted_services == ("lambda.amazonaws.com",)
    assert set(spec.policies) == {"own", "extra"}
    assert spec.policies["own"]["Statement"][0]["Resource"] == f"arn:aws:x:us-east-1:{ACCOUNT}:Table"
    assert set(spec.managed_policies) == {iam.XRAY_WRITE_ONLY}


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"Role": "arn:aws:iam::1:role/elsewhere"}, "is not an AWS::IAM::Role of the template"),
        ({"Policies": ["AmazonS3FullAccess"]}, 'managed policy "AmazonS3FullAccess" is neither'),
        ({"Events": {"Q": {"Type": "SQS", "Properties": {}}}}, "SAM adds a managed policy for SQS events"),
        ({"DeadLetterQueue": {"Type": "Kinesis", "TargetArn": "x"}}, "DeadLetterQueue of type 'Kinesis'"),
    ],
)
def test_what_cannot_be_reproduced_locally_is_refused_with_the_reason(properties: dict[str, Any], reason: str) -> None:
    with pytest.raises(RoleSpecError, match=re.escape(reason)):
        iam.execution_role_policies({"Resources": {"Fn": function(**properties)}}, resolve)


def test_a_dead_letter_queue_and_a_vpc_add_what_sam_adds() -> None:
    spec = iam.execution_role_policies(
        {"Resources": {"Fn": function(VpcConfig={}, DeadLetterQueue={"Type": "SQS", "TargetArn": "arn:q"})}}, resolve
    )["Fn"]

    assert set(spec.managed_policies) == {iam.BASIC_EXECUTION_ROLE, iam.VPC_ACCESS_EXECUTION_ROLE}
    assert spec.policies["FnRolePolicyDeadLetter"]["Statement"] == [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:q"}
    ]


def test_a_state_machine_gets_its_policy_templates_expanded() -> None:
    # GIVEN a SAM state machine invoking one function
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {"Policies": [{"LambdaInvokePolicy": {"FunctionName": {"Ref": "Fn"}}}]},
            }
        }
    }

    # WHEN its role is read THEN it may invoke that function (and its versions and aliases) only
    spec = iam.state_machine_role_policies(template, resolve)["Machine"]
    assert spec.trusted_services == (iam.STATES_SERVICE,) and spec.managed_policies == {}
    assert spec.statements() == [
        {
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:validate*"],
        }
    ]


def test_sam_policy_templates_keep_their_parameters_for_the_resolver() -> None:
    statements = expand_sam_policy_template("AWSSecretsManagerGetSecretValuePolicy", {"SecretArn": {"Ref": "Secret"}})

    assert statements == (
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [{"Fn::Sub": ["${SecretArn}", {"SecretArn": {"Ref": "Secret"}}]}],
        },
    )
    assert iam._resolved(statements[0]["Resource"], resolve) == [NAMES["Secret"]]


def test_the_local_trust_policy_names_the_services_and_the_stack_host() -> None:
    spec = iam.execution_role_policies({"Resources": {"Fn": function()}}, resolve)["Fn"]
    admin = f"arn:aws:iam::{ACCOUNT}:user/{iam.ADMIN_USER}"

    assert iam.local_trust_policy(spec, admin)["Statement"] == [
        {
            "Sid": iam.LOCAL_ONLY_TRUST_SID,
            "Effect": "Allow",
            "Principal": {"AWS": admin, "Service": [iam.LAMBDA_SERVICE]},
            "Action": "sts:AssumeRole",
        }
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("src/models/a.tar.gz", ("src", "models/a.tar.gz", None)),
        ("/src/models/a%20b.tar.gz?versionId=v1", ("src", "models/a b.tar.gz", "v1")),
    ],
)
def test_the_copy_source_header_is_read_as_s3_writes_it(header: str, expected: tuple[str, str, str | None]) -> None:
    assert iam._copy_source(header) == expected


def test_credentials_become_a_process_environment() -> None:
    role = iam.Credentials(access_key_id="ASIA1", secret_access_key="s", session_token="t")

    assert role.environment() == {"AWS_ACCESS_KEY_ID": "ASIA1", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    assert "AWS_SESSION_TOKEN" not in iam.Credentials(access_key_id="AKIA1", secret_access_key="s").environment()
