"""IAM enforced in the local AWS emulator (``mmedeploy/local/iam.py``), on a moto server of its own.

The roles are the packaged template's own (``build/dev/sam.yaml``; built when it is missing or
older than ``infra/template.yaml``, where every policy is written), created in the emulator as
the stack creates them and assumed as each function's process would be. A call a role allows
must succeed; one outside it must fail with AccessDenied, exactly where it would on AWS.

Enforcement is process-global in moto, so each test switches it on (``enforced``) and off again:
the rest of the pytest process never sees it.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.responses import BaseResponse
from moto.server import ThreadedMotoServer

from mmedeploy.deploy import package
from mmedeploy.deploy.template import load_template, properties, resources
from mmedeploy.local import iam
from mmedeploy.local.iam import Credentials, IamEnforcement, RoleSpec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
REGION = "us-east-1"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::URLSuffix": "x"}
NOBODY = Credentials(
    access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
)
MACHINE_NAME = f"mmedeploy-{STAGE}-deploy-model"


# -- the emulator -------------------------------------------------------------------------------


def packaged_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    built = ROOT / "build" / STAGE / package.TEMPLATE_NAME
    if built.is_file() and built.stat().st_mtime > (ROOT / package.MERGE_TEMPLATE).stat().st_mtime:
        return load_template(built)
    out = tmp_path_factory.mktemp("package") / STAGE
    package.build(STAGE, out)
    return load_template(out / package.TEMPLATE_NAME)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def moto_api(url: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


@dataclass
class Emulator:
    url: str
    admin: Credentials
    template: dict[str, Any]
    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value (name, or a secret's ARN)
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> Fn::GetAtt Arn
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    credentials: dict[str, Credentials] = field(default_factory=dict)  # role name -> assumed credentials

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        return (credentials or self.admin).client(service, REGION, self.url)

    def resolve(self, value: Any) -> Any:
        """Ref, Fn::GetAtt and Fn::Sub (plain text) over what was created here."""
        if "Ref" in value:
            return self.parameters.get(value["Ref"]) or self.refs[value["Ref"]]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical, attribute = target if isinstance(target, list) else target.split(".", 1)
            assert attribute == "Arn", f"the test resolves only Arn attributes, not {logical}.{attribute}"
            return self.arns[logical]
        if isinstance(value.get("Fn::Sub"), str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.parameters.get(m[1]) or self.refs[m[1]], value["Fn::Sub"])
        raise ValueError(f"cannot resolve {value}")

    def role(self, spec: RoleSpec, name: str | None = None) -> Credentials:
        """Credentials of the role ``spec`` describes, as the stack gives a function's process."""
        name = name or f"local-{spec.for_logical_id}"
        if name not in self.credentials:
            arn = iam.create_execution_role(self.client("iam"), name, spec)
            self.credentials[name] = iam.assume(self.client("sts"), arn, spec.for_logical_id)
        return self.credentials[name]

    def function(self, logical_id: str) -> Credentials:
        return self.role(self.roles[logical_id])


def synthetic_role(for_logical_id: str, *statements: dict[str, Any]) -> RoleSpec:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return RoleSpec(
        for_logical_id=for_logical_id,
        role_logical_id=None,
        trusted_services=(iam.LAMBDA_SERVICE,),
        policies={"test": document} if statements else {},
        managed_policies={},
    )


