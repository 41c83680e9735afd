"""The emulator's fault switch (DynamoDB throttling a table) and what the registry's adapter makes
of a throttled request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client
from werkzeug.wrappers import Response

from chalicelib.adapters.dynamodb import registry_error
from chalicelib.domain.errors import RegistryBusy, RegistryError
from mmedeploy.local.faults import CONTROL_PATH, FaultInjector, Throttles, tables_named


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def passed_through(environ: dict[str, Any], start_response: Any) -> Any:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return Response(b"moto saw " + body)(environ, start_response)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Client:
    return Client(FaultInjector(passed_through, Throttles(clock)))


def dynamodb(client: Client, operation: str, request: dict[str, Any]) -> Any:
    headers = {"X-Amz-Target": f"DynamoDB_20120810.{operation}", "Content-Type": "application/x-amz-json-1.0"}
    return client.post("/", data=json.dumps(request), headers=headers)


def test_every_table_a_request_names_is_found() -> None:
    assert tables_named({"TableName": "registry", "Key": {}}) == {"registry"}
    assert tables_named({"RequestItems": {"a": [], "b": []}}) == {"a", "b"}
    transaction = {"TransactItems": [{"Put": {"TableName": "registry"}}, {"ConditionCheck": {"TableName": "index"}}]}
    assert tables_named(transaction) == {"registry", "index"}
    assert tables_named({}) == set()


def test_a_throttled_table_is_refused_as_dynamodb_does_until_the_time_is_up(emulator: Client, clock: Clock) -> None:
    set_it = emulator.post(CONTROL_PATH, json={"table": "registry", "seconds": 30})
    assert set_it.json == {"throttled": ["registry"]}
    refused = dynamodb(emulator, "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "registry"}}]})
    assert refused.status_code == 400
    assert json.loads(refused.data)["__type"].endswith("#ProvisionedThroughputExceededException")
    # another table, and other services, pass (with their bodies intact)
    other = dynamodb(emulator, "GetItem", {"TableName": "idempotency"})
    assert other.status_code == 200 and b'"idempotency"' in other.data
    assert emulator.post("/", data=b"Action=ListQueues").data == b"moto saw Action=ListQueues"
    # the time is up: the table answers again
    clock.now += 30
    assert dynamodb(emulator, "GetItem", {"TableName": "registry"}).status_code == 200


def test_a_throttle_is_lifted_with_zero_seconds_and_a_bad_request_is_refused(emulator: Client) -> None:
    emulator.post(CONTROL_PATH, json={"table": "registry", "seconds": 30})
    assert emulator.post(CONTROL_PATH, json={"table": "registry", "seconds": 0}).json == {"throttled": []}
    assert dynamodb(emulator, "GetItem", {"TableName": "registry"}).status_code == 200
    assert emulator.post(CONTROL_PATH, json={"seconds": 5}).status_code == 400


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ProvisionedThroughputExceededException", RegistryBusy),
        ("ThrottlingException", RegistryBusy),
        ("ValidationException", RegistryError),
    ],
)
def test_a_throttled_registry_request_is_the_domains_registry_busy(code: str, kind: type[RegistryError]) -> None:
    error = registry_error(ClientError({"Error": {"Code": code, "Message": "slow down"}}, "PutItem"))
    assert type(error) is kind and code in str(error)
