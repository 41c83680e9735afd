"""Model artifacts in S3: read an exact object version as a stream, hash one, restore one."""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO, cast

READ_CHUNK = 1 << 20


class ArtifactMissing(Exception):
    """The object (or the object version) is gone: deleted after the upload event was sent."""


class ArtifactStore:
    def __init__(self, client: Any) -> None:
        self._s3 = client

    @property
    def errors(self) -> type[Exception]:
        """The S3 client's error class, for callers that tolerate a failed S3 call."""
        error: type[Exception] = self._s3.exceptions.ClientError
        return error

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """The object's bytes as a stream, read once; pinned to ``version_id`` when known, so a
        later overwrite of the key cannot change what is validated."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            return cast(BinaryIO, self._s3.get_object(**request)["Body"])
        except self._s3.exceptions.NoSuchKey as exc:
            raise ArtifactMissing(f"s3://{bucket}/{key} no longer exists") from exc
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchVersion", "404", "InvalidArgument"):
                raise ArtifactMissing(f"s3://{bucket}/{key} (version {version_id}) no longer exists") from exc
            raise

    def sha256(self, bucket: str, key: str, version_id: str | None = None) -> str:
        digest = hashlib.sha256()
        stream = self.open(bucket, key, version_id)
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    def current_version(self, bucket: str, key: str) -> str | None:
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.ClientError:
            return None
        version: str | None = head.get("VersionId")
        return version

    def restore(self, bucket: str, key: str, version_id: str) -> None:
        """Make ``version_id`` the key's current bytes again (a server-side copy onto itself; the
        refused upload stays behind as a noncurrent version, for audit)."""
        self._s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id},
            MetadataDirective="COPY",
        )
