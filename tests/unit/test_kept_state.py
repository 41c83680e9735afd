"""The local stack's kept buckets: every object version comes back with its id, order, metadata
and content type, and delete markers too (the registry pins version ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from mmedeploy.local.kept_state import MotoEmulator, restore_bucket, save_bucket

BUCKET = "kept-bucket"
ACCOUNT = "123456789012"  # moto's default


def _versioned_bucket() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def _listing(s3: Any) -> dict[str, list[tuple[str, str, bool]]]:
    found = s3.list_object_versions(Bucket=BUCKET)
    return {
        kind: [(v["Key"], v["VersionId"], v["IsLatest"]) for v in found.get(kind, [])]
        for kind in ("Versions", "DeleteMarkers")
    }


def test_versions_ids_metadata_and_delete_markers_survive_a_save_and_restore(tmp_path: Path) -> None:
    # GIVEN a bucket with two versions of a key (the first with metadata), a key deleted after
    # it was written, and a key deleted then written again
    with mock_aws():
        s3 = _versioned_bucket()
        first = s3.put_object(Bucket=BUCKET, Key="m_1.tar.gz", Body=b"one", Metadata={"sha256": "abc"})
        s3.put_object(Bucket=BUCKET, Key="m_1.tar.gz", Body=b"two", ContentType="application/gzip")
        s3.put_object(Bucket=BUCKET, Key="gone.tar.gz", Body=b"gone")
        s3.delete_object(Bucket=BUCKET, Key="gone.tar.gz")
        s3.put_object(Bucket=BUCKET, Key="back.tar.gz", Body=b"old")
        s3.delete_object(Bucket=BUCKET, Key="back.tar.gz")
        s3.put_object(Bucket=BUCKET, Key="back.tar.gz", Body=b"new")
        before = _listing(s3)
        saved = save_bucket(s3, BUCKET, tmp_path)

    # WHEN a fresh emulator gets it back
    with mock_aws():
        s3 = _versioned_bucket()
        restored = restore_bucket(s3, BUCKET, tmp_path, MotoEmulator(ACCOUNT))
        # THEN the listing is the same: ids, which is latest, delete markers
        assert saved == restored == 7
        assert _listing(s3) == before
        # AND an old version reads back by its id with its metadata; the latest keeps its type
        old = s3.get_object(Bucket=BUCKET, Key="m_1.tar.gz", VersionId=first["VersionId"])
        assert (old["Body"].read(), old["Metadata"]) == (b"one", {"sha256": "abc"})
        assert s3.head_object(Bucket=BUCKET, Key="m_1.tar.gz")["ContentType"] == "application/gzip"
        assert s3.get_object(Bucket=BUCKET, Key="back.tar.gz")["Body"].read() == b"new"
        assert "gone.tar.gz" not in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_snapshot_of_the_first_layout_still_restores_its_latest_bodies(tmp_path: Path) -> None:
    # GIVEN the kept state an older mmedeploy wrote: one file per key, named by the quoted key
    (tmp_path / "models%2Fm_1.tar.gz").write_bytes(b"body")
    with mock_aws():
        s3 = _versioned_bucket()
        # WHEN it is restored THEN each key holds its body
        assert restore_bucket(s3, BUCKET, tmp_path, MotoEmulator(ACCOUNT)) == 1
        assert s3.get_object(Bucket=BUCKET, Key="models/m_1.tar.gz")["Body"].read() == b"body"
