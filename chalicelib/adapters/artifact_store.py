"""Model artifacts in S3: read an exact object version as a stream, hash one, check one is still
there, restore one, promote one to another bucket without ever overwriting what is there."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from chalicelib.domain.errors import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CopySourceTypeDef,
        GetObjectRequestTypeDef,
        HeadObjectOutputTypeDef,
        HeadObjectRequestTypeDef,
    )

READ_CHUNK = 1 << 20

MiB = 1 << 20
GiB = 1 << 30
COPY_OBJECT_LIMIT = 5 * GiB  # the largest object one CopyObject may copy
MIN_PART_SIZE = 5 * MiB  # S3's floor for every multipart part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
DEFAULT_COPY_PART_SIZE = 512 * MiB

# HeadObject has no body, so its errors carry only the HTTP status as the code.
_MISSING_CODES = ("NoSuchKey", "NoSuchVersion", "404")


class ArtifactMissing(Exception):
    """The object (or the object version) is gone: deleted after the upload event was sent."""


class ArtifactConflict(Exception):
    """The target key already holds other bytes: artifacts are immutable, so it is never overwritten."""


@dataclass(frozen=True)
class CopyResult:
    copied: bool  # False: the target already held these bytes (a retry, or a rollback to a promoted version)
    version_id: str | None  # the target's version, None in an unversioned bucket
    multipart: bool


class ArtifactStore:
    def __init__(
        self,
        client: S3Client,
        *,
        multipart_threshold: int = COPY_OBJECT_LIMIT,
        copy_part_size: int = DEFAULT_COPY_PART_SIZE,
    ) -> None:
        if not 0 <= multipart_threshold <= COPY_OBJECT_LIMIT:
            raise ValueError(f"multipart_threshold must be within 0..{COPY_OBJECT_LIMIT} (CopyObject's limit)")
        if not MIN_PART_SIZE <= copy_part_size <= MAX_PART_SIZE:
            raise ValueError(f"copy_part_size must be within {MIN_PART_SIZE}..{MAX_PART_SIZE} (S3's part limits)")
        self._s3 = client
        self._multipart_threshold = multipart_threshold
        self._copy_part_size = copy_part_size

    @property
    def errors(self) -> type[Exception]:
        """The S3 client's error class, for callers that tolerate a failed S3 call."""
        error: type[Exception] = self._s3.exceptions.ClientError
        return error

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """The object's bytes as a stream, read once; pinned to ``version_id`` when known, so a
        later overwrite of the key cannot change what is validated."""
        request: GetObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
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

    def exists(self, bucket: str, key: str, version_id: str) -> bool:
        """Whether that version of the object is still there. A GET of its first byte rather than a
        HeadObject: with a VersionId, GetObject needs s3:GetObjectVersion alone (HeadObject is
        documented as needing s3:GetObject too), and its errors carry their code where HeadObject's
        are a bare status. Any other answer (access refused, S3 failing) is a ServiceError."""
        try:
            self._s3.get_object(Bucket=bucket, Key=key, VersionId=version_id, Range="bytes=0-0")["Body"].close()
        except self._s3.exceptions.NoSuchKey:
            return False
        except self._s3.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchVersion", "404", "InvalidArgument"):  # InvalidArgument: a malformed version id
                return False
            if code == "InvalidRange":  # an empty object has no first byte, but it is there
                return True
            raise ServiceError("S3", code, str(error.get("Message", ""))) from exc
        return True

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

    def copy_immutable(
        self, source_bucket: str, key: str, source_version_id: str | None, target_bucket: str, sha256: str
    ) -> CopyResult:
        """Server-side copy of an approved artifact to ``target_bucket`` under the same key, tagged with
        its ``sha256``. A target that already holds the same hash is left alone (copied=False); one
        that holds other bytes raises ArtifactConflict rather than being overwritten."""
        existing = self._head(target_bucket, key)
        if existing is not None:
            found = existing.get("Metadata", {}).get("sha256")
            if found == sha256:
                return CopyResult(copied=False, version_id=existing.get("VersionId"), multipart=False)
            raise ArtifactConflict(
                f"s3://{target_bucket}/{key} already holds sha256 {(found or 'unknown')[:12]}, "
                f"refusing to overwrite it with {sha256[:12]}"
            )

        source = self._head(source_bucket, key, source_version_id)
        if source is None:
            raise ArtifactMissing(f"s3://{source_bucket}/{key} (version {source_version_id}) no longer exists")
        copy_source: CopySourceTypeDef = {"Bucket": source_bucket, "Key": key}
        # Pin to the version whose size was just read, so every part of a multipart copy (and the
        # size decision itself) refers to the same bytes even if the key is overwritten meanwhile.
        pinned = source_version_id or source.get("VersionId")
        if pinned:
            copy_source["VersionId"] = pinned
        attributes: dict[str, Any] = {"Metadata": {"sha256": sha256}}
        if source.get("ContentType"):
            attributes["ContentType"] = source["ContentType"]

        size = int(source["ContentLength"])
        try:
            if size <= self._multipart_threshold:
                response = self._s3.copy_object(
                    Bucket=target_bucket, Key=key, CopySource=copy_source, MetadataDirective="REPLACE", **attributes
                )
                return CopyResult(copied=True, version_id=response.get("VersionId"), multipart=False)
            version = self._multipart_copy(copy_source, target_bucket, key, size, attributes)
            return CopyResult(copied=True, version_id=version, multipart=True)
        except self._s3.exceptions.ClientError as exc:
            # The source was deleted between the HeadObject and the copy (a bare 404 included: not
            # every S3 implementation names the error for a part copy).
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise ArtifactMissing(f"s3://{source_bucket}/{key} (version {pinned}) no longer exists") from exc
            raise

    def _multipart_copy(
        self, copy_source: CopySourceTypeDef, bucket: str, key: str, size: int, attributes: dict[str, Any]
    ) -> str | None:
        """Copy an object too large for CopyObject as UploadPartCopy ranges; a failed copy aborts the
        upload, so no invisible (but billed) parts are left behind."""
        part_size = max(self._copy_part_size, -(-size // MAX_PARTS))
        upload_id = self._s3.create_multipart_upload(Bucket=bucket, Key=key, **attributes)["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                response = self._s3.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            completed = self._s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Abort on a best-effort basis: the copy's own error is the one worth reporting.
            with contextlib.suppress(self._s3.exceptions.ClientError):
                self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        version: str | None = completed.get("VersionId")
        return version

    def _head(self, bucket: str, key: str, version_id: str | None = None) -> HeadObjectOutputTypeDef | None:
        """HeadObject, or None where the key (or the version) does not exist."""
        request: HeadObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            head = self._s3.head_object(**request)
        except self._s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            # A malformed version id is answered 400 with no further detail.
            if code in _MISSING_CODES or (version_id and code in ("400", "InvalidArgument")):
                return None
            raise
        return head
