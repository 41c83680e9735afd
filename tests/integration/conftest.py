"""Fixtures for tests that need the running local stack (started once per test session)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mmedeploy.local.stack import StackInfo
from tests.stack_process import start_stack, stop_stack


@pytest.fixture(scope="session")
def local_stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session stack's state directory (stack.json, stack.log, the MME's Triton logs)."""
    return tmp_path_factory.mktemp("stack") / ".mmedeploy"


@pytest.fixture(scope="session")
def local_stack(local_stack_dir: Path) -> Iterator[StackInfo]:
    info = start_stack(local_stack_dir)
    try:
        yield info
    finally:
        stop_stack(local_stack_dir)


@pytest.fixture(scope="session")
def aws(local_stack: StackInfo) -> Callable[[str], Any]:
    """A client factory for the stack's AWS emulator."""
    session = boto3.session.Session(
        aws_access_key_id=local_stack.aws_access_key_id,
        aws_secret_access_key=local_stack.aws_secret_access_key,
        region_name=local_stack.region,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=local_stack.aws_endpoint_url)  # type: ignore[call-overload]

    return client


def placeholder_zip() -> bytes:
    """Lambda needs a code package; the seam runs the handler from the working tree instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs from the working tree in the local stack")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_function(aws: Callable[[str], Any]) -> Callable[[str, str], str]:
    iam = aws("iam")
    role = iam.create_role(
        RoleName="seam-tests",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ]
            }
        ),
    )["Role"]["Arn"]
    aws("s3").create_bucket(Bucket="seam-records")
    aws("dynamodb").create_table(
        TableName="seam-counters",
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    created: dict[str, str] = {}

    def make(name: str, handler: str) -> str:
        if name not in created:
            created[name] = aws("lambda").create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler=f"tests.integration.stack_handlers.{handler}",
                Code={"ZipFile": placeholder_zip()},
                Timeout=30,
                Environment={"Variables": {"SEAM_TESTS": "1"}},
            )["FunctionArn"]
        return created[name]

    return make


def wait_for(probe: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until ``probe`` returns something truthy (delivery is asynchronous, as on AWS)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
