"""The staging bucket as a list of uploads: what it holds now, newest included, for the sweep that
looks for uploads the registry never heard of."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.domain.errors import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TARBALL_SUFFIX = ".tar.gz"  # what the upload rule matches (upload_event_pattern)


@dataclass(frozen=True)
class StagedObject:
    key: str
    etag: str  # without S3's quotes, as the upload event carries it
    size: int
    last_modified: datetime


class StagingUploads:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def since(self, moment: datetime) -> Iterator[StagedObject]:
        """The tarballs (their current versions) written at or after ``moment``."""
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(TARBALL_SUFFIX) and item["LastModified"] >= moment:
                        yield StagedObject(
                            item["Key"], item["ETag"].strip('"'), item.get("Size", 0), item["LastModified"]
                        )
        except ClientError as exc:
            raise _service_error(exc) from exc

    def version_of(self, key: str, etag: str) -> str | None:
        """The version id of ``key`` while its current bytes are still ``etag``'s ("" where the
        bucket keeps no versions); None once it was replaced or deleted."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise _service_error(exc) from exc
        if head["ETag"].strip('"') != etag:
            return None
        return head.get("VersionId") or ""


def _service_error(exc: ClientError) -> ServiceError:
    error = exc.response.get("Error", {})
    return ServiceError("S3", error.get("Code", ""), error.get("Message", ""))