def create_resources(emulator: Emulator) -> None:
    """The template's tables, buckets, bus and secrets, named as the template names them."""
    template, resolve = emulator.template, emulator.resolve
    for logical, resource in resources(template).items():
        kind, props = resource.get("Type"), properties(resource)
        if kind == "AWS::DynamoDB::Table":
            name = resolve(props["TableName"])
            keys = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
            table = emulator.client("dynamodb").create_table(
                TableName=name, **{k: props[k] for k in keys if k in props}
            )
            emulator.refs[logical], emulator.arns[logical] = name, table["TableDescription"]["TableArn"]
        elif kind == "AWS::S3::Bucket":
            emulator.refs[logical] = resolve(props["BucketName"])
            emulator.client("s3").create_bucket(Bucket=emulator.refs[logical])
        elif kind == "AWS::Events::EventBus":
            emulator.refs[logical] = props["Name"]
            emulator.arns[logical] = emulator.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        elif kind == "AWS::Serverless::Function":  # CloudFormation names those without FunctionName
            emulator.refs[logical] = resolve(props.get("FunctionName", {"Fn::Sub": f"mmedeploy-{STAGE}-{logical}"}))
            emulator.arns[logical] = f"arn:aws:lambda:{REGION}:123456789012:function:{emulator.refs[logical]}"
        elif kind == "AWS::SecretsManager::Secret":
            name = resolve(props["Name"])
            emulator.refs[logical] = emulator.client("secretsmanager").create_secret(Name=name, SecretString="s")["ARN"]
    emulator.roles = iam.execution_role_policies(template, resolve) | iam.state_machine_role_policies(template, resolve)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    template = packaged_template(tmp_path_factory)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        moto_api(url, "/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        # Before enforcement any credentials are accepted: that is how the administrator is made.
        admin = iam.create_administrator(NOBODY.client("iam", REGION, url))
        parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        emulator = Emulator(url, admin, template, {**parameters, "Stage": STAGE, **PSEUDO})
        create_resources(emulator)
        yield emulator
    finally:
        moto_api(url, "/moto-api/reset")
        server.stop()


@pytest.fixture
def enforced(emulator: Emulator) -> Iterator[IamEnforcement]:
    with iam.enforce_iam(emulator.url, emulator.admin) as enforcement:
        yield enforcement


def refused(call: Callable[[], Any]) -> str:
    """The error code of a call the emulator refuses."""
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


DENIED = ("AccessDeniedException", "AccessDenied")


# -- identities ---------------------------------------------------------------------------------


def test_enforcement_is_switched_on_and_off_without_leaving_a_trace(emulator: Emulator) -> None:
    # GIVEN moto as the rest of the test process has it: every credential accepted
    assert emulator.client("dynamodb", NOBODY).list_tables()["TableNames"]
    before = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
    patched = set(vars(BaseResponse))

    # WHEN IAM is enforced
    with iam.enforce_iam(emulator.url, emulator.admin):
        # THEN credentials the emulator never issued are refused
        assert refused(lambda: emulator.client("dynamodb", NOBODY).list_tables()) == "UnrecognizedClientException"
        assert iam.enforcement_active()
        with pytest.raises(RuntimeError, match="already on"):
            iam.enforce_iam(emulator.url, emulator.admin)

    # AND afterwards moto is exactly as it was
    assert (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count) == before
    assert set(vars(BaseResponse)) == patched
    assert not iam.enforcement_active()
    assert emulator.client("dynamodb", NOBODY).list_tables()["TableNames"]


def test_unknown_credentials_are_refused_by_every_service(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN enforcement, WHEN a client signs with keys the emulator never issued
    # THEN each service refuses it with the code AWS uses
    assert refused(lambda: emulator.client("dynamodb", NOBODY).list_tables()) == "UnrecognizedClientException"
    assert refused(lambda: emulator.client("s3", NOBODY).list_buckets()) == "InvalidAccessKeyId"
    assert refused(lambda: emulator.client("sts", NOBODY).get_caller_identity()) == "InvalidClientTokenId"
    assert refused(lambda: emulator.client("stepfunctions", NOBODY).list_state_machines()) == (
        "UnrecognizedClientException"
    )


def test_a_known_key_with_the_wrong_secret_is_refused(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN the administrator's key id with a made-up secret
    forged = Credentials(access_key_id=emulator.admin.access_key_id, secret_access_key="not-the-secret")

    # WHEN it signs a request THEN the signature does not match
    assert refused(lambda: emulator.client("dynamodb", forged).list_tables()) == "InvalidSignatureException"


def test_the_administrator_may_do_anything(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN the local administrator's credentials, WHEN it calls any service THEN it is allowed
    assert emulator.client("sts").get_caller_identity()["Arn"].endswith(f":user/{iam.ADMIN_USER}")
    assert emulator.refs["RegistryTable"] in emulator.client("dynamodb").list_tables()["TableNames"]
    emulator.client("s3").put_object(Bucket=emulator.refs["StagingBucket"], Key="admin.txt", Body=b"x")
    emulator.client("events").put_events(Entries=[{"Source": "t", "DetailType": "t", "Detail": "{}"}])


def test_create_administrator_again_issues_a_fresh_key_and_retires_the_old(emulator: Emulator) -> None:
    # GIVEN an administrator and a second one made by the same call, under enforcement
    with iam.enforce_iam(emulator.url, emulator.admin):
        old = emulator.admin
        new = iam.create_administrator(emulator.client("iam"))
        try:
            # THEN the new key works and the old one is no longer accepted
            assert new.client("sts", REGION, emulator.url).get_caller_identity()["Arn"].endswith(iam.ADMIN_USER)
            assert refused(lambda: old.client("sts", REGION, emulator.url).get_caller_identity()) == (
                "InvalidClientTokenId"
            )
        finally:
            emulator.admin = new


# -- the template's roles -----------------------------------------------------------------------


def test_the_validate_function_may_do_what_its_role_allows(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN the validate function's execution role, as SAM generates it from the template
    validate = emulator.function("ValidateFunction")
    s3, dynamodb = emulator.client("s3", validate), emulator.client("dynamodb", validate)
    staging, table = emulator.refs["StagingBucket"], emulator.refs["RegistryTable"]
    emulator.client("s3").put_object(Bucket=staging, Key="models/m.tar.gz", Body=b"model")

    # WHEN it reads the upload, records the version, publishes and reads its secret THEN all succeed
    assert s3.get_object(Bucket=staging, Key="models/m.tar.gz")["Body"].read() == b"model"
    s3.put_object(Bucket=staging, Key="models/report.json", Body=b"{}")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "MODEL#m"}, "sk": {"S": "VERSION#1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "MODEL#m"}, "sk": {"S": "VERSION#2"}}}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": {"pk": {"S": "MODEL#m"}, "sk": {"S": "VERSION#1"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    assert (
        dynamodb.query(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "MODEL#m"}}
        )["Count"]
        == 2
    )
    entry = {"Source": "mmedeploy", "DetailType": "t", "Detail": "{}", "EventBusName": emulator.refs["LifecycleBus"]}
    assert emulator.client("events", validate).put_events(Entries=[entry])["FailedEntryCount"] == 0
    secret = emulator.client("secretsmanager", validate).get_secret_value(SecretId=f"mmedeploy/{STAGE}/slack-bot-token")
    assert secret["SecretString"] == "s"
    # SAM's basic execution role: its own log group (what EMF metrics are written to)
    logs = emulator.client("logs", validate)
    group = f"/aws/lambda/{emulator.refs['ValidateFunction']}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": 1, "message": "{}"}])


