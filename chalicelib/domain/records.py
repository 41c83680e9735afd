"""The registry's records: a model version with its history, the aliases that route traffic to
versions (production, canary), and the pages the catalog lists. Pure data: the DynamoDB layout
that stores them is :mod:`chalicelib.adapters.registry_store`'s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.domain.rollout.progress import RolloutRun
from chalicelib.domain.signature import ModelSummary
from chalicelib.domain.validation.findings import Finding

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HistoryEntry(BaseModel):
    at: str
    status: Status
    actor: str
    reason: str = ""
    revision: int = 0


class RejectedUpload(BaseModel):
    """A later upload under this name+version that was refused (artifacts are immutable)."""

    at: str
    etag: str
    sha256: str | None = None
    reason: str


class PromotionRun(BaseModel):
    """The PromoteModel execution that owns a version while it is PROMOTING."""

    execution_arn: str
    alias_revision: int  # the production alias's revision when it began: the flip's condition
    rollback: bool  # RETIRED -> PROMOTING: a failure leaves it RETIRED, not FAILED
    requested_by: str
    started_at: str
    rollout: RolloutRun | None = None  # a rollout: canary steps judged by gates before the flip


class Notice(BaseModel):
    """What a write still owes the version's watchers: its lifecycle event and, for an ending, a
    promotion or a refused upload, the Slack notice. Written with the change (the version's outbox)
    and dropped once announced, so a crash between the write and the announcement loses nothing:
    the retried step or the sweep announces it (consumers de-duplicate events on name, version,
    status and revision). Records stored before a field was added read with its default."""

    revision: int  # the change's: its history entry holds status, reason, actor and time
    previous: Status | None = None
    slack: bool = False  # its Slack notice is owed too
    detail_type: str | None = None  # the event's, where not the status's (ModelRolledBack, UploadRefused)
    replaced: str | None = None  # a promotion's: the version it retired (its Slack notice names it)


class ModelVersion(BaseModel):
    """A version's current record (its history is kept beside it, see ``history``)."""

    name: str
    version: str
    status: Status
    reason: str = ""
    bucket: str
    key: str
    etag: str
    object_version: str | None = None
    size: int | None = None
    sha256: str | None = None
    uploaded_at: str
    uploader: str | None = None
    updated_at: str
    revision: int = 0
    execution_arn: str | None = None
    approval_id: str | None = None
    findings: list[Finding] = []
    models: list[ModelSummary] = []
    test_cases: int = 0
    metrics: dict[str, float] = Field(default_factory=dict)
    rejected_uploads: list[RejectedUpload] = []
    promotion: PromotionRun | None = None
    # the tarball's rollout.json, as the validator read it: a rollout's layer over the defaults
    rollout_policy: RolloutOverrides | None = None
    # an admin's rollout of a version awaiting approval (approved by that request): its options,
    # taken by the promotion the approval starts, which then rolls the version out
    rollout_request: RolloutOverrides | None = None
    outbox: list[Notice] = []  # announcements owed (see Notice); internal, not in document()
    history: list[HistoryEntry] = Field(default=[], exclude=True)  # read beside the record

    @property
    def target_model(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def document(self) -> dict[str, Any]:
        """The version's one JSON shape: what ``GET /models/NAME/versions/VERSION`` answers and
        ``mmedeploy status NAME VERSION --json`` prints (every field of the record, and its history
        with each entry's revision)."""
        return {
            **self.model_dump(mode="json", exclude={"outbox"}),
            "history": [entry.model_dump(mode="json") for entry in self.history],
        }


PRODUCTION_ALIAS = "production"
CANARY_ALIAS = "canary"


class Alias(BaseModel):
    """A named pointer at a version; ``previous`` is where a rollback goes."""

    name: str
    alias: str = PRODUCTION_ALIAS
    version: str
    previous: str | None = None
    revision: int
    updated_at: str
    actor: str


class Canary(BaseModel):
    """A candidate version taking ``weight`` (0..1) of a model's traffic beside production."""

    name: str
    version: str
    weight: float
    started_at: str
    actor: str
    # set while a rollout owns the canary (its PromoteModel execution): the candidate is served
    # from the production endpoint, and only the rollout changes or ends the canary
    rollout_execution: str | None = None


class ModelRoutes(BaseModel):
    """Where a model's traffic goes: what the inference API caches per model."""

    production: Alias | None = None
    canary: Canary | None = None


class ModelEntry(BaseModel):
    """A model in the index: what ``GET /models`` lists without reading each model."""

    name: str
    latest_version: str
    updated_at: str
    production_version: str | None = None
    canary_version: str | None = None


class ModelsPage(BaseModel):
    models: list[ModelEntry]
    next: str | None = None  # the last name listed, to continue after; None at the end


class VersionsPage(BaseModel):
    versions: list[ModelVersion]
    next: str | None = None  # the last version listed, to continue after; None at the end


class Flip(BaseModel):
    """The production alias moved: the version now serving, the one it replaced (RETIRED)."""

    alias: Alias
    promoted: ModelVersion
    retired: ModelVersion | None = None
    changed: bool = True  # False when a retried flip found it done


class Transition(BaseModel):
    record: ModelVersion
    changed: bool  # False when the version already had the target status (a repeated step)
    previous: Status | None = None  # the status moved from, when changed
