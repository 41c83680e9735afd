"""``mmedeploy push``: put a model tarball into the staging bucket, which starts its deployment.

The object key is the file name (the naming contract, checked before anything is sent): the
staging MME serves ``s3://<staging bucket>/<NAME_VERSION>.tar.gz`` as TargetModel
``NAME_VERSION.tar.gz``. The pipeline, not this command, decides what happens next (validation,
warm-up, approval); ``mmedeploy status NAME VERSION --watch`` follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


def push_tarball(target: DeploymentTarget, path: Path, progress: Callable[[int], None] | None = None) -> PushResult:
    """Upload ``path`` under its file name; ``progress`` gets the bytes sent since its last call
    (from the transfer's threads). Raises botocore/boto3 errors as they come."""
    artifact = check_tarball(path)
    key = artifact.filename
    s3 = target.client("s3")
    s3.upload_file(
        str(path),
        target.staging_bucket,
        key,
        ExtraArgs={"ContentType": CONTENT_TYPE},
        Callback=progress,
    )
    head = s3.head_object(Bucket=target.staging_bucket, Key=key)
    return PushResult(
        bucket=target.staging_bucket,
        key=key,
        etag=str(head.get("ETag", "")).strip('"'),
        version_id=head.get("VersionId") or None,
        size=int(head.get("ContentLength", path.stat().st_size)),
    )


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
