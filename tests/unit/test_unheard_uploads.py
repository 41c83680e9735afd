"""Uploads the registry never heard of (their event lost, or the trigger failed past its retries):
the sweep lists the staging bucket and registers them as the upload trigger would. The listing on
moto's S3 (in-process); the rest on the registry with the pipeline's fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.staging_uploads import StagedObject, StagingUploads
from chalicelib.deploy_model.stage_io import UploadedObject
from chalicelib.deploy_model.unheard_uploads import ACTOR, LOOKBACK, UNHEARD_AFTER_S, UnheardUploads
from chalicelib.deploy_model.upload_trigger import UNNAMED_VERSION, UploadResult
from chalicelib.domain.lifecycle import Status
from tests.unit.test_pipeline_stages import BUCKET, World, tarball

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


class FakeStaging:
    """The staging bucket's listing, as StagingUploads gives it."""

    bucket = BUCKET

    def __init__(self) -> None:
        self.objects: dict[str, tuple[StagedObject, str | None]] = {}

    def put(self, key: str, etag: str, age_s: float, version_id: str | None = "v1") -> None:
        self.objects[key] = (StagedObject(key, etag, 10, NOW - timedelta(seconds=age_s)), version_id)

    def since(self, moment: datetime) -> Iterator[StagedObject]:
        return (staged for staged, _ in self.objects.values() if staged.last_modified >= moment)

    def version_of(self, key: str, etag: str) -> str | None:
        staged, version_id = self.objects[key]
        return version_id if staged.etag == etag else None


class Heard:
    def __init__(self) -> None:
        self.world = World()
        self.staging = FakeStaging()
        self.handled: list[tuple[UploadedObject, str]] = []

        def handle(upload: UploadedObject, actor: str) -> UploadResult:
            self.handled.append((upload, actor))
            return self.world.trigger.handle(upload, actor)

        self.unheard = UnheardUploads(self.staging, self.world.trigger, handle, now=lambda: NOW)  # type: ignore[arg-type]


@pytest.fixture
def heard() -> Heard:
    return Heard()


def test_an_upload_whose_event_never_came_is_registered_and_its_deployment_started(heard: Heard) -> None:
    # GIVEN a tarball in the staging bucket for two minutes, and no version of it in the registry
    heard.staging.put("fraud_1.tar.gz", "etag-1", age_s=120)
    # WHEN the sweep runs
    report = heard.unheard.run()
    # THEN it is registered RECEIVED by the sweep, pinned to its object version, and deployed
    assert report.registered == ["fraud_1.tar.gz: started"]
    record = heard.world.registry.get("fraud", "1", with_history=True)
    assert (record.status, record.etag, record.object_version) == (Status.RECEIVED, "etag-1", "v1")
    assert record.history[0].actor == ACTOR
    (upload, _), *_ = heard.handled
    assert upload.execution_name() in heard.world.sfn.executions


def test_uploads_the_registry_knows_are_left_alone(heard: Heard) -> None:
    # GIVEN an upload registered by its event, and a later one of other bytes the validator refused
    heard.world.upload(tarball("1"), key="fraud_1.tar.gz")
    registered = heard.world.registry.get("fraud", "1")
    heard.staging.put("fraud_1.tar.gz", registered.etag, age_s=300)
    heard.world.tracker.refuse_upload(registered, "etag-other", "f" * 64, "other bytes", "pipeline/validate")
    heard.staging.put("fraud_1.tar.gz", "etag-other", age_s=300)
    # AND a badly named upload recorded under its stem
    heard.world.upload(b"x", key="no version.tar.gz")
    heard.staging.objects["no version.tar.gz"] = (StagedObject("no version.tar.gz", "e", 1, NOW - LOOKBACK / 2), "v1")
    # WHEN the sweep runs THEN it hands nothing to the trigger
    assert heard.unheard.run().registered == []
    assert heard.handled == []
    assert heard.world.registry.find("no version", UNNAMED_VERSION) is not None


def test_a_fresh_upload_is_left_to_its_event_and_an_old_one_to_people(heard: Heard) -> None:
    heard.staging.put("fresh_1.tar.gz", "e1", age_s=UNHEARD_AFTER_S - 1)
    heard.staging.put("ancient_1.tar.gz", "e2", age_s=LOOKBACK.total_seconds() + 1)
    assert heard.unheard.run().registered == []
    assert heard.world.registry.find("fresh", "1") is None and heard.world.registry.find("ancient", "1") is None


def test_an_upload_replaced_since_the_listing_waits_for_the_next_sweep(heard: Heard) -> None:
    heard.staging.put("fraud_1.tar.gz", "etag-1", age_s=120, version_id=None)
    assert heard.unheard.run().registered == []
    assert heard.handled == []


def test_one_upload_that_cannot_be_registered_does_not_stop_the_others(heard: Heard) -> None:
    heard.staging.put("a_1.tar.gz", "e1", age_s=120)
    heard.staging.put("b_1.tar.gz", "e2", age_s=120)
    real = heard.unheard._handle

    def flaky(upload: UploadedObject, actor: str) -> UploadResult:
        if upload.key == "a_1.tar.gz":
            raise RuntimeError("registry busy")
        return real(upload, actor)

    heard.unheard._handle = flaky
    report = heard.unheard.run()
    assert report.failed == ["a_1.tar.gz"] and report.registered == ["b_1.tar.gz: started"]


# -- the listing, on moto's S3 ----------------------------------------------------------------
@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_the_listing_gives_tarballs_since_a_moment_and_their_current_version(s3: Any) -> None:
    put = s3.put_object(Bucket=BUCKET, Key="fraud_1.tar.gz", Body=b"one")
    s3.put_object(Bucket=BUCKET, Key="notes.txt", Body=b"not a tarball")
    staging = StagingUploads(s3, BUCKET)
    (listed,) = staging.since(datetime.now(UTC) - timedelta(minutes=5))
    assert (listed.key, listed.etag, listed.size) == ("fraud_1.tar.gz", put["ETag"].strip('"'), 3)
    assert list(staging.since(datetime.now(UTC) + timedelta(minutes=5))) == []
    assert staging.version_of("fraud_1.tar.gz", listed.etag) == put["VersionId"]
    # replaced since the listing, or deleted: no version to register
    s3.put_object(Bucket=BUCKET, Key="fraud_1.tar.gz", Body=b"two")
    assert staging.version_of("fraud_1.tar.gz", listed.etag) is None
    assert staging.version_of("gone_1.tar.gz", listed.etag) is None
