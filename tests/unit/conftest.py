"""Unit-test fixtures: the registry table on in-process moto (one per module, emptied before each
test); the AWS package of STAGE=staging."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mmedeploy.deploy import package
from tests.unit.registry_table import create_registry_table, empty_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_STAGE = "staging"


@pytest.fixture(scope="module")
def _registry_on_moto() -> Iterator[Any]:
    """One in-process moto and one registry table per test module (a fresh mock and table per test
    cost ~0.2 s of set-up each); ``dynamodb`` empties the table before each test."""
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        create_registry_table(client)
        yield client


@pytest.fixture
def dynamodb(_registry_on_moto: Any) -> Any:
    """The registry table on moto, empty (as a new table is), for a test of the adapters."""
    empty_table(_registry_on_moto)
    return _registry_on_moto


@pytest.fixture(scope="module")
def _session_on_moto() -> Iterator[boto3.session.Session]:
    """One in-process moto per test module, with the registry table, for the CLI's DeploymentTarget
    (which makes its clients from a session)."""
    with mock_aws():
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        create_registry_table(session.client("dynamodb"))
        yield session


@pytest.fixture
def moto_session(_session_on_moto: boto3.session.Session) -> boto3.session.Session:
    """A boto3 session on moto whose registry table is empty, for a test of the CLI."""
    empty_table(_session_on_moto.client("dynamodb"))
    return _session_on_moto


@pytest.fixture(scope="session")
def staging_package() -> package.BuildResult:
    """``build/staging`` as ``make package STAGE=staging`` builds it: reused when its inputs are
    unchanged (``make test`` has just built it), rebuilt where they changed. Built once a session."""
    try:
        return package.ensure_built(PACKAGE_STAGE, ROOT / "build" / PACKAGE_STAGE)
    except package.PackageError as exc:
        pytest.fail(f"make package STAGE={PACKAGE_STAGE} fails: {exc}", pytrace=False)
