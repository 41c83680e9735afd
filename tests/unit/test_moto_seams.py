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
