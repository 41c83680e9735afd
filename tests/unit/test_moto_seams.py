"""The EventBridge input rules the seam applies (the delivery itself is tested on the stack)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from moto.stepfunctions.parser.api import ExecutionStatus

from mmedeploy.local.moto_seams import STATUS_CHANGE, status_change_entry, target_input, transform_input

EVENT = {"detail-type": "ModelApproved", "detail": {"name": "idcheck", "version": "1", "n": 3}, "time": "t"}


def test_input_forms() -> None:
    assert target_input({"Arn": "x"}, EVENT) == EVENT
    assert target_input({"Arn": "x", "Input": '{"fixed": true}'}, EVENT) == {"fixed": True}
    assert target_input({"Arn": "x", "InputPath": "$.detail"}, EVENT) == EVENT["detail"]
    assert target_input({"Arn": "x", "InputPath": "$.detail.name"}, EVENT) == "idcheck"


def test_json_templates_quote_strings_like_eventbridge() -> None:
    paths = {"name": "$.detail.name", "n": "$.detail.n"}
    assert transform_input('{"model": <name>, "count": <n>}', paths, EVENT) == {"model": "idcheck", "count": 3}
    assert transform_input('{"label": "model <name>"}', paths, EVENT) == {"label": "model idcheck"}
    assert transform_input('{"event": <aws.events.event.json>}', {}, EVENT) == {"event": EVENT}


def test_text_templates_stay_text() -> None:
    assert transform_input("model <name> approved", {"name": "$.detail.name"}, EVENT) == "model idcheck approved"


class _EndedExecution:
    def to_describe_output(self) -> dict[str, Any]:
        return {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e1",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "name": "e1",
            "status": ExecutionStatus.ABORTED,
            "startDate": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            "stopDate": datetime.datetime(2026, 1, 1, 0, 0, 2, tzinfo=datetime.UTC),
            "input": '{"name": "fraud", "version": "1"}',
            "cause": "stopped by an operator",
        }


def test_an_ended_execution_is_announced_as_aws_announces_it() -> None:
    entry = status_change_entry(_EndedExecution())  # type: ignore[arg-type]
    assert (entry["Source"], entry["DetailType"], STATUS_CHANGE) == (
        "aws.states",
        "Step Functions Execution Status Change",
        "Step Functions Execution Status Change",
    )
    detail = json.loads(entry["Detail"])
    assert detail["status"] == "ABORTED" and detail["name"] == "e1"
    assert (detail["startDate"], detail["stopDate"]) == (1767225600000, 1767225602000)
    assert json.loads(detail["input"]) == {"name": "fraud", "version": "1"}
    assert (detail["cause"], detail["error"], detail["output"]) == ("stopped by an operator", None, None)
    assert entry["Resources"] == [detail["executionArn"]]


def test_get_bucket_notification_configuration_answers_eventbridge_as_s3_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from moto import mock_aws
    from moto.s3.responses import S3Response

    from mmedeploy.local.moto_seams import _answering_eventbridge

    monkeypatch.setattr(
        S3Response, "get_bucket_notification", _answering_eventbridge(S3Response.get_bucket_notification)
    )
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        for bucket in ("notifying-bucket", "quiet-bucket"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(
            Bucket="notifying-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket="notifying-bucket")
        assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket="quiet-bucket")


@pytest.mark.parametrize("seamed", [True, False])
def test_a_failed_transaction_undoes_only_its_own_writes(monkeypatch: pytest.MonkeyPatch, seamed: bool) -> None:
    import copy
    import threading
    import time

    import boto3
    import moto.dynamodb.models as dynamodb_models
    from moto import mock_aws

    from mmedeploy.local.moto_seams import dynamodb_seams

    if seamed:
        for owner, attribute, replacement in dynamodb_seams():
            monkeypatch.setattr(owner, attribute, replacement)
    armed, started = threading.Event(), threading.Event()
    snapshot = copy.deepcopy

    def slow_snapshot(value: object, memo: object = None) -> object:
        # the transaction's snapshot of the table, then time for another request to land
        copied = snapshot(value, memo)  # type: ignore[arg-type]
        if armed.is_set() and isinstance(value, dynamodb_models.Table) and not started.is_set():
            started.set()
            time.sleep(0.3)
        return copied

    monkeypatch.setattr(dynamodb_models.copy, "deepcopy", slow_snapshot)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        db.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def failing_transaction() -> None:
            # GIVEN a transaction whose condition fails (its item is not there)
            put = {"TableName": "t", "Item": {"pk": {"S": "mine"}}, "ConditionExpression": "attribute_exists(pk)"}
            with pytest.raises(db.exceptions.TransactionCanceledException):
                db.transact_write_items(TransactItems=[{"Put": put}])

        worker = threading.Thread(target=failing_transaction)
        armed.set()
        worker.start()
        started.wait(5)
        # WHEN another request writes meanwhile
        db.put_item(TableName="t", Item={"pk": {"S": "theirs"}})
        worker.join()
        # THEN the failed transaction's rollback keeps it (with the seam; moto alone loses it)
        kept = "Item" in db.get_item(TableName="t", Key={"pk": {"S": "theirs"}})
        assert kept is seamed