def test_the_validate_function_is_refused_what_its_role_does_not_allow(
    emulator: Emulator, enforced: IamEnforcement
) -> None:
    # GIVEN the validate function's execution role
    validate = emulator.function("ValidateFunction")
    dynamodb, table = emulator.client("dynamodb", validate), emulator.refs["RegistryTable"]
    key = {"pk": {"S": "MODEL#m"}, "sk": {"S": "VERSION#1"}}

    # WHEN it reaches outside its role THEN each call is AccessDenied
    production = emulator.refs["ProductionBucket"]
    assert refused(lambda: emulator.client("s3", validate).put_object(Bucket=production, Key="k", Body=b"")) in DENIED
    assert refused(lambda: dynamodb.delete_item(TableName=table, Key=key)) in DENIED  # no DeleteItem
    assert refused(lambda: dynamodb.scan(TableName=table)) in DENIED
    idempotency = emulator.refs["IdempotencyTable"]  # another table
    assert refused(lambda: dynamodb.get_item(TableName=idempotency, Key={"id": {"S": "x"}})) in DENIED
    # one item of a transaction without its permission refuses the whole transaction
    items = [{"Put": {"TableName": table, "Item": key}}, {"Delete": {"TableName": table, "Key": key}}]
    assert refused(lambda: dynamodb.transact_write_items(TransactItems=items)) in DENIED
    default_bus = {"Source": "mmedeploy", "DetailType": "t", "Detail": "{}"}
    assert refused(lambda: emulator.client("events", validate).put_events(Entries=[default_bus])) in DENIED
    tokens = f"mmedeploy/{STAGE}/api-tokens"
    assert refused(lambda: emulator.client("secretsmanager", validate).get_secret_value(SecretId=tokens)) in DENIED
    namespace = {"Namespace": "mmedeploy", "MetricData": [{"MetricName": "m", "Value": 1.0}]}
    with pytest.raises(ClientError) as raised:  # CloudWatch's CBOR protocol: moto's XML refusal, unparsed
        emulator.client("cloudwatch", validate).put_metric_data(**namespace)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_api_handler_role_reads_the_registry_its_secrets_and_its_log_groups_only(
    emulator: Emulator, enforced: IamEnforcement
) -> None:
    # GIVEN the API function's role: Chalice's function, with its hand-written AWS::IAM::Role
    spec = emulator.roles["APIHandler"]
    assert spec.role_logical_id == "ApiHandlerRole" and not spec.managed_policies
    api = emulator.function("APIHandler")
    dynamodb, table = emulator.client("dynamodb", api), emulator.refs["RegistryTable"]

    # WHEN it queries the registry and writes its logs THEN that is allowed
    query = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "MODELS"}}}
    dynamodb.query(TableName=table, **query)
    secrets = emulator.client("secretsmanager", api)
    assert secrets.get_secret_value(SecretId=f"mmedeploy/{STAGE}/api-tokens")["SecretString"] == "s"
    logs = emulator.client("logs", api)
    logs.create_log_group(logGroupName=f"/aws/lambda/mmedeploy-{STAGE}-APIHandler-1A2B")

    # AND the bot token: a decision whose task is gone ends the version there, announced in Slack
    bot = f"mmedeploy/{STAGE}/slack-bot-token"
    assert secrets.get_secret_value(SecretId=bot)["SecretString"] == "s"

    # AND outside its role it is refused: another log group, a scan, another stage's secret, the idempotency table
    assert refused(lambda: logs.create_log_group(logGroupName="/aws/lambda/someone-else")) in DENIED
    assert refused(lambda: dynamodb.scan(TableName=table)) in DENIED
    assert refused(lambda: secrets.get_secret_value(SecretId="mmedeploy/another-stage/slack-bot-token")) in DENIED
    assert refused(lambda: dynamodb.query(TableName=emulator.refs["IdempotencyTable"], **query)) in DENIED


