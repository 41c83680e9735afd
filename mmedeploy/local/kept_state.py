"""The local stack's buckets across ``down``/``up``: every object version with its id, metadata and
content type, and every delete marker, in the order they were made.

The registry pins S3 version ids (a version's artifact is ``s3://bucket/key?versionId=...``) and
reads object metadata (the production copy's ``sha256``), so re-putting the latest bodies, as
the kept state did first, broke promote and rollback of any version made before a restart. S3's
API cannot choose a version id, so after each re-put the emulator's record of the new version is
given the saved id and time (the stack runs the emulator in its own process; ``Emulator`` below
is that one seam).

Layout under ``<state dir>/state/s3/<bucket>/``: ``versions.json`` (the versions, oldest first)
and ``bodies/<sha256>`` (each distinct body once).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

MANIFEST = "versions.json"


class SavedVersion(BaseModel):
    key: str
    version_id: str
    last_modified: datetime.datetime
    delete_marker: bool = False
    sha256: str | None = None  # the body's file under bodies/; None for a delete marker
    content_type: str | None = None
    metadata: dict[str, str] = {}


class Emulator(Protocol):
    def pin(self, bucket: str, key: str, new_version_id: str, saved: SavedVersion) -> None:
        """Give the version just written the saved version's id and time."""


def save_bucket(s3: Any, bucket: str, folder: Path) -> int:
    """Every version and delete marker of ``bucket`` into ``folder``; the count of versions."""
    # (key, is latest, time, position among the key's older entries, version)
    entries: list[tuple[str, bool, datetime.datetime, int, SavedVersion]] = []
    bodies = folder / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    rank: dict[tuple[str, bool], int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for marker in page.get("DeleteMarkers", []):
            saved = SavedVersion(
                key=marker["Key"],
                version_id=marker["VersionId"],
                last_modified=marker["LastModified"],
                delete_marker=True,
            )
            entries.append(_entry(saved, marker["IsLatest"], rank))
        for version in page.get("Versions", []):
            got = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            body = got["Body"].read()
            digest = hashlib.sha256(body).hexdigest()
            if not (bodies / digest).exists():
                (bodies / digest).write_bytes(body)
            saved = SavedVersion(
                key=version["Key"],
                version_id=version["VersionId"],
                last_modified=version["LastModified"],
                sha256=digest,
                content_type=got.get("ContentType"),
                metadata=got.get("Metadata") or {},
            )
            entries.append(_entry(saved, version["IsLatest"], rank))
    # Oldest first within each key, its latest last: replayed in this order, each key ends as it
    # was. S3 lists a key's versions (and apart from them its delete markers) newest first with
    # LastModified in whole seconds, so ties keep the listing's order.
    entries.sort(key=lambda e: (e[0], e[1], e[2], -e[3]))
    saved_versions = [e[4] for e in entries]
    manifest = json.dumps([v.model_dump(mode="json") for v in saved_versions], indent=1)
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(manifest)
    os.replace(partial, folder / MANIFEST)
    return len(saved_versions)


def _entry(
    saved: SavedVersion, latest: bool, rank: dict[tuple[str, bool], int]
) -> tuple[str, bool, datetime.datetime, int, SavedVersion]:
    position = rank.get((saved.key, saved.delete_marker), 0)
    rank[(saved.key, saved.delete_marker)] = position + 1
    return saved.key, latest, saved.last_modified, position, saved


def restore_bucket(s3: Any, bucket: str, folder: Path, emulator: Emulator) -> int:
    """Replay ``folder``'s versions into ``bucket`` with their ids; the count restored. A folder of
    the first layout (one file per key, the latest body only) is restored as it was saved."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return _restore_latest_bodies(s3, bucket, folder)
    versions = [SavedVersion.model_validate(v) for v in json.loads(manifest.read_text())]
    replayed: dict[str, int] = {}
    for saved in versions:
        if saved.delete_marker:
            answer = s3.delete_object(Bucket=bucket, Key=saved.key)
        else:
            assert saved.sha256 is not None
            extra: dict[str, Any] = {"Metadata": saved.metadata}
            if saved.content_type:
                extra["ContentType"] = saved.content_type
            body = (folder / "bodies" / saved.sha256).read_bytes()
            answer = s3.put_object(Bucket=bucket, Key=saved.key, Body=body, **extra)
        # S3 shows times in whole seconds; a millisecond per earlier version of the key keeps the
        # emulator's newest-first order (it sorts by milliseconds) where two share a second
        order = replayed.get(saved.key, 0)
        replayed[saved.key] = order + 1
        at = saved.last_modified + datetime.timedelta(milliseconds=order)
        emulator.pin(bucket, saved.key, answer["VersionId"], saved.model_copy(update={"last_modified": at}))
    return len(versions)


def _restore_latest_bodies(s3: Any, bucket: str, folder: Path) -> int:
    count = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        s3.put_object(Bucket=bucket, Key=urllib.parse.unquote(path.name), Body=path.read_bytes())
        count += 1
    return count


class MotoEmulator:
    """:class:`Emulator` for the moto backend running in this process."""

    def __init__(self, account_id: str) -> None:
        self._account_id = account_id

    def pin(self, bucket: str, key: str, new_version_id: str, saved: SavedVersion) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[self._account_id]["global"]
        for version in backend.get_bucket(bucket).keys.getlist(key):
            if version.version_id == new_version_id:
                version._version_id = saved.version_id
                version.last_modified = saved.last_modified.astimezone(datetime.UTC).replace(tzinfo=None)
                return
        raise LookupError(f"s3://{bucket}/{key}: the version just written ({new_version_id}) is not in the emulator")
