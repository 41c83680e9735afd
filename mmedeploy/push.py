"""``mmedeploy push``: put a model tarball into the staging bucket, which starts its deployment.

The object key is the file name (the naming contract, checked before anything is sent): the
staging MME serves ``s3://<staging bucket>/<NAME_VERSION>.tar.gz`` as TargetModel
``NAME_VERSION.tar.gz``. The pipeline, not this command, decides what happens next (validation,
warm-up, approval); ``mmedeploy status NAME VERSION --watch`` follows it.

Large tarballs go up as a multipart upload (:data:`TRANSFER`: parts of 64 MiB, 8 at a time,
above 64 MiB; s3transfer grows the parts for files that would need more than 10,000), so a 5 GB
tarball never needs a single PUT (S3's limit for one is 5 GiB). Each request (a part included) is
retried by the client's retry policy (botocore's; ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` or
the profile's ``max_attempts`` / ``retry_mode`` where the target sets none); an upload that still
fails on a transient error (throttling, a 5xx, a dropped connection) is started again up to
:data:`UPLOAD_ATTEMPTS` times. A failed or interrupted multipart upload is aborted by s3transfer,
so no parts are left behind (``s3:AbortMultipartUpload``). ``s3:PutObject`` covers the upload,
multipart included, and ``s3:GetObject`` is not needed: the ETag and version id come from the
upload's own answer (the template's PublisherPolicy grants exactly these two).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from chalicelib.domain.naming import ArtifactName
from mmedeploy.target import DeploymentTarget

CONTENT_TYPE = "application/gzip"
MIB = 1024 * 1024
TRANSFER = TransferConfig(
    multipart_threshold=64 * MIB,  # above it: a multipart upload
    multipart_chunksize=64 * MIB,  # 80 parts for 5 GB; s3transfer grows parts past 10,000 of them
    max_concurrency=8,
    use_threads=True,
)
UPLOAD_ATTEMPTS = 3  # whole uploads, each part already retried by the client
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable"}
)


class PushError(Exception):
    """The tarball cannot be pushed as given (missing, a directory, misnamed)."""


class PushResult(BaseModel):
    """What ``push --json`` prints."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def check_tarball(path: Path) -> ArtifactName:
    """The artifact's name and version; PushError (nothing uploaded) if it cannot be pushed."""
    if path.is_dir():
        raise PushError(f"{path} is a directory; package it first with 'mmedeploy package'")
    if not path.is_file():
        raise PushError(f"{path} does not exist")
    try:
        return ArtifactName.parse(path.name)
    except ValueError as exc:
        raise PushError(f"not uploaded: {exc}") from None


def push_tarball(
    target: DeploymentTarget,
    path: Path,
    progress: Callable[[int], None] | None = None,
    config: TransferConfig = TRANSFER,
    attempts: int = UPLOAD_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Upload ``path`` under its file name; ``progress`` gets the bytes sent since its last call
    (from the transfer's threads; negative when a retried request sends bytes again). A transient
    failure starts the upload again (``attempts`` in all); anything else, or the last failure, is
    raised as botocore/boto3 raise it."""
    artifact = check_tarball(path)
    key = artifact.filename
    s3 = target.client("s3")
    answers: list[dict[str, Any]] = []
    # the PutObject / CompleteMultipartUpload answer carries the ETag and VersionId: no HeadObject
    # (which would need s3:GetObject, more than the publisher policy grants)
    for event in ("after-call.s3.PutObject", "after-call.s3.CompleteMultipartUpload"):
        s3.meta.events.register(event, lambda parsed, **_: answers.append(parsed))
    sent = 0

    def counted(amount: int) -> None:
        nonlocal sent
        sent += amount
        if progress is not None:
            progress(amount)

    for attempt in range(1, attempts + 1):
        try:
            s3.upload_file(
                str(path),
                target.staging_bucket,
                key,
                ExtraArgs={"ContentType": CONTENT_TYPE},
                Callback=counted,
                Config=config,
            )
            break
        except Exception as exc:
            if attempt == attempts or not _transient(exc):
                raise
            if progress is not None and sent:
                progress(-sent)  # the bar starts again with the upload
            sent = 0
            sleep(min(30.0, 2.0**attempt))
    answer = answers[-1] if answers else {}
    return PushResult(
        bucket=target.staging_bucket,
        key=key,
        etag=str(answer.get("ETag", "")).strip('"'),
        version_id=answer.get("VersionId") or None,
        size=path.stat().st_size,
    )


def _transient(exc: BaseException) -> bool:
    """Worth starting the upload again: throttling, a 5xx, a dropped or timed-out connection."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError, ReadTimeoutError
    from botocore.exceptions import ConnectionError as DroppedConnection

    cause: BaseException | None = exc
    if isinstance(exc, S3UploadFailedError):  # boto3 wraps the part's error, keeping it as the cause
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            return any(code in str(exc) for code in TRANSIENT_CODES) or "(50" in str(exc)
    if isinstance(cause, DroppedConnection | ReadTimeoutError):
        return True
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error.get("Code") in TRANSIENT_CODES or status >= 500 or status == 429
    return False


@contextmanager
def upload_progress(console: Console, filename: str, total: int, show: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar (bytes, speed, time left) fed by boto3's upload Callback; with
    ``show`` false (not a terminal, or --json) no bar and no callback."""
    if not show:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task(f"uploading {filename}", total=total)
    with bar:
        # Progress.advance takes the bar's lock: safe from the transfer manager's threads.
        yield lambda sent: bar.advance(task, sent)
