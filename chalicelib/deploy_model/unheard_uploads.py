"""Uploads the registry never heard of: an S3 notification EventBridge did not deliver, an upload
trigger that failed past its retries (the registry throttled for minutes, Step Functions down).
The sweep lists the staging bucket's recent tarballs and hands each one the registry does not
know to the upload trigger, as its event would have: registered, and its deployment started.

Safe to race the event it stands in for: registration is conditional and the execution's name
comes from key and ETag, so whichever comes second is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from chalicelib.adapters.staging_uploads import StagingUploads
from chalicelib.deploy_model.stage_io import UploadedObject
from chalicelib.deploy_model.upload_trigger import UploadResult, UploadTrigger

logger = Logger(service="mmedeploy", child=True)
ACTOR = "reconcile/sweep"
# How far back the sweep looks: a lost upload older than this needs a push again (or redeploy).
LOOKBACK = timedelta(days=1)
# The upload's own event gets this long first (the trigger retries the registry for ~25 s).
UNHEARD_AFTER_S = 60.0


class HeardReport(BaseModel):
    registered: list[str] = []  # "key: outcome" of each upload the sweep handed to the trigger
    failed: list[str] = []  # keys it could not (tried again next sweep)


class UnheardUploads:
    def __init__(
        self,
        staging: StagingUploads,
        trigger: UploadTrigger,
        handle: Callable[[UploadedObject, str], UploadResult],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``handle``: the trigger's entry (behind its idempotency, so a concurrent retry of the
        event and the sweep do the work once), called with the upload and the actor."""
        self._staging = staging
        self._trigger = trigger
        self._handle = handle
        self._now = now

    def run(self) -> HeardReport:
        report = HeardReport()
        now = self._now()
        for staged in self._staging.since(now - LOOKBACK):
            if (now - staged.last_modified).total_seconds() < UNHEARD_AFTER_S:
                continue
            try:
                if self._trigger.knows(staged.key, staged.etag):
                    continue
                version_id = self._staging.version_of(staged.key, staged.etag)
                if version_id is None:
                    continue  # replaced or deleted since the listing: its own event, or the next sweep
                upload = UploadedObject(
                    bucket=self._staging.bucket,
                    key=staged.key,
                    etag=staged.etag,
                    version_id=version_id or None,
                    size=staged.size,
                )
                result = self._handle(upload, ACTOR)
            except Exception:  # one upload's trouble must not stop the sweep
                logger.exception("registering an unheard upload failed; the next sweep tries again")
                report.failed.append(staged.key)
                continue
            logger.warning(
                "an upload the registry never heard of was registered by the sweep",
                extra={"key": staged.key, "etag": staged.etag, "outcome": result.outcome},
            )
            report.registered.append(f"{staged.key}: {result.outcome}")
        return report
