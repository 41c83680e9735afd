"""The registry table for unit tests: in-process moto, built from infra/template.yaml's
RegistryTable so the tests follow the infrastructure."""

from __future__ import annotations

from typing import Any

from mmedeploy.local.provision import load_template

TABLE = "unit-registry"


def create_registry_table(client: Any, name: str = TABLE) -> None:
    """The RegistryTable of infra/template.yaml (keys, indexes, billing), under a test name."""
    properties = load_template()["Resources"]["RegistryTable"]["Properties"]
    definition = {
        key: properties[key]
        for key in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
        if key in properties
    }
    client.create_table(TableName=name, **definition)


def empty_table(client: Any, name: str = TABLE) -> None:
    """Delete every item of the table (a few ms on moto, where a new table takes ~0.1 s)."""
    keys = [
        {"pk": item["pk"], "sk": item["sk"]}
        for page in client.get_paginator("scan").paginate(TableName=name, ProjectionExpression="pk, sk")
        for item in page["Items"]
    ]
    for start in range(0, len(keys), 25):  # BatchWriteItem's limit
        deletes = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        client.batch_write_item(RequestItems={name: deletes})
