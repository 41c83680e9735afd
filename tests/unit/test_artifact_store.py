"""ArtifactStore.copy_immutable (promoting an artifact from staging to production) and
ArtifactStore.exists (is a pinned object version still there), on in-process moto."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from chalicelib.adapters.artifact_store import MAX_PARTS, ArtifactConflict, ArtifactMissing, ArtifactStore, CopyResult
from chalicelib.domain.errors import ServiceError

STAGING = "staging-artifacts"
PROD = "prod-artifacts"
KEY = "models/idcheck/3/model.tar.gz"
MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body(bucket: str, key: str, client: Any) -> bytes:
    data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket=STAGING)
        client.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket=PROD)
        client.put_bucket_versioning(Bucket=PROD, VersioningConfiguration={"Status": "Enabled"})
        yield client


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call the client makes from now on."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))  # botocore later rewrites CopySource in place

    client.meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


def test_small_copy_is_pinned_to_the_approved_version(s3: Any) -> None:
    approved = b"approved model bytes"
    old = s3.put_object(Bucket=STAGING, Key=KEY, Body=approved, ContentType="application/gzip")["VersionId"]
    s3.put_object(Bucket=STAGING, Key=KEY, Body=b"a later, unapproved upload", ContentType="text/plain")
    copies = count_calls(s3, "CopyObject")

    result = ArtifactStore(s3).copy_immutable(STAGING, KEY, old, PROD, sha(approved))

    assert result.copied and not result.multipart
    assert result.version_id == s3.head_object(Bucket=PROD, Key=KEY)["VersionId"]
    assert body(PROD, KEY, s3) == approved
    head = s3.head_object(Bucket=PROD, Key=KEY)
    assert head["Metadata"] == {"sha256": sha(approved)}
    assert head["ContentType"] == "application/gzip"  # the approved version's, not the later upload's
    assert len(copies) == 1 and copies[0]["MetadataDirective"] == "REPLACE"


def test_large_copy_uses_upload_part_copy(s3: Any) -> None:
    data = random.Random(0).randbytes(12 * MiB + 123)  # no repeats: a misplaced range would show
    s3.put_object(Bucket=STAGING, Key=KEY, Body=data, ContentType="application/gzip")
    parts = count_calls(s3, "UploadPartCopy")
    copies = count_calls(s3, "CopyObject")
    store = ArtifactStore(s3, multipart_threshold=5 * MiB, copy_part_size=5 * MiB)

    result = store.copy_immutable(STAGING, KEY, None, PROD, sha(data))

    assert result == CopyResult(copied=True, version_id=result.version_id, multipart=True)
    assert result.version_id == s3.head_object(Bucket=PROD, Key=KEY)["VersionId"]
    assert [p["CopySourceRange"] for p in parts] == [
        f"bytes=0-{5 * MiB - 1}",
        f"bytes={5 * MiB}-{10 * MiB - 1}",
        f"bytes={10 * MiB}-{len(data) - 1}",
    ]
    # Every part reads the version whose size was measured, not whatever is current at the time.
    current = s3.head_object(Bucket=STAGING, Key=KEY)["VersionId"]
    assert {p["CopySource"]["VersionId"] for p in parts} == {current}
    assert not copies
    assert body(PROD, KEY, s3) == data
    head = s3.head_object(Bucket=PROD, Key=KEY)
    assert head["Metadata"] == {"sha256": sha(data)}
    assert head["ContentType"] == "application/gzip"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=PROD)


def test_repeated_copy_is_a_no_op(s3: Any) -> None:
    data = b"model"
    version = s3.put_object(Bucket=STAGING, Key=KEY, Body=data)["VersionId"]
    store = ArtifactStore(s3)
    first = store.copy_immutable(STAGING, KEY, version, PROD, sha(data))
    copies = count_calls(s3, "CopyObject")

    again = store.copy_immutable(STAGING, KEY, version, PROD, sha(data))

    assert again == CopyResult(copied=False, version_id=first.version_id, multipart=False)
    assert not copies
    versions = s3.list_object_versions(Bucket=PROD, Prefix=KEY)["Versions"]
    assert len(versions) == 1


def test_other_bytes_under_the_target_key_are_never_overwritten(s3: Any) -> None:
    promoted, candidate = b"already in production", b"a different build"
    s3.put_object(Bucket=PROD, Key=KEY, Body=promoted, Metadata={"sha256": sha(promoted)})
    version = s3.put_object(Bucket=STAGING, Key=KEY, Body=candidate)["VersionId"]

    with pytest.raises(ArtifactConflict) as raised:
        ArtifactStore(s3).copy_immutable(STAGING, KEY, version, PROD, sha(candidate))

    message = str(raised.value)
    assert f"s3://{PROD}/{KEY}" in message
    assert sha(promoted)[:12] in message and sha(candidate)[:12] in message
    assert sha(promoted) not in message  # shortened
    assert body(PROD, KEY, s3) == promoted
    assert len(s3.list_object_versions(Bucket=PROD, Prefix=KEY)["Versions"]) == 1


def test_target_without_a_hash_is_a_conflict(s3: Any) -> None:
    s3.put_object(Bucket=PROD, Key=KEY, Body=b"uploaded by hand")
    version = s3.put_object(Bucket=STAGING, Key=KEY, Body=b"model")["VersionId"]

    with pytest.raises(ArtifactConflict, match="unknown"):
        ArtifactStore(s3).copy_immutable(STAGING, KEY, version, PROD, sha(b"model"))
    assert body(PROD, KEY, s3) == b"uploaded by hand"


def test_missing_source_or_version(s3: Any) -> None:
    store = ArtifactStore(s3)
    with pytest.raises(ArtifactMissing):
        store.copy_immutable(STAGING, KEY, None, PROD, sha(b""))

    version = s3.put_object(Bucket=STAGING, Key=KEY, Body=b"model")["VersionId"]
    s3.delete_object(Bucket=STAGING, Key=KEY, VersionId=version)
    with pytest.raises(ArtifactMissing):
        store.copy_immutable(STAGING, KEY, version, PROD, sha(b"model"))

    s3.put_object(Bucket=STAGING, Key=KEY, Body=b"model")
    with pytest.raises(ArtifactMissing):
        store.copy_immutable(STAGING, KEY, "not-a-version-id", PROD, sha(b"model"))
    assert "Contents" not in s3.list_objects_v2(Bucket=PROD)


def test_exists_asks_for_the_pinned_version_and_translates_other_errors(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key with two versions, and an empty object
    pinned = s3.put_object(Bucket=STAGING, Key=KEY, Body=b"the registered bytes")["VersionId"]
    later = s3.put_object(Bucket=STAGING, Key=KEY, Body=b"a later upload")["VersionId"]
    empty = s3.put_object(Bucket=STAGING, Key="empty.tar.gz", Body=b"")["VersionId"]
    store = ArtifactStore(s3)
    assert store.exists(STAGING, KEY, pinned) and store.exists(STAGING, "empty.tar.gz", empty)
    # WHEN the pinned version is deleted THEN it is gone, though the key still holds the later one
    s3.delete_object(Bucket=STAGING, Key=KEY, VersionId=pinned)
    assert not store.exists(STAGING, KEY, pinned) and store.exists(STAGING, KEY, later)
    assert not store.exists(STAGING, "no/such/key.tar.gz", pinned)
    assert not store.exists(STAGING, KEY, "not-a-version-id")

    # AND any other answer is the domain's ServiceError, not "gone"
    def refused(**_: Any) -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "Denied"}}, "GetObject")

    monkeypatch.setattr(s3, "get_object", refused)
    with pytest.raises(ServiceError, match="S3 answered AccessDenied: Denied"):
        store.exists(STAGING, KEY, later)


def test_a_failed_part_aborts_the_upload(s3: Any) -> None:
    data = random.Random(1).randbytes(12 * MiB)
    version = s3.put_object(Bucket=STAGING, Key=KEY, Body=data)["VersionId"]
    parts = count_calls(s3, "UploadPartCopy")
    aborts = count_calls(s3, "AbortMultipartUpload")
    # A second client, so the deletion is not itself a call inside the first client's event hook.
    other = boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")

    def delete_source_before_part_two(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            other.delete_object(Bucket=STAGING, Key=KEY, VersionId=version)

    s3.meta.events.register("provide-client-params.s3.UploadPartCopy", delete_source_before_part_two)
    store = ArtifactStore(s3, multipart_threshold=5 * MiB, copy_part_size=5 * MiB)

    with pytest.raises(ArtifactMissing):  # the source version vanished mid-copy
        store.copy_immutable(STAGING, KEY, version, PROD, sha(data))

    assert len(parts) == 2 and len(aborts) == 1
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=PROD)
    assert "Contents" not in s3.list_objects_v2(Bucket=PROD)


def test_other_part_errors_abort_and_propagate(s3: Any) -> None:
    data = random.Random(2).randbytes(11 * MiB)
    s3.put_object(Bucket=STAGING, Key=KEY, Body=data)
    error = botocore.exceptions.ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "UploadPartCopy")

    def throttle_part_three(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 3:
            raise error

    s3.meta.events.register("provide-client-params.s3.UploadPartCopy", throttle_part_three)
    store = ArtifactStore(s3, multipart_threshold=5 * MiB, copy_part_size=5 * MiB)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        store.copy_immutable(STAGING, KEY, None, PROD, sha(data))

    assert raised.value is error
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=PROD)


class RecordingS3:
    """Just enough of an S3 client to see the part ranges of a copy too large to run on moto."""

    exceptions = botocore.exceptions  # only ClientError is looked up

    def __init__(self, size: int) -> None:
        self.size = size
        self.ranges: list[tuple[int, int]] = []

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        if Bucket == PROD:
            raise botocore.exceptions.ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {"ContentLength": self.size, "VersionId": "v1"}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u"}

    def upload_part_copy(self, CopySourceRange: str, **_: Any) -> dict[str, Any]:
        start, end = CopySourceRange.removeprefix("bytes=").split("-")
        self.ranges.append((int(start), int(end)))
        return {"CopyPartResult": {"ETag": '"e"'}}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"VersionId": "t1"}


def test_part_size_grows_to_stay_within_10000_parts() -> None:
    size = 5 * (1 << 40)  # S3's largest object: 10,240 parts of the default 512 MiB
    client = RecordingS3(size)

    result = ArtifactStore(client).copy_immutable(STAGING, KEY, None, PROD, "0" * 64)

    assert result == CopyResult(copied=True, version_id="t1", multipart=True)
    assert len(client.ranges) <= MAX_PARTS
    assert client.ranges[0][0] == 0 and client.ranges[-1][1] == size - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(client.ranges, client.ranges[1:], strict=False))


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="multipart_threshold"):
        ArtifactStore(object(), multipart_threshold=6 << 30)
    with pytest.raises(ValueError, match="copy_part_size"):
        ArtifactStore(object(), copy_part_size=1 * MiB)
