"""The local stack, tested from outside as its users reach it: HTTP, boto3, slack_sdk."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from slack_sdk import WebClient

from mmedeploy.local.stack import StackInfo
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STACK_JSON_FIELDS = {
    "api_url", "aws_endpoint_url", "mme_url", "slack_url", "region", "staging_bucket", "production_bucket",
    "staging_endpoint", "production_endpoint", "slack_signing_secret", "slack_approver_ids", "api_token", "admin_token",
}  # fmt: skip


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def records(aws: Callable[[str], Any], prefix: str) -> list[dict[str, Any]]:
    s3 = aws("s3")
    listed = s3.list_objects_v2(Bucket="seam-records", Prefix=prefix).get("Contents", [])
    return [json.loads(s3.get_object(Bucket="seam-records", Key=o["Key"])["Body"].read()) for o in listed]


def test_stack_json_names_everything_and_the_api_answers(local_stack: StackInfo) -> None:
    assert set(local_stack.model_dump()) >= STACK_JSON_FIELDS
    assert get_json(f"{local_stack.api_url}/health") == {"status": "ok"}


def test_resources_come_from_the_template(local_stack: StackInfo, aws: Callable[[str], Any]) -> None:
    buckets = {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    assert {local_stack.staging_bucket, local_stack.production_bucket} <= buckets
    tables = aws("dynamodb").list_tables()["TableNames"]
    assert {local_stack.registry_table, local_stack.idempotency_table} <= set(tables)
    assert aws("events").describe_event_bus(Name="mmedeploy-lifecycle")["Name"] == "mmedeploy-lifecycle"
    endpoint = aws("sagemaker").describe_endpoint(EndpointName=local_stack.staging_endpoint)
    config = aws("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = aws("sagemaker").describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{local_stack.staging_bucket}/"
    secret = aws("secretsmanager").get_secret_value(SecretId="mmedeploy/dev/slack-signing-secret")
    assert secret["SecretString"] == local_stack.slack_signing_secret
    stacks = aws("cloudformation").describe_stacks(StackName="mmedeploy-dev")["Stacks"]
    assert stacks[0]["StackStatus"] == "CREATE_COMPLETE"


def test_an_s3_upload_reaches_a_lambda_through_the_eventbridge_rule(
    local_stack: StackInfo, aws: Callable[[str], Any], make_function: Callable[[str, str], str]
) -> None:
    # GIVEN a rule on the default bus for *.tar.gz uploads to the staging bucket, targeting a function
    arn = make_function("seam-s3-upload", "record")
    events = aws("events")
    events.put_rule(
        Name="seam-upload",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [local_stack.staging_bucket]},
                    "object": {"key": [{"suffix": ".tar.gz"}]},
                },
            }
        ),
    )
    events.put_targets(Rule="seam-upload", Targets=[{"Id": "f", "Arn": arn, "InputPath": "$.detail"}])
    # WHEN a tarball and a text file are uploaded
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key="ignored.txt", Body=b"x")
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key="seam_1.tar.gz", Body=b"tarball")
    # THEN the handler ran once, with the event's detail (InputPath honoured)
    seen = wait_for(lambda: records(aws, "seam-s3-upload/"), what="the upload event")
    time.sleep(0.5)
    seen = records(aws, "seam-s3-upload/")
    assert [r["event"]["object"]["key"] for r in seen] == ["seam_1.tar.gz"]
    assert seen[0]["event"]["bucket"]["name"] == local_stack.staging_bucket


def test_event_invocations_are_asynchronous(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str]
) -> None:
    make_function("seam-async", "slow_record")
    started = time.monotonic()
    response = aws("lambda").invoke(FunctionName="seam-async", InvocationType="Event", Payload=b'{"n": 1}')
    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 1.0  # the handler sleeps 1.5 s
    assert wait_for(lambda: records(aws, "seam-async/"), what="the async invocation")[0]["event"] == {"n": 1}


def test_a_handler_error_is_reported_as_lambda_reports_it(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str]
) -> None:
    make_function("seam-fails", "always_fails")
    response = aws("lambda").invoke(FunctionName="seam-fails", Payload=b"{}")
    assert response["FunctionError"]
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "PermanentError"
    assert "never succeed" in payload["errorMessage"]


def _state_machine(aws: Callable[[str], Any], role: str, name: str, definition: dict[str, Any]) -> str:
    # Step Functions calls Lambda as this role (IAM is enforced): conftest's states_role may
    return aws("stepfunctions").create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]


def _finished(aws: Callable[[str], Any], execution_arn: str) -> dict[str, Any] | None:
    described = aws("stepfunctions").describe_execution(executionArn=execution_arn)
    return None if described["status"] == "RUNNING" else described


def test_step_functions_retries_a_lambda_task_and_resumes_on_a_task_token(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str], states_role: str
) -> None:
    flaky = make_function("seam-flaky", "flaky")
    hold = make_function("seam-hold-token", "hold_token")
    machine = _state_machine(
        aws,
        states_role,
        "seam-retry-and-token",
        {
            "StartAt": "Flaky",
            "States": {
                "Flaky": {
                    "Type": "Task",
                    "Resource": flaky,
                    "Retry": [
                        {"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}
                    ],
                    "ResultPath": "$.flaky",
                    "Next": "Approval",
                },
                "Approval": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": hold,
                        "Payload": {"token.$": "$$.Task.Token", "id.$": "$$.Execution.Name"},
                    },
                    "TimeoutSeconds": 60,
                    "ResultPath": "$.decision",
                    "End": True,
                },
            },
        },
    )
    sfn = aws("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=machine, name="run-1", input=json.dumps({"key": "run-1", "fail_times": 2})
    )
    token = wait_for(lambda: records(aws, "tokens/run-1"), what="the task token")[0]["token"]
    sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    result = wait_for(lambda: _finished(aws, execution["executionArn"]), what="the execution to finish")
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["flaky"] == {"attempts": 3}  # two failures retried, third attempt succeeded
    assert output["decision"] == {"approved": True}
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")


def test_step_functions_catch_sees_the_exception_name(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str], states_role: str
) -> None:
    fails = make_function("seam-fails", "always_fails")
    machine = _state_machine(
        aws,
        states_role,
        "seam-catch",
        {
            "StartAt": "Work",
            "States": {
                "Work": {
                    "Type": "Task",
                    "Resource": fails,
                    "Catch": [{"ErrorEquals": ["PermanentError"], "ResultPath": "$.error", "Next": "Handled"}],
                    "End": True,
                },
                "Handled": {"Type": "Pass", "End": True},
            },
        },
    )
    execution = aws("stepfunctions").start_execution(stateMachineArn=machine, input="{}")
    result = wait_for(lambda: _finished(aws, execution["executionArn"]), what="the execution to finish")
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["error"]["Error"] == "PermanentError"


def test_an_event_starts_a_state_machine_with_the_transformed_input(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str], states_role: str
) -> None:
    machine = _state_machine(
        aws, states_role, "seam-target", {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    )
    events = aws("events")
    events.put_rule(
        Name="seam-approved",
        EventBusName="mmedeploy-lifecycle",
        EventPattern=json.dumps({"detail-type": ["ModelApproved"]}),
    )
    events.put_targets(
        Rule="seam-approved",
        EventBusName="mmedeploy-lifecycle",
        Targets=[
            {
                "Id": "sfn",
                "Arn": machine,
                "RoleArn": "arn:aws:iam::123456789012:role/seam-tests",
                "InputTransformer": {
                    "InputPathsMap": {"name": "$.detail.name", "version": "$.detail.version"},
                    "InputTemplate": '{"model": <name>, "version": <version>}',
                },
            }
        ],
    )
    events.put_events(
        Entries=[
            {
                "EventBusName": "mmedeploy-lifecycle",
                "Source": "mmedeploy",
                "DetailType": "ModelApproved",
                "Detail": json.dumps({"name": "idcheck", "version": "1"}),
            }
        ]
    )
    sfn = aws("stepfunctions")
    executions = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], what="an execution")
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"model": "idcheck", "version": "1"}


def test_a_dynamodb_conditional_write_behaves_as_on_aws(local_stack: StackInfo, aws: Callable[[str], Any]) -> None:
    dynamodb = aws("dynamodb")
    item = {"pk": {"S": "MODEL#conditional-write-probe"}, "sk": {"S": "VERSION#1"}, "status": {"S": "RECEIVED"}}
    dynamodb.put_item(TableName=local_stack.registry_table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(
            TableName=local_stack.registry_table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_the_slack_sink_records_slack_sdk_calls(local_stack: StackInfo) -> None:
    client = WebClient(token="xoxb-local", base_url=f"{local_stack.slack_url}/api/")
    response = client.chat_postMessage(channel="#model-approvals", text="idcheck 1 awaits approval")
    assert response["ok"] is True
    client.chat_update(channel="#model-approvals", ts=response["ts"], text="approved")
    messages = get_json(f"{local_stack.slack_url}/_messages")
    methods = [(m["method"], m["payload"].get("text")) for m in messages]
    assert ("chat.postMessage", "idcheck 1 awaits approval") in methods
    assert ("chat.update", "approved") in methods