def test_every_role_of_the_template_is_created_and_assumed(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN every function and state machine of the packaged template
    functions = {lid for lid, r in resources(emulator.template).items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions <= set(emulator.roles)

    # WHEN each role is created and assumed, under enforcement
    for spec in emulator.roles.values():
        credentials = emulator.role(spec)
        # THEN its credentials are the role's own
        identity = emulator.client("sts", credentials).get_caller_identity()["Arn"]
        assert f":assumed-role/local-{spec.for_logical_id}/" in identity

    # AND SAM's generated roles carry what SAM adds: basic execution, and X-Ray for Tracing: Active
    assert set(emulator.roles["ValidateFunction"].managed_policies) == {iam.BASIC_EXECUTION_ROLE, iam.XRAY_WRITE_ONLY}
    assert emulator.roles["DeployModelStateMachine"].trusted_services == (iam.STATES_SERVICE,)


def test_a_role_may_not_assume_another(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN a function's credentials and another function's role
    validate = emulator.function("ValidateFunction")
    other = emulator.client("iam").get_role(RoleName="local-APIHandler")["Role"]["Arn"]

    # WHEN it tries to assume that role THEN it is refused: only the stack host may
    assert refused(lambda: iam.assume(emulator.client("sts", validate), other, "escalate")) in DENIED


# -- where moto's evaluation differs from AWS's -------------------------------------------------


def test_transactions_are_authorized_item_by_item(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN a role with PutItem and ConditionCheckItem on one table (no dynamodb:TransactWriteItems:
    # AWS has no such action, moto checks one)
    table_arn = emulator.arns["RegistryTable"]
    spec = synthetic_role("Transactions", {"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": table_arn})
    dynamodb, table = emulator.client("dynamodb", emulator.role(spec)), emulator.refs["RegistryTable"]
    item = {"pk": {"S": "T"}, "sk": {"S": "1"}}

    # WHEN it writes in a transaction THEN a Put is allowed and an Update is not
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item}}])
    update = {
        "TableName": table,
        "Key": item,
        "UpdateExpression": "SET a = :a",
        "ExpressionAttributeValues": {":a": {"S": "x"}},
    }
    assert refused(lambda: dynamodb.transact_write_items(TransactItems=[{"Update": update}])) in DENIED


def test_cloudwatch_and_lambda_actions_are_named_as_iam_names_them(
    emulator: Emulator, enforced: IamEnforcement
) -> None:
    # GIVEN SAM's CloudWatchPutMetricPolicy and LambdaInvokePolicy for one function
    lambda_arn = f"arn:aws:lambda:{REGION}:123456789012:function:mmedeploy-{STAGE}-validate*"
    spec = synthetic_role(
        "Metrics",
        {"Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": lambda_arn},
    )
    credentials = emulator.role(spec)

    # WHEN it sends metrics THEN cloudwatch:PutMetricData allows it (moto names it monitoring:...)
    metric = {"Namespace": "mmedeploy", "MetricData": [{"MetricName": "m", "Value": 1.0}]}
    emulator.client("cloudwatch", credentials).put_metric_data(**metric)
    # AND lambda:InvokeFunction is checked on the function's ARN (moto names it lambda:Invoke):
    # the allowed function is looked up (it does not exist here), another one is refused
    lambdas = emulator.client("lambda", credentials)
    allowed = refused(lambda: lambdas.invoke(FunctionName=f"mmedeploy-{STAGE}-validate"))
    assert allowed == "ResourceNotFoundException"
    assert refused(lambda: lambdas.invoke(FunctionName=f"mmedeploy-{STAGE}-flip-alias")) in DENIED


def test_copying_an_object_needs_read_access_to_the_source(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN a role that may write the production bucket but not read the staging one
    staging, production = emulator.refs["StagingBucket"], emulator.refs["ProductionBucket"]
    emulator.client("s3").put_object(Bucket=staging, Key="src.tar.gz", Body=b"model")
    write = {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{production}/*"}
    writer = emulator.client("s3", emulator.role(synthetic_role("WriterOnly", write)))

    # WHEN it copies from staging to production THEN AWS refuses (moto checked only the target)
    source = {"Bucket": staging, "Key": "src.tar.gz"}
    assert refused(lambda: writer.copy_object(Bucket=production, Key="dst.tar.gz", CopySource=source)) in DENIED

    # AND the promotion role, which may read staging, copies it
    promote = emulator.client("s3", emulator.function("PreparePromotionFunction"))
    promote.copy_object(Bucket=production, Key="dst.tar.gz", CopySource=source)


def test_a_state_machine_calls_services_as_its_own_role(emulator: Emulator, enforced: IamEnforcement) -> None:
    # GIVEN a state machine named as the template's deploy machine, whose role may send to one
    # queue, waiting for a task token there
    admin_sqs = emulator.client("sqs")
    queue = admin_sqs.create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = admin_sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}
    role_arn = iam.create_execution_role(
        emulator.client("iam"), "local-WaitingMachine", synthetic_role("WaitingMachine", send)
    )
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    states = emulator.client("stepfunctions")
    machine = states.create_state_machine(name=MACHINE_NAME, definition=json.dumps(definition), roleArn=role_arn)
    execution = states.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]

    # WHEN the machine sends the token (as its role) and a function answers it
    token = json.loads(wait_for_message(admin_sqs, queue))["token"]
    validate = emulator.client("stepfunctions", emulator.function("ValidateFunction"))
    api = emulator.client("stepfunctions", emulator.function("APIHandler"))

    # THEN only the role allowed states:SendTaskSuccess on that machine may answer
    assert refused(lambda: validate.send_task_success(taskToken=token, output="{}")) in DENIED
    api.send_task_success(taskToken=token, output='{"approved": true}')
    assert wait_for_status(states, execution) == "SUCCEEDED"
    # AND a token no execution issued is refused as invalid, not as a permission
    assert refused(lambda: api.send_task_success(taskToken="made-up", output="{}")) == "InvalidToken"


def test_a_state_machine_role_without_the_permission_fails_the_task(
    emulator: Emulator, enforced: IamEnforcement
) -> None:
    # GIVEN a state machine whose role grants nothing, sending to a queue
    admin_sqs = emulator.client("sqs")
    queue = admin_sqs.create_queue(QueueName="nobody-may-send")["QueueUrl"]
    role_arn = iam.create_execution_role(emulator.client("iam"), "local-EmptyMachine", synthetic_role("EmptyMachine"))
    task = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}
    task["Parameters"] = {"QueueUrl": queue, "MessageBody": "x"}
    definition = {"StartAt": "Send", "States": {"Send": task}}
    states = emulator.client("stepfunctions")
    machine = states.create_state_machine(name="empty", definition=json.dumps(definition), roleArn=role_arn)

    # WHEN it runs THEN the task is refused and the execution fails
    execution = states.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    assert wait_for_status(states, execution) == "FAILED"
    assert "Messages" not in admin_sqs.receive_message(QueueUrl=queue)


def wait_for_message(sqs: Any, queue: str, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return str(messages[0]["Body"])
    raise AssertionError(f"no message on {queue} within {timeout_s} s")


def wait_for_status(states: Any, execution: str, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(states.describe_execution(executionArn=execution)["status"])
        if status != "RUNNING":
            return status
        time.sleep(0.1)
    raise AssertionError(f"{execution} still RUNNING after {timeout_s} s")
