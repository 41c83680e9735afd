"""Fixtures for tests that need the running local stack (started once per test session)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mmedeploy.local.iam import RoleSpec, create_execution_role
from mmedeploy.local.lambdas.service import LOCAL_RUNTIME
from mmedeploy.local.stack import StackInfo
from testkit.polling import wait_for  # noqa: F401 - the integration tests import it from here
from testkit.stack_process import start_stack, stop_stack


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


HANDLERS = Path(__file__).with_name("stack_handlers.py")


def handlers_zip() -> bytes:
    """The test functions' code package: the handlers module alone (boto3 comes with the runtime)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(HANDLERS, "stack_handlers.py")
    return buffer.getvalue()


# What the test functions' role allows: their own bucket and table, nothing else (the emulator
# enforces IAM, so a call outside it is refused as on AWS).
SEAM_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::seam-records/*"},
        {
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem"],
            "Resource": "arn:aws:dynamodb:*:*:table/seam-counters",
        },
        {"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"], "Resource": "*"},
    ],
}


@pytest.fixture(scope="session")
def make_function(aws: Callable[[str], Any]) -> Callable[[str, str], str]:
    role = create_execution_role(
        aws("iam"),
        "seam-tests",
        RoleSpec(
            for_logical_id="seam-tests",
            role_logical_id=None,
            trusted_services=("lambda.amazonaws.com",),
            policies={"seam-tests": SEAM_POLICY},
            managed_policies={},
        ),
    )
    aws("s3").create_bucket(Bucket="seam-records")
    aws("dynamodb").create_table(
        TableName="seam-counters",
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    created: dict[str, str] = {}
    code = handlers_zip()

    def make(name: str, handler: str) -> str:
        if name not in created:
            created[name] = aws("lambda").create_function(
                FunctionName=name,
                Runtime=LOCAL_RUNTIME,
                Role=role,
                Handler=f"stack_handlers.{handler}",
                Code={"ZipFile": code},
                Timeout=30,
                Environment={"Variables": {"SEAM_TESTS": "1"}},
            )["FunctionArn"]
        return created[name]

    return make


@pytest.fixture(scope="session")
def states_role(aws: Callable[[str], Any]) -> str:
    """The role the test state machines run as: it may invoke the test functions, nothing else."""
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:*:*:function:seam-*"}
        ],
    }
    spec = RoleSpec(
        for_logical_id="seam-states",
        role_logical_id=None,
        trusted_services=("states.amazonaws.com",),
        policies={"invoke-seam-functions": invoke},
        managed_policies={},
    )
    return create_execution_role(aws("iam"), "seam-states", spec)
