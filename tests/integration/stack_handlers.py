"""Lambda handlers for the local-stack tests. Zipped alone (conftest.handlers_zip), they run as
any function does locally (under awslambdaric, with their own role), and record what they saw
through AWS APIs (S3, DynamoDB), as real functions would."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3

RECORDS_BUCKET = "seam-records"
COUNTERS_TABLE = "seam-counters"


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass


def _put(key: str, body: Any) -> None:
    boto3.client("s3").put_object(Bucket=RECORDS_BUCKET, Key=key, Body=json.dumps(body).encode())


def record(event: Any, context: Any) -> dict[str, Any]:
    _put(f"{context.function_name}/{uuid.uuid4()}.json", {"event": event, "request_id": context.aws_request_id})
    return {"recorded": True}


def slow_record(event: Any, context: Any) -> dict[str, Any]:
    time.sleep(1.5)
    return record(event, context)


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails with TransientError until called ``fail_times`` times for ``key``."""
    counted = boto3.client("dynamodb").update_item(
        TableName=COUNTERS_TABLE,
        Key={"key": {"S": event["key"]}},
        UpdateExpression="ADD attempts :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    attempts = int(counted["Attributes"]["attempts"]["N"])
    if attempts <= event["fail_times"]:
        raise TransientError(f"attempt {attempts} fails on purpose")
    return {"attempts": attempts}


def always_fails(event: Any, context: Any) -> None:
    raise PermanentError("this input can never succeed")


def hold_token(event: dict[str, Any], context: Any) -> None:
    _put(f"tokens/{event['id']}", {"token": event["token"]})


def write_elsewhere(event: dict[str, Any], context: Any) -> None:
    """Writes where its role does not allow: the emulator must refuse it."""
    boto3.client("s3").put_object(Bucket=event["bucket"], Key="not-allowed", Body=b"x")
